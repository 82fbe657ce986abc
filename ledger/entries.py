"""Posting and reversing entries: the only way money moves in the ledger.

``post_entries`` takes drafts built by the recipes, checks them (pure checks first, then one query per
kind of reference for the whole batch), answers replays of an idempotency key with the original entry,
and writes the rest in a fixed order: cumulative balances first, locked in sorted key order so that
concurrent writers never deadlock, then entries, then postings. Any refusal raises before the caller's
database transaction commits, so nothing of the batch is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.chart import BalanceLimit
from ledger.errors import (
    AccountLimitExceeded,
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
from ledger.models import Entry, Posting
from ledger.money import check_amount_minor, check_currency
from ledger.store import Lookup, read_lookup, write_batch

MAX_POSTINGS_PER_ENTRY = 100
MAX_ENTRIES_PER_CALL = 10_000


@dataclass(frozen=True, slots=True)
class PostingDraft:
    """One posting to be written: ``amount_minor`` of ``currency`` inside ``fund_id``, from the credit
    account to the debit account."""

    fund_id: int
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An entry as a recipe builds it, before the ledger accepts it (see ``models.Entry`` for fields)."""

    organisation_id: int
    kind: str
    effective_date: dt.date
    description: str
    idempotency_key: str
    recorded_by: str
    postings: tuple[PostingDraft, ...]
    reverses_entry_id: int | None = None

    def digest(self) -> str:
        """SHA-256 of everything that makes the entry what it is, but not who recorded it: a retry by
        another worker of the same request is still the same entry."""
        parts = [str(self.organisation_id), self.kind, self.effective_date.isoformat(), self.description,
                 str(self.reverses_entry_id)]
        parts += [f"{p.fund_id}:{p.debit_account_id}:{p.credit_account_id}:{p.amount_minor}:{p.currency}"
                  for p in self.postings]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """An entry the ledger holds. ``replayed`` is true when the call was a retry of an earlier one."""

    id: int
    organisation_id: int
    kind: str
    effective_date: dt.date
    posted_at: dt.datetime
    description: str
    idempotency_key: str
    recorded_by: str
    reverses_entry_id: int | None
    postings: tuple[PostingDraft, ...]
    replayed: bool = False


def check_draft(draft: EntryDraft, prefix: str = "") -> None:
    """The checks that need no database. Raises the first problem found, naming its field."""
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
        for name in ("fund_id", "debit_account_id", "credit_account_id"):
            value = getattr(posting, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidInput("must be a positive integer id", field=f"{where}{name}")
        if posting.debit_account_id == posting.credit_account_id:
            raise SameAccount("debit and credit accounts must differ", field=f"{where}credit_account_id")


def _check_text(value: object, name: str, max_length: int, allow_empty: bool = False) -> None:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise InvalidInput("is required and must be text", field=name)
    if len(value) > max_length:
        raise InvalidInput(f"must be at most {max_length} characters", field=name)


def post_entry(session: Session, draft: EntryDraft) -> PostedEntry:
    """Posts one entry; a retry with the same idempotency key and content returns the original."""
    return post_entries(session, [draft])[0]


def post_entries(session: Session, drafts: Sequence[EntryDraft]) -> list[PostedEntry]:
    """Posts a batch of entries in the caller's database transaction, all or none."""
    if len(drafts) > MAX_ENTRIES_PER_CALL:
        raise TooMany(f"at most {MAX_ENTRIES_PER_CALL} entries per call", field="entries")
    if not drafts:
        return []
    prefix = (lambda i: f"entries[{i}].") if len(drafts) > 1 else (lambda i: "")
    for index, draft in enumerate(drafts):
        check_draft(draft, prefix(index))
    lookup = _read_lookup(session, drafts)
    for index, draft in enumerate(drafts):
        _check_references(draft, lookup, prefix(index))
    digests = [draft.digest() for draft in drafts]
    replays, fresh = _split_replays(drafts, digests, lookup.existing, prefix)
    posted_at = dt.datetime.now(dt.UTC)
    new_entries = dict(zip(fresh, lookup.new_ids, strict=False))
    deltas, touched_by = _balance_deltas(drafts, fresh)
    totals = write_batch(session, deltas, *_rows(drafts, digests, new_entries, posted_at))
    for row in totals:
        _check_limit(row, lookup, drafts, touched_by, prefix)
    loaded = _load_posted(session, sorted(set(replays.values())))
    return [
        _posted_from_draft(draft, new_entries[index], posted_at) if index in new_entries
        else loaded[replays[index]]
        for index, draft in enumerate(drafts)
    ]


def _read_lookup(session: Session, drafts: Sequence[EntryDraft]) -> Lookup:
    account_ids = {i for d in drafts for p in d.postings for i in (p.debit_account_id, p.credit_account_id)}
    fund_ids = {p.fund_id for d in drafts for p in d.postings}
    date_ranges: dict[int, tuple[dt.date, dt.date]] = {}
    for draft in drafts:
        first, last = date_ranges.get(draft.organisation_id, (draft.effective_date, draft.effective_date))
        date_ranges[draft.organisation_id] = (min(first, draft.effective_date), max(last, draft.effective_date))
    keys = sorted({(d.organisation_id, d.idempotency_key) for d in drafts})
    # Ids are reserved for every draft; the few that turn out to be replays leave gaps, which entry ids may
    # have (receipt numbers may not, and they have their own series).
    return read_lookup(session, sorted(account_ids), sorted(fund_ids), date_ranges, keys, len(drafts))


def _check_references(draft: EntryDraft, lookup: Lookup, prefix: str) -> None:
    organisation_id = draft.organisation_id
    for start, end in lookup.closed_periods.get(organisation_id, ()):
        if start <= draft.effective_date <= end:
            raise PeriodClosed(
                f"the period {start.isoformat()} to {end.isoformat()} is closed", field=f"{prefix}effective_date"
            )
    for index, posting in enumerate(draft.postings):
        where = f"{prefix}postings[{index}]."
        fund = lookup.funds.get(posting.fund_id)
        if fund is None:
            raise NotFound(f"fund {posting.fund_id} does not exist", field=f"{where}fund_id")
        if fund[0] != organisation_id:
            raise OrganisationMismatch("fund belongs to another organisation", field=f"{where}fund_id")
        if fund[2] != "open":
            raise FundClosed(f"fund {fund[1]} is closed", field=f"{where}fund_id")
        if posting.currency != fund[3]:
            raise CurrencyMismatch(
                f"fund {fund[1]} keeps its books in {fund[3]}, not {posting.currency}", field=f"{where}currency"
            )
        for name in ("debit_account_id", "credit_account_id"):
            account = lookup.accounts.get(getattr(posting, name))
            if account is None:
                raise NotFound(f"account {getattr(posting, name)} does not exist", field=f"{where}{name}")
            if account[0] != organisation_id:
                raise OrganisationMismatch("account belongs to another organisation", field=f"{where}{name}")


def _split_replays(
    drafts: Sequence[EntryDraft], digests: list[str], existing: dict[tuple[int, str], tuple[int, str]], prefix
) -> tuple[dict[int, int], list[int]]:
    """Sorts drafts into replays (index → existing entry id) and fresh ones (indexes)."""
    replays: dict[int, int] = {}
    fresh: list[int] = []
    first_in_batch: set[tuple[int, str]] = set()
    for index, (draft, digest) in enumerate(zip(drafts, digests, strict=True)):
        key = (draft.organisation_id, draft.idempotency_key)
        if key in existing:
            entry_id, stored_digest = existing[key]
            if stored_digest != digest:
                raise IdempotencyKeyReused(
                    f"idempotency key was used for entry {entry_id} with other content",
                    field=f"{prefix(index)}idempotency_key", entry_id=entry_id,
                )
            replays[index] = entry_id
        elif key in first_in_batch:
            raise IdempotencyKeyReused(
                "idempotency key appears twice in one batch", field=f"{prefix(index)}idempotency_key"
            )
        else:
            first_in_batch.add(key)
            fresh.append(index)
    return replays, fresh


def _balance_deltas(drafts: Sequence[EntryDraft], fresh: list[int]) -> tuple[list[tuple], dict]:
    """What the new postings add to each (account, fund, currency), in sorted key order: every writer
    locks balance rows in this one order, so two writers can wait for each other but never deadlock."""
    deltas: dict[tuple[int, int, str], list[int]] = {}
    touched_by: dict[tuple[int, int, str], int] = {}
    for index in fresh:
        draft = drafts[index]
        for p in draft.postings:
            for account_id, side in ((p.debit_account_id, 1), (p.credit_account_id, 2)):
                key = (account_id, p.fund_id, p.currency)
                totals = deltas.setdefault(key, [draft.organisation_id, 0, 0])
                totals[side] += p.amount_minor
                touched_by.setdefault(key, index)
    return [(*key, *deltas[key]) for key in sorted(deltas)], touched_by


def _rows(drafts: Sequence[EntryDraft], digests: list[str], new_entries: dict[int, int],
          posted_at: dt.datetime) -> tuple[list[tuple], list[tuple]]:
    entries, postings = [], []
    for index, entry_id in new_entries.items():
        d = drafts[index]
        entries.append((entry_id, d.organisation_id, d.kind, d.effective_date, posted_at, d.description,
                        d.idempotency_key, digests[index], d.recorded_by, d.reverses_entry_id))
        postings.extend((entry_id, d.organisation_id, d.effective_date, p.fund_id, p.debit_account_id,
                         p.credit_account_id, p.amount_minor, p.currency) for p in d.postings)
    return entries, postings


def _check_limit(row: tuple, lookup: Lookup, drafts, touched_by, prefix) -> None:
    """Enforces the account's limit on the totals the write returned, while this transaction holds the
    row's lock, so two concurrent payments cannot both pass on the same money."""
    account_id, fund_id, currency, debits, credits = row
    _organisation_id, code, limit = lookup.accounts[account_id]
    if limit == BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS and credits > debits:
        shortfall, rule = credits - debits, "would go below zero"
    elif limit == BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS and debits > credits:
        shortfall, rule = debits - credits, "would be paid beyond what is owed"
    else:
        return
    index = touched_by[(account_id, fund_id, currency)]
    fund_code = lookup.funds[fund_id][1]
    raise AccountLimitExceeded(
        f"account {code} in fund {fund_code} {rule} by {shortfall} minor units of {currency}",
        field=f"{prefix(index)}postings", account_id=account_id, fund_id=fund_id,
        shortfall_minor=shortfall, idempotency_key=drafts[index].idempotency_key,
    )


def _posted_from_draft(draft: EntryDraft, entry_id: int, posted_at: dt.datetime) -> PostedEntry:
    return PostedEntry(
        id=entry_id, organisation_id=draft.organisation_id, kind=draft.kind,
        effective_date=draft.effective_date, posted_at=posted_at, description=draft.description,
        idempotency_key=draft.idempotency_key, recorded_by=draft.recorded_by,
        reverses_entry_id=draft.reverses_entry_id, postings=draft.postings,
    )


def _load_posted(session: Session, entry_ids: list[int]) -> dict[int, PostedEntry]:
    if not entry_ids:
        return {}
    postings: dict[int, list[PostingDraft]] = {}
    for row in session.execute(
        select(Posting).where(Posting.entry_id.in_(entry_ids)).order_by(Posting.id)
    ).scalars():
        postings.setdefault(row.entry_id, []).append(PostingDraft(
            row.fund_id, row.debit_account_id, row.credit_account_id, row.amount_minor, row.currency))
    entries = {}
    for row in session.execute(select(Entry).where(Entry.id.in_(entry_ids))).scalars():
        entries[row.id] = PostedEntry(
            id=row.id, organisation_id=row.organisation_id, kind=row.kind, effective_date=row.effective_date,
            posted_at=row.posted_at, description=row.description, idempotency_key=row.idempotency_key,
            recorded_by=row.recorded_by, reverses_entry_id=row.reverses_entry_id,
            postings=tuple(postings.get(row.id, ())), replayed=True,
        )
    return entries


def get_entry(session: Session, organisation_id: int, entry_id: int) -> PostedEntry:
    """The entry with its postings; raises NotFound for an unknown id or another organisation's entry."""
    entry = _load_posted(session, [entry_id]).get(entry_id)
    if entry is None or entry.organisation_id != organisation_id:
        raise NotFound(f"entry {entry_id} does not exist", field="entry_id")
    return replace(entry, replayed=False)


def reverse_entry(
    session: Session, organisation_id: int, entry_id: int, *, idempotency_key: str, recorded_by: str,
    effective_date: dt.date | None = None, description: str | None = None,
) -> PostedEntry:
    """Posts the mirror image of an entry, naming it; both stay visible. An entry is reversed once."""
    original = get_entry(session, organisation_id, entry_id)
    draft = EntryDraft(
        organisation_id=organisation_id, kind="reversal",
        effective_date=effective_date or original.effective_date,
        description=description if description is not None else f"Reversal of entry {entry_id}",
        idempotency_key=idempotency_key, recorded_by=recorded_by, reverses_entry_id=entry_id,
        postings=tuple(
            PostingDraft(p.fund_id, p.credit_account_id, p.debit_account_id, p.amount_minor, p.currency)
            for p in original.postings
        ),
    )
    earlier = session.execute(
        select(Entry.id, Entry.idempotency_key).where(Entry.reverses_entry_id == entry_id)
    ).first()
    if earlier is not None and earlier.idempotency_key != idempotency_key:
        raise EntryAlreadyReversed(
            f"entry {entry_id} was already reversed by entry {earlier.id}", field="entry_id",
            reversal_entry_id=earlier.id,
        )
    return post_entry(session, draft)
