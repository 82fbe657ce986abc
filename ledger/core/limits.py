"""The account limits (``BalanceLimit``): which way a balance may never go, and the judgement of a batch.

A limit is judged on the cumulative totals after a whole entry, never after one of its postings: an entry stands
or falls whole (a refund may take the gross out of clearing and put the returned fee back). The database's
triggers hold the same rule against a concurrent writer that moved the same balance after the batch's read.

A limit holds on every date, not only today: an entry dated in September out of money received in November would
leave September's books with cash below zero. So the ledger keeps, for each balance of an account with a limit,
its cumulative totals at the end of every day it moved (``daily_balances``), and a batch is judged on every such
day from its first date on (``check_every_day``): the days after a backdated entry are few, since only days with
postings have a row, and an entry dated today meets one row or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ledger.core.chart import BalanceLimit
from ledger.core.checks import Prefix
from ledger.core.drafts import EntryDraft
from ledger.core.errors import AccountLimitExceeded
from ledger.core.facts import BalanceKey, Cumulative, DailyFacts, DayChanges, DayTotals, Lookup

# What each limit forbids, and how a refusal says it.
BREACH_WORDS = {
    BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS: "would go below zero",
    BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS: "would be paid beyond what is owed",
}


def breaks(limit: str, debits_minor: int, credits_minor: int) -> bool:
    """Whether cumulative totals break the limit: cash below zero, or a payable paid beyond what is owed."""
    if limit == BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS:
        return credits_minor > debits_minor
    if limit == BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS:
        return debits_minor > credits_minor
    return False


def check_limits(drafts: Sequence[EntryDraft], replays: dict[int, int], lookup: Lookup, prefix: Prefix) -> DayChanges:
    """Plays the batch's new entries, in order, on the totals read before it, and refuses the first entry after
    which a balance breaks its account's limit. Returns what the batch adds to each limited balance by day, for
    ``check_every_day``."""
    limits = {account_id: account.balance_limit for account_id, account in lookup.accounts.items()
              if account.balance_limit in BREACH_WORDS}
    # Running [debits, credits] by (account, fund, currency): plain tuples and lists on this path, which a bulk
    # import walks a million times; named only for a refusal.
    totals: dict[tuple, list[int]] = {tuple(key): list(value) for key, value in lookup.balances.items()}
    changes: DayChanges = {}
    for index, draft in enumerate(drafts):
        if index in replays:
            continue
        touched = []  # (balance, its account's limit)
        day = draft.effective_date
        for posting in draft.postings:
            if posting.debit_account_id in limits:
                key = (posting.debit_account_id, posting.fund_id, posting.currency)
                totals.setdefault(key, [0, 0])[0] += posting.amount_minor
                changes.setdefault(key, {}).setdefault(day, [0, 0])[0] += posting.amount_minor
                touched.append((key, limits[posting.debit_account_id]))
            if posting.credit_account_id in limits:
                key = (posting.credit_account_id, posting.fund_id, posting.currency)
                totals.setdefault(key, [0, 0])[1] += posting.amount_minor
                changes.setdefault(key, {}).setdefault(day, [0, 0])[1] += posting.amount_minor
                touched.append((key, limits[posting.credit_account_id]))
        for key, limit in touched:
            debits, credits = totals[key]
            if breaks(limit, debits, credits):
                _refuse(BalanceKey._make(key), Cumulative(debits, credits), lookup, draft, prefix(index))
    return changes


class DayAfter(NamedTuple):
    """One day of a limited balance after a batch: the totals before and after it, and whether the day is new."""

    key: tuple[int, int, str]
    after: DayTotals
    before: DayTotals
    new: bool


def days_after(changes: DayChanges, daily: DailyFacts) -> list[DayAfter]:
    """Each limited balance's cumulative totals before and after the batch, on every day from the batch's first
    date on that has (or now gets) a row."""
    result = []
    for key, by_day in changes.items():
        rows = daily.get(key, [])
        first = min(by_day)
        known = {row.day for row in rows}
        base, position, run_debits, run_credits = (0, 0), 0, 0, 0
        for day in sorted(set(by_day) | {row.day for row in rows if row.day >= first}):
            while position < len(rows) and rows[position].day <= day:
                base = (rows[position].debits_minor, rows[position].credits_minor)
                position += 1
            if day in by_day:
                run_debits += by_day[day][0]
                run_credits += by_day[day][1]
            result.append(DayAfter(key, DayTotals(day, base[0] + run_debits, base[1] + run_credits),
                                   DayTotals(day, *base), day not in known))
    return result


def shortfall(limit: str, debits_minor: int, credits_minor: int) -> int:
    """How far totals are beyond the limit (0 within it)."""
    if limit == BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS:
        return max(credits_minor - debits_minor, 0)
    if limit == BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS:
        return max(debits_minor - credits_minor, 0)
    return 0


def check_every_day(drafts: Sequence[EntryDraft], changes: DayChanges, daily: DailyFacts, lookup: Lookup,
                    prefix: Prefix) -> None:
    """Refuses the batch when, after it, a limited balance is beyond its account's limit at the end of any day
    from its first date on, further than it was before (books kept before limits held on every date may hold a
    day beyond it: an entry that does not make that day worse is not refused for it). The refusal names the day
    and the batch's earliest entry on or before it that moves the balance."""
    for key, after, before, _ in days_after(changes, daily):
        account = lookup.accounts[key[0]]
        short = shortfall(account.balance_limit, after.debits_minor, after.credits_minor)
        if short > shortfall(account.balance_limit, before.debits_minor, before.credits_minor):
            index = min(index for index, draft in enumerate(drafts) if draft.effective_date <= after.day
                        and _moves(draft, key))
            raise AccountLimitExceeded(
                f"account {account.code} in fund {lookup.funds[key[1]].code} {BREACH_WORDS[account.balance_limit]} "
                f"on {after.day.isoformat()} by {short} minor units of {key[2]}",
                field=f"{prefix(index)}postings", account_id=key[0], fund_id=key[1], shortfall_minor=short,
                day=after.day.isoformat(), idempotency_key=drafts[index].idempotency_key)


def _moves(draft: EntryDraft, key: tuple[int, int, str]) -> bool:
    return any(posting.fund_id == key[1] and posting.currency == key[2]
               and key[0] in (posting.debit_account_id, posting.credit_account_id) for posting in draft.postings)


def _refuse(key: BalanceKey, totals: Cumulative, lookup: Lookup, draft: EntryDraft, prefix: str) -> None:
    account = lookup.accounts[key.account_id]
    shortfall = abs(totals.debits_minor - totals.credits_minor)
    raise AccountLimitExceeded(
        f"account {account.code} in fund {lookup.funds[key.fund_id].code} {BREACH_WORDS[account.balance_limit]} "
        f"by {shortfall} minor units of {key.currency}",
        field=f"{prefix}postings", account_id=key.account_id, fund_id=key.fund_id, shortfall_minor=shortfall,
        idempotency_key=draft.idempotency_key)
