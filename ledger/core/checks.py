"""The checks a batch of drafts passes before anything is written, in two rounds: ``check_drafts`` needs no
database (amounts, currencies, texts, ids, keys repeated within the batch); ``check_references`` and
``find_replays`` judge the drafts against the ``Lookup`` the store read (each account and fund exists, belongs to
the entry's organisation, is open and keeps the posting's currency; no entry falls in a closed month; a key used
before is a replay of the same content or a refusal). The account limits are judged by ``ledger.core.limits``.

Each refusal names its field the way the caller sent it: ``postings[0].amount_minor`` for one entry,
``entries[3].postings[0].amount_minor`` in a batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from ledger.core.drafts import MAX_ENTRIES_PER_CALL, MAX_POSTINGS_PER_ENTRY, EntryDraft
from ledger.core.errors import (
    CurrencyMismatch,
    EntryAlreadyReversed,
    EntryEmpty,
    FundClosed,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    OrganisationMismatch,
    PeriodClosed,
    SameAccount,
    TooMany,
)
from ledger.core.facts import Lookup
from ledger.core.money import check_amount_minor, check_currency
from ledger.core.vocabulary import FundStatus

Prefix = Callable[[int], str]
# Everything dated before an organisation's books opened is kept as one closed period starting on the first day
# there is (``ledger.books.organisations``): the closed-period guards, in code and in the database, refuse it.
BEFORE_THE_BOOKS = dt.date.min


def field_prefix(batch_size: int) -> Prefix:
    """How the fields of the batch's ``index``-th entry are named: a lone entry's fields carry no prefix."""
    if batch_size == 1:
        return lambda index: ""
    return lambda index: f"entries[{index}]."


def check_drafts(drafts: Sequence[EntryDraft], prefix: Prefix) -> None:
    """Every check that needs no database, on every draft of the batch."""
    if len(drafts) > MAX_ENTRIES_PER_CALL:
        raise TooMany(f"at most {MAX_ENTRIES_PER_CALL} entries per call", field="entries")
    for index, draft in enumerate(drafts):
        check_draft(draft, prefix(index))
    refuse_repeated_keys(drafts, prefix)
    refuse_repeated_reversals(drafts, prefix)


def check_not_after(drafts: Sequence[EntryDraft], latest: dt.date, prefix: Prefix) -> None:
    """No entry is dated after ``latest`` (today and the days ahead an organisation's clock may be: a date further
    on is a typing mistake, and would stand in the books as a future nobody can close)."""
    for index, draft in enumerate(drafts):
        if draft.effective_date > latest:
            raise InvalidInput(f"is after {latest.isoformat()}, the latest date an entry may have today",
                               field=f"{prefix(index)}effective_date", latest=latest.isoformat())


def check_draft(draft: EntryDraft, prefix: str = "") -> None:
    """The checks of one draft that need no database. Raises the first problem found, naming its field."""
    _check_text(draft.kind, f"{prefix}kind", 40)
    _check_text(draft.description, f"{prefix}description", 500, allow_empty=True)
    _check_text(draft.idempotency_key, f"{prefix}idempotency_key", 200)
    _check_text(draft.recorded_by, f"{prefix}recorded_by", 200)
    if not isinstance(draft.effective_date, dt.date) or isinstance(draft.effective_date, dt.datetime):
        raise InvalidInput("effective date must be a calendar date", field=f"{prefix}effective_date")
    if not draft.postings:
        raise EntryEmpty("an entry needs at least one posting", field=f"{prefix}postings")
    if len(draft.postings) > MAX_POSTINGS_PER_ENTRY:
        raise TooMany(f"an entry has at most {MAX_POSTINGS_PER_ENTRY} postings", field=f"{prefix}postings")
    for index, posting in enumerate(draft.postings):
        where = f"{prefix}postings[{index}]."
        check_amount_minor(posting.amount_minor, f"{where}amount_minor")
        check_currency(posting.currency, f"{where}currency")
        for name in ("fund_id", "debit_account_id", "credit_account_id"):  # inline: three times a posting
            value = getattr(posting, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidInput("must be a positive integer id", field=f"{where}{name}")
        if posting.debit_account_id == posting.credit_account_id:
            raise SameAccount("debit and credit accounts must differ", field=f"{where}credit_account_id")


def _check_text(value: object, field: str, max_length: int, allow_empty: bool = False) -> None:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise InvalidInput("is required and must be text", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"must be at most {max_length} characters", field=field)


def refuse_repeated_keys(drafts: Sequence[EntryDraft], prefix: Prefix) -> None:
    seen: set[tuple[int, str]] = set()
    for index, draft in enumerate(drafts):
        key = (draft.organisation_id, draft.idempotency_key)
        if key in seen:
            raise IdempotencyKeyReused("idempotency key appears twice in one batch",
                                       field=f"{prefix(index)}idempotency_key")
        seen.add(key)


def refuse_repeated_reversals(drafts: Sequence[EntryDraft], prefix: Prefix) -> None:
    """An entry is reversed once: two reversals of it in one batch are refused at the second."""
    seen: set[int] = set()
    for index, draft in enumerate(drafts):
        if draft.reverses_entry_id is None:
            continue
        if draft.reverses_entry_id in seen:
            raise EntryAlreadyReversed(f"entry {draft.reverses_entry_id} is reversed twice in one batch",
                                       field=f"{prefix(index)}reverses_entry_id")
        seen.add(draft.reverses_entry_id)


def find_replays(drafts: Sequence[EntryDraft], digests: Sequence[str], lookup: Lookup,
                 prefix: Prefix) -> dict[int, int]:
    """The drafts whose key was used before, by index, with the id of that entry. A key used before for other
    content is refused: it is a client's mistake, not a retry."""
    replays: dict[int, int] = {}
    for index, (draft, digest) in enumerate(zip(drafts, digests, strict=True)):
        kept = lookup.existing.get((draft.organisation_id, draft.idempotency_key))  # an EntryKey's equal
        if kept is None:
            continue
        if kept.payload_digest != digest:
            raise IdempotencyKeyReused(
                f"idempotency key was used for entry {kept.entry_id} with other content",
                field=f"{prefix(index)}idempotency_key", entry_id=kept.entry_id)
        replays[index] = kept.entry_id
    return replays


def check_references(draft: EntryDraft, lookup: Lookup, prefix: str) -> None:
    """The draft's month is open, and each posting's fund and accounts exist, belong to the draft's organisation,
    and (the fund) is open and keeps the posting's currency."""
    for period in lookup.closed_periods.get(draft.organisation_id, ()):
        if period.start_date == BEFORE_THE_BOOKS and draft.effective_date <= period.end_date:
            opened = period.end_date + dt.timedelta(days=1)
            raise InvalidInput(f"is before the organisation's books opened, on {opened.isoformat()}",
                               field=f"{prefix}effective_date", books_opened_on=opened.isoformat())
        if period.start_date <= draft.effective_date <= period.end_date:
            raise PeriodClosed(
                f"the period {period.start_date.isoformat()} to {period.end_date.isoformat()} is closed",
                field=f"{prefix}effective_date", period_start=period.start_date.isoformat(),
                period_end=period.end_date.isoformat())
    for index, posting in enumerate(draft.postings):
        where = f"{prefix}postings[{index}]."
        fund = lookup.funds.get(posting.fund_id)
        if fund is None:
            raise NotFound(f"fund {posting.fund_id} does not exist", field=f"{where}fund_id")
        if fund.organisation_id != draft.organisation_id:
            raise OrganisationMismatch("fund belongs to another organisation", field=f"{where}fund_id")
        if fund.status != FundStatus.OPEN:
            raise FundClosed(f"fund {fund.code} is closed", field=f"{where}fund_id")
        if posting.currency != fund.currency:
            raise CurrencyMismatch(f"fund {fund.code} keeps its books in {fund.currency}, not {posting.currency}",
                                   field=f"{where}currency")
        for name in ("debit_account_id", "credit_account_id"):
            account_id = getattr(posting, name)
            account = lookup.accounts.get(account_id)
            if account is None:
                raise NotFound(f"account {account_id} does not exist", field=f"{where}{name}")
            if account.organisation_id != draft.organisation_id:
                raise OrganisationMismatch("account belongs to another organisation", field=f"{where}{name}")
