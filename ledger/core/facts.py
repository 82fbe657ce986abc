"""What a batch of drafts points at in the ledger, as the checks need it: the request the store answers, and
the answer (``Lookup``), every row in it named.

The store (``ledger.db.store``) reads a ``LookupRequest`` in one round trip and fills a ``Lookup``; the checks
(``ledger.core.checks``, ``ledger.core.limits``) judge the drafts against it without touching a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from ledger.core.drafts import EntryDraft


class EntryKey(NamedTuple):
    """An entry's idempotency key, unique within its organisation."""

    organisation_id: int
    idempotency_key: str


class BalanceKey(NamedTuple):
    """One cumulative balance: an account, in one fund, in one currency."""

    account_id: int
    fund_id: int
    currency: str


class Cumulative(NamedTuple):
    """The cumulative debits and credits of a balance (TigerBeetle's debits_posted and credits_posted)."""

    debits_minor: int
    credits_minor: int


class DayTotals(NamedTuple):
    """A balance's cumulative debits and credits at the end of one day (kept for accounts with a limit)."""

    day: dt.date
    debits_minor: int
    credits_minor: int


# For each balance a batch moves on an account with a limit: its days from the batch's first date on, and the one
# day before, in date order (``ledger.core.limits.check_every_day``).
DailyFacts = dict[tuple[int, int, str], list[DayTotals]]
# What a batch adds to a limited balance, by day: (account, fund, currency) -> {day: [debits, credits]}.
DayChanges = dict[tuple[int, int, str], dict[dt.date, list[int]]]


class AccountFacts(NamedTuple):
    organisation_id: int
    code: str
    balance_limit: str  # a ``BalanceLimit`` value


class FundFacts(NamedTuple):
    organisation_id: int
    code: str
    status: str  # a ``FundStatus`` value
    currency: str


class ClosedPeriod(NamedTuple):
    start_date: dt.date
    end_date: dt.date


class KeptEntry(NamedTuple):
    """An entry committed earlier under an idempotency key, and the digest of its content."""

    entry_id: int
    payload_digest: str


class DateRange(NamedTuple):
    first: dt.date
    last: dt.date


@dataclass(frozen=True, slots=True)
class LookupRequest:
    """What to read for a batch: its accounts and funds, each organisation's range of effective dates (to find
    closed periods), its idempotency keys, and the balances it moves."""

    account_ids: list[int]
    fund_ids: list[int]
    date_ranges: dict[int, DateRange]
    keys: list[EntryKey]
    balance_keys: list[BalanceKey]

    @classmethod
    def of(cls, drafts: Sequence[EntryDraft]) -> LookupRequest:
        postings = [posting for draft in drafts for posting in draft.postings]
        account_ids = {account_id for posting in postings
                       for account_id in (posting.debit_account_id, posting.credit_account_id)}
        fund_ids = {posting.fund_id for posting in postings}
        date_ranges: dict[int, DateRange] = {}
        for draft in drafts:
            first, last = date_ranges.get(draft.organisation_id, (draft.effective_date, draft.effective_date))
            if not first <= draft.effective_date <= last:
                date_ranges[draft.organisation_id] = DateRange(min(first, draft.effective_date),
                                                               max(last, draft.effective_date))
            elif draft.organisation_id not in date_ranges:
                date_ranges[draft.organisation_id] = DateRange(first, last)
        # Plain tuples while deduplicating (a batch has many postings and few balances), named once sorted.
        keys = sorted({(draft.organisation_id, draft.idempotency_key) for draft in drafts})
        balance_keys = sorted({(account_id, posting.fund_id, posting.currency) for posting in postings
                               for account_id in (posting.debit_account_id, posting.credit_account_id)})
        return cls(sorted(account_ids), sorted(fund_ids), date_ranges,
                   list(map(partial(tuple.__new__, EntryKey), keys)),
                   list(map(partial(tuple.__new__, BalanceKey), balance_keys)))


@dataclass(slots=True)
class Lookup:
    """What the ledger held before the batch: accounts and funds by id, each organisation's closed periods that
    meet the batch's dates, the entries already committed under the batch's keys, and the cumulative totals of
    the balances the batch moves."""

    accounts: dict[int, AccountFacts] = field(default_factory=dict)
    funds: dict[int, FundFacts] = field(default_factory=dict)
    closed_periods: dict[int, list[ClosedPeriod]] = field(default_factory=dict)
    existing: dict[EntryKey, KeptEntry] = field(default_factory=dict)
    balances: dict[BalanceKey, Cumulative] = field(default_factory=dict)
