"""Posting and reversing entries: the only way money moves in the ledger.

``post_entries`` takes drafts built by the recipes and checks them in two rounds: first what needs no
database (amounts, currencies, texts, duplicate keys), then, against what ``ledger.db.store`` reads for the
whole batch at once, the references (each account and fund exists, belongs to the entry's organisation,
is open and keeps the posting's currency; no entry falls in a closed month) and the idempotency keys (a
replay is answered with the original entry, a key reused for other content is refused). The store writes
the new entries, their postings and the cumulative balances; the account limits are then judged on the
totals it returns. Any refusal rolls the batch back to its savepoint, so nothing of it is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.core.chart import BalanceLimit
from ledger.core.errors import (
    AccountLimitExceeded,
    ConcurrentWrite,
    CurrencyMismatch,
    EntryAlreadyReversed,
    EntryEmpty,
    EntryKeptByRecord,
    FundClosed,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    OrganisationMismatch,
    PeriodClosed,
    SameAccount,
    TooMany,
)
from ledger.core.money import check_amount_minor, check_currency
from ledger.db.listing import keyset_page
from ledger.db.models import Donation, Entry, Grant, Posting, Refund
from ledger.db.store import Batch, Lookup, LookupRequest, post_batches

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
        another worker of the same request is still the same entry. The fields go in through repr(), which
        quotes every string, so no text can pass for a field boundary."""
        content = (self.organisation_id, self.kind, self.effective_date.isoformat(), self.description,
                   self.reverses_entry_id,
                   tuple((p.fund_id, p.debit_account_id, p.credit_account_id, p.amount_minor, p.currency)
                         for p in self.postings))
        return hashlib.sha256(repr(content).encode()).hexdigest()


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
    results: list[PostedEntry] = []
    if drafts:
        post_batches(session, [_batch(session, drafts, results)], pipelined=len(drafts) > 1)
    return results


def post_chunks(session: Session, chunks: Iterable[Sequence[EntryDraft]]) -> int:
    """Posts many batches in the caller's transaction, preparing each while the database writes the one
    before (the bulk-import path). Returns how many entries are new."""
    counts: list[int] = []
    post_batches(session, (_batch(session, chunk, None, counts) for chunk in chunks if chunk), pipelined=True)
    return sum(counts)


def _batch(session: Session, drafts: Sequence[EntryDraft], results: list[PostedEntry] | None,
           counts: list[int] | None = None) -> Batch:
    """Checks the drafts that need no database, and wraps them for the store with the checks that do."""
    if len(drafts) > MAX_ENTRIES_PER_CALL:
        raise TooMany(f"at most {MAX_ENTRIES_PER_CALL} entries per call", field="entries")
    prefix = (lambda i: f"entries[{i}].") if len(drafts) > 1 else (lambda i: "")
    for index, draft in enumerate(drafts):
        check_draft(draft, prefix(index))
    _refuse_duplicate_keys(drafts, prefix)
    digests = [draft.digest() for draft in drafts]
    posted_at = dt.datetime.now(dt.UTC)
    replays: dict[int, int] = {}

    def check(lookup: Lookup) -> None:
        # Replays first: a retry of an entry accepted before its fund or month closed still gets that entry.
        replays.update(_replays(drafts, digests, lookup.existing, prefix))
        for index, draft in enumerate(drafts):
            if index not in replays:
                _check_references(draft, lookup, prefix(index))
        _check_limits(drafts, replays, lookup, prefix)

    def finish(entry_ids: dict[tuple[int, str], int]) -> None:
        _check_inserted(drafts, replays, entry_ids, prefix)
        if counts is not None:
            counts.append(len(drafts) - len(replays))
        if results is not None:
            results.extend(_results(session, drafts, replays, entry_ids, posted_at))

    return Batch(_lookup_request(drafts), *_rows(drafts, digests, posted_at), check, finish)


def _results(session, drafts, replays, entry_ids: dict, posted_at) -> list[PostedEntry]:
    loaded = _load_posted(session, sorted(set(replays.values())))
    return [
        loaded[replays[index]] if index in replays
        else _posted_from_draft(draft, entry_ids[(draft.organisation_id, draft.idempotency_key)], posted_at)
        for index, draft in enumerate(drafts)
    ]


def _lookup_request(drafts: Sequence[EntryDraft]) -> LookupRequest:
    account_ids = {i for d in drafts for p in d.postings for i in (p.debit_account_id, p.credit_account_id)}
    fund_ids = {p.fund_id for d in drafts for p in d.postings}
    date_ranges: dict[int, tuple[dt.date, dt.date]] = {}
    for draft in drafts:
        first, last = date_ranges.get(draft.organisation_id, (draft.effective_date, draft.effective_date))
        date_ranges[draft.organisation_id] = (min(first, draft.effective_date), max(last, draft.effective_date))
    keys = sorted({(d.organisation_id, d.idempotency_key) for d in drafts})
    balance_keys = sorted({(account_id, p.fund_id, p.currency) for d in drafts for p in d.postings
                           for account_id in (p.debit_account_id, p.credit_account_id)})
    return LookupRequest(sorted(account_ids), sorted(fund_ids), date_ranges, keys, balance_keys)


def _refuse_duplicate_keys(drafts: Sequence[EntryDraft], prefix) -> None:
    seen: set[tuple[int, str]] = set()
    for index, draft in enumerate(drafts):
        key = (draft.organisation_id, draft.idempotency_key)
        if key in seen:
            raise IdempotencyKeyReused(
                "idempotency key appears twice in one batch", field=f"{prefix(index)}idempotency_key")
        seen.add(key)


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


def _replays(
    drafts: Sequence[EntryDraft], digests: list[str], existing: dict[tuple[int, str], tuple[int, str]], prefix
) -> dict[int, int]:
    """Drafts whose key was used before (index → that entry's id); a key used for other content is refused."""
    replays: dict[int, int] = {}
    for index, (draft, digest) in enumerate(zip(drafts, digests, strict=True)):
        found = existing.get((draft.organisation_id, draft.idempotency_key))
        if found is None:
            continue
        entry_id, stored_digest = found
        if stored_digest != digest:
            raise IdempotencyKeyReused(
                f"idempotency key was used for entry {entry_id} with other content",
                field=f"{prefix(index)}idempotency_key", entry_id=entry_id,
            )
        replays[index] = entry_id
    return replays


def _check_inserted(drafts: Sequence[EntryDraft], replays: dict[int, int], entry_ids: dict, prefix) -> None:
    for index, draft in enumerate(drafts):
        if index not in replays and (draft.organisation_id, draft.idempotency_key) not in entry_ids:
            # Another transaction committed this key after our read: the retry will answer with its entry.
            raise ConcurrentWrite("a concurrent write used the same idempotency key",
                                  field=f"{prefix(index)}idempotency_key")


_LIMIT_RULES = {
    BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS: (lambda debits, credits: credits > debits, "would go below zero"),
    BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS: (lambda debits, credits: debits > credits,
                                                  "would be paid beyond what is owed"),
}


def _check_limits(drafts: Sequence[EntryDraft], replays: dict[int, int], lookup: Lookup, prefix) -> None:
    """Plays the batch's entries, in order, on the totals read before it, and refuses the first entry
    after which a balance breaks its account's limit. An entry stands or falls whole, so it is judged after
    all its postings (a refund may take the gross from clearing and put the returned fee back). The
    database's triggers hold the same rule when a concurrent writer moves the same balance in between."""
    limited = {account_id for account_id, account in lookup.accounts.items() if account[2] in _LIMIT_RULES}
    totals = dict(lookup.balances)
    for index, draft in enumerate(drafts):
        if index in replays:
            continue
        touched = []
        for posting in draft.postings:
            if posting.debit_account_id in limited:
                touched.append(_add(totals, (posting.debit_account_id, posting.fund_id, posting.currency),
                                    posting.amount_minor, 0))
            if posting.credit_account_id in limited:
                touched.append(_add(totals, (posting.credit_account_id, posting.fund_id, posting.currency),
                                    0, posting.amount_minor))
        for key in touched:
            _refuse_breach(key, totals[key], lookup, draft, index, prefix)


def _add(totals: dict, key: tuple[int, int, str], debit: int, credit: int) -> tuple[int, int, str]:
    debits, credits = totals.get(key, (0, 0))
    totals[key] = (debits + debit, credits + credit)
    return key


def _refuse_breach(key: tuple[int, int, str], totals: tuple[int, int], lookup: Lookup, draft: EntryDraft,
                   index: int, prefix) -> None:
    account_id, fund_id, currency = key
    _organisation_id, code, limit = lookup.accounts[account_id]
    breaks, rule = _LIMIT_RULES[limit]
    if not breaks(*totals):
        return
    shortfall = abs(totals[0] - totals[1])
    raise AccountLimitExceeded(
        f"account {code} in fund {lookup.funds[fund_id][1]} {rule} by {shortfall} minor units of {currency}",
        field=f"{prefix(index)}postings", account_id=account_id, fund_id=fund_id, shortfall_minor=shortfall,
        idempotency_key=draft.idempotency_key,
    )


def _rows(drafts: Sequence[EntryDraft], digests: list[str], posted_at: dt.datetime) -> tuple[list, list]:
    entries, postings = [], []
    for d, digest in zip(drafts, digests, strict=True):
        entries.append((d.organisation_id, d.kind, d.effective_date, posted_at, d.description,
                        d.idempotency_key, digest, d.recorded_by, d.reverses_entry_id))
        postings.extend((d.organisation_id, d.idempotency_key, d.effective_date, p.fund_id, p.debit_account_id,
                         p.credit_account_id, p.amount_minor, p.currency) for p in d.postings)
    return entries, postings


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
    """Posts the mirror image of an entry, naming it; both stay visible. An entry is reversed once, and not
    at all when a gift, refund or grant row records it (that row would go on claiming the money)."""
    original = get_entry(session, organisation_id, entry_id)
    _refuse_kept_by_record(session, entry_id)
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


def _refuse_kept_by_record(session: Session, entry_id: int) -> None:
    for model, columns, what in ((Donation, (Donation.entry_id,), "donation"), (Refund, (Refund.entry_id,), "refund"),
                                 (Grant, (Grant.approved_entry_id, Grant.paid_entry_id), "grant")):
        holder = session.scalars(select(model.id).where(or_(*(column == entry_id for column in columns)))).first()
        if holder is not None:
            raise EntryKeptByRecord(
                f"entry {entry_id} records {what} {holder}; undo it through the {what}, not by reversing the entry",
                field="entry_id", **{f"{what}_id": holder})


def list_entries(
    session: Session, organisation_id: int, *, fund_ids: Iterable[int] | None = None, kind: str | None = None,
    date_from: dt.date | None = None, date_to: dt.date | None = None, after: int | None = None, limit: int = 100,
) -> tuple[list[PostedEntry], int | None]:
    """A page of the organisation's entries in id order, optionally only those touching ``fund_ids``, of one
    kind, or effective within dates; with the id to pass as ``after`` for the next page."""
    query = select(Entry).where(Entry.organisation_id == organisation_id)
    if fund_ids is not None:
        query = query.where(Entry.id.in_(select(Posting.entry_id).where(
            Posting.organisation_id == organisation_id, Posting.fund_id.in_(list(fund_ids)))))
    if kind is not None:
        query = query.where(Entry.kind == kind)
    if date_from is not None:
        query = query.where(Entry.effective_date >= date_from)
    if date_to is not None:
        query = query.where(Entry.effective_date <= date_to)
    page = keyset_page(session, query, Entry.id, after, limit)
    loaded = _load_posted(session, [entry.id for entry in page.items])
    return [replace(loaded[entry.id], replayed=False) for entry in page.items], page.next_after
