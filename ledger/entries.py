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
from dataclasses import dataclass, field, replace

from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
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
from ledger.models import Account, Balance, Entry, Fund, Period, Posting
from ledger.money import check_amount_minor, check_currency

MAX_POSTINGS_PER_ENTRY = 100
MAX_ENTRIES_PER_CALL = 10_000
_CHUNK_ROWS = 1_000


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


@dataclass(slots=True)
class _References:
    """What the batch's drafts point at, loaded once per batch."""

    accounts: dict[int, tuple[int, str, str]] = field(default_factory=dict)  # id → (org, code, limit)
    funds: dict[int, tuple[int, str, str, str]] = field(default_factory=dict)  # id → (org, code, status, cur)
    closed_periods: dict[int, list[tuple[dt.date, dt.date]]] = field(default_factory=dict)


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
    prefix = (lambda i: f"entries[{i}].") if len(drafts) > 1 else (lambda i: "")
    for index, draft in enumerate(drafts):
        check_draft(draft, prefix(index))
    references = _load_references(session, drafts)
    for index, draft in enumerate(drafts):
        _check_references(draft, references, prefix(index))
    digests = [draft.digest() for draft in drafts]
    replays, fresh = _split_replays(session, drafts, digests, prefix)
    posted_at = dt.datetime.now(dt.UTC)
    ids = _allocate_entry_ids(session, len(fresh))
    new_entries = {index: entry_id for index, entry_id in zip(fresh, ids, strict=True)}
    _apply_to_balances(session, drafts, fresh, references, prefix)
    _insert_rows(session, drafts, digests, new_entries, posted_at)
    loaded = _load_posted(session, sorted(set(replays.values())))
    results = []
    for index, draft in enumerate(drafts):
        if index in new_entries:
            results.append(_posted_from_draft(draft, new_entries[index], posted_at))
        else:
            results.append(loaded[replays[index]])
    return results


def _load_references(session: Session, drafts: Sequence[EntryDraft]) -> _References:
    account_ids = {i for d in drafts for p in d.postings for i in (p.debit_account_id, p.credit_account_id)}
    fund_ids = {p.fund_id for d in drafts for p in d.postings}
    references = _References()
    for row in session.execute(
        select(Account.id, Account.organisation_id, Account.code, Account.balance_limit)
        .where(Account.id.in_(account_ids))
    ):
        references.accounts[row.id] = (row.organisation_id, row.code, row.balance_limit)
    for row in session.execute(
        select(Fund.id, Fund.organisation_id, Fund.code, Fund.status, Fund.currency).where(Fund.id.in_(fund_ids))
    ):
        references.funds[row.id] = (row.organisation_id, row.code, row.status, row.currency)
    organisations = {d.organisation_id for d in drafts}
    first, last = min(d.effective_date for d in drafts), max(d.effective_date for d in drafts)
    for row in session.execute(
        select(Period.organisation_id, Period.start_date, Period.end_date).where(
            Period.organisation_id.in_(organisations), Period.status == "closed",
            Period.start_date <= last, Period.end_date >= first,
        )
    ):
        references.closed_periods.setdefault(row.organisation_id, []).append((row.start_date, row.end_date))
    return references


def _check_references(draft: EntryDraft, references: _References, prefix: str) -> None:
    organisation_id = draft.organisation_id
    for start, end in references.closed_periods.get(organisation_id, ()):
        if start <= draft.effective_date <= end:
            raise PeriodClosed(
                f"the period {start.isoformat()} to {end.isoformat()} is closed", field=f"{prefix}effective_date"
            )
    for index, posting in enumerate(draft.postings):
        where = f"{prefix}postings[{index}]."
        fund = references.funds.get(posting.fund_id)
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
            account = references.accounts.get(getattr(posting, name))
            if account is None:
                raise NotFound(f"account {getattr(posting, name)} does not exist", field=f"{where}{name}")
            if account[0] != organisation_id:
                raise OrganisationMismatch("account belongs to another organisation", field=f"{where}{name}")


def _split_replays(
    session: Session, drafts: Sequence[EntryDraft], digests: list[str], prefix
) -> tuple[dict[int, int], list[int]]:
    """Sorts drafts into replays (index → existing entry id) and fresh ones (indexes)."""
    keys = {(d.organisation_id, d.idempotency_key) for d in drafts}
    existing: dict[tuple[int, str], tuple[int, str]] = {}
    key_list = sorted(keys)
    for start in range(0, len(key_list), _CHUNK_ROWS):
        chunk = key_list[start:start + _CHUNK_ROWS]
        rows = session.execute(
            select(Entry.organisation_id, Entry.idempotency_key, Entry.id, Entry.payload_digest)
            .where(tuple_(Entry.organisation_id, Entry.idempotency_key).in_(chunk))
        )
        for row in rows:
            existing[(row.organisation_id, row.idempotency_key)] = (row.id, row.payload_digest)
    replays: dict[int, int] = {}
    fresh: list[int] = []
    first_in_batch: dict[tuple[int, str], int] = {}
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
            first_in_batch[key] = index
            fresh.append(index)
    return replays, fresh


def _allocate_entry_ids(session: Session, count: int) -> list[int]:
    """Takes ids for new entries up front, so entries and postings go in as plain multi-row inserts."""
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence('entries', 'id')) FROM generate_series(1, :n)"),
            {"n": count},
        )
        return [row[0] for row in rows]
    # SQLite: the write transaction began IMMEDIATE and holds the only write lock, so no other writer can
    # take these ids between this read and the insert.
    highest = session.execute(select(func.coalesce(func.max(Entry.id), 0))).scalar_one()
    return list(range(highest + 1, highest + 1 + count))


def _apply_to_balances(
    session: Session, drafts: Sequence[EntryDraft], fresh: list[int], references: _References, prefix
) -> None:
    """Adds the new postings to the cumulative totals, in sorted key order, and enforces account limits.

    The limit is checked on the totals the statement returns, while this transaction holds the rows'
    locks, so two concurrent payments cannot both pass on the same money.
    """
    deltas: dict[tuple[int, int, str], list[int]] = {}
    touched_by: dict[tuple[int, int, str], int] = {}
    for index in fresh:
        draft = drafts[index]
        for p in draft.postings:
            for account_id, side in ((p.debit_account_id, 0), (p.credit_account_id, 1)):
                key = (account_id, p.fund_id, p.currency)
                totals = deltas.setdefault(key, [draft.organisation_id, 0, 0])
                totals[1 + side] += p.amount_minor
                touched_by.setdefault(key, index)
    keys = sorted(deltas)
    for start in range(0, len(keys), _CHUNK_ROWS // 2):
        rows = [
            {"account_id": k[0], "fund_id": k[1], "currency": k[2], "organisation_id": deltas[k][0],
             "debits_minor": deltas[k][1], "credits_minor": deltas[k][2]}
            for k in keys[start:start + _CHUNK_ROWS // 2]
        ]
        for row in session.execute(_upsert_balances(session, rows)):
            _check_limit(row, references, drafts, touched_by, prefix)


def _upsert_balances(session: Session, rows: list[dict]):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Balance).values(rows)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[Balance.account_id, Balance.fund_id, Balance.currency],
        set_={
            "debits_minor": Balance.debits_minor + excluded.debits_minor,
            "credits_minor": Balance.credits_minor + excluded.credits_minor,
        },
    ).returning(Balance.account_id, Balance.fund_id, Balance.currency, Balance.debits_minor,
                Balance.credits_minor)


def _check_limit(row, references: _References, drafts, touched_by, prefix) -> None:
    _organisation_id, code, limit = references.accounts[row.account_id]
    if limit == BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS and row.credits_minor > row.debits_minor:
        shortfall = row.credits_minor - row.debits_minor
        rule = "would go below zero"
    elif limit == BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS and row.debits_minor > row.credits_minor:
        shortfall = row.debits_minor - row.credits_minor
        rule = "would be paid beyond what is owed"
    else:
        return
    index = touched_by[(row.account_id, row.fund_id, row.currency)]
    fund_code = references.funds[row.fund_id][1]
    raise AccountLimitExceeded(
        f"account {code} in fund {fund_code} {rule} by {shortfall} minor units of {row.currency}",
        field=f"{prefix(index)}postings", account_id=row.account_id, fund_id=row.fund_id,
        shortfall_minor=shortfall, idempotency_key=drafts[index].idempotency_key,
    )


def _insert_rows(
    session: Session, drafts: Sequence[EntryDraft], digests: list[str], new_entries: dict[int, int],
    posted_at: dt.datetime,
) -> None:
    entry_rows = []
    posting_rows = []
    for index, entry_id in new_entries.items():
        draft = drafts[index]
        entry_rows.append({
            "id": entry_id, "organisation_id": draft.organisation_id, "kind": draft.kind,
            "effective_date": draft.effective_date, "posted_at": posted_at, "description": draft.description,
            "idempotency_key": draft.idempotency_key, "payload_digest": digests[index],
            "recorded_by": draft.recorded_by, "reverses_entry_id": draft.reverses_entry_id,
        })
        posting_rows.extend(
            {"entry_id": entry_id, "organisation_id": draft.organisation_id,
             "effective_date": draft.effective_date, "fund_id": p.fund_id,
             "debit_account_id": p.debit_account_id, "credit_account_id": p.credit_account_id,
             "amount_minor": p.amount_minor, "currency": p.currency}
            for p in draft.postings
        )
    if entry_rows:
        session.execute(insert(Entry), entry_rows)
        session.execute(insert(Posting), posting_rows)


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
