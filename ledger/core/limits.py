"""The account limits (``BalanceLimit``): which way a balance may never go, and the judgement of a batch.

A limit is judged on the cumulative totals after a whole entry, never after one of its postings: an entry stands
or falls whole (a refund may take the gross out of clearing and put the returned fee back). The database's
triggers hold the same rule against a concurrent writer that moved the same balance after the batch's read.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.core.chart import BalanceLimit
from ledger.core.checks import Prefix
from ledger.core.drafts import EntryDraft
from ledger.core.errors import AccountLimitExceeded
from ledger.core.facts import BalanceKey, Cumulative, Lookup

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


def check_limits(drafts: Sequence[EntryDraft], replays: dict[int, int], lookup: Lookup, prefix: Prefix) -> None:
    """Plays the batch's new entries, in order, on the totals read before it, and refuses the first entry after
    which a balance breaks its account's limit."""
    limits = {account_id: account.balance_limit for account_id, account in lookup.accounts.items()
              if account.balance_limit in BREACH_WORDS}
    # Running [debits, credits] by (account, fund, currency): plain tuples and lists on this path, which a bulk
    # import walks a million times; named only for a refusal.
    totals: dict[tuple, list[int]] = {tuple(key): list(value) for key, value in lookup.balances.items()}
    for index, draft in enumerate(drafts):
        if index in replays:
            continue
        touched = []  # (balance, its account's limit)
        for posting in draft.postings:
            if posting.debit_account_id in limits:
                key = (posting.debit_account_id, posting.fund_id, posting.currency)
                totals.setdefault(key, [0, 0])[0] += posting.amount_minor
                touched.append((key, limits[posting.debit_account_id]))
            if posting.credit_account_id in limits:
                key = (posting.credit_account_id, posting.fund_id, posting.currency)
                totals.setdefault(key, [0, 0])[1] += posting.amount_minor
                touched.append((key, limits[posting.credit_account_id]))
        for key, limit in touched:
            debits, credits = totals[key]
            if breaks(limit, debits, credits):
                _refuse(BalanceKey._make(key), Cumulative(debits, credits), lookup, draft, prefix(index))


def _refuse(key: BalanceKey, totals: Cumulative, lookup: Lookup, draft: EntryDraft, prefix: str) -> None:
    account = lookup.accounts[key.account_id]
    shortfall = abs(totals.debits_minor - totals.credits_minor)
    raise AccountLimitExceeded(
        f"account {account.code} in fund {lookup.funds[key.fund_id].code} {BREACH_WORDS[account.balance_limit]} "
        f"by {shortfall} minor units of {key.currency}",
        field=f"{prefix}postings", account_id=key.account_id, fund_id=key.fund_id, shortfall_minor=shortfall,
        idempotency_key=draft.idempotency_key)
