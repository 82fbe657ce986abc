"""Posting and reversing entries: the only way money moves in the ledger.

``post_entries`` takes drafts built by the recipes and checks them in two rounds (``ledger.core.checks``): first
what needs no database, then, against what ``ledger.db.store`` reads for the whole batch at once, the references,
the idempotency keys (a replay is answered with the original entry, a key reused for other content is refused)
and the account limits (``ledger.core.limits``). The store writes the new entries, their postings and the
cumulative balances. Any refusal rolls the batch back to its savepoint, so nothing of it is written.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.core.checks import check_drafts, check_not_after, check_references, field_prefix, find_replays
from ledger.core.drafts import EntryDraft, PostedEntry, PostingDraft
from ledger.core.errors import ConcurrentWrite, EntryAlreadyReversed, EntryKeptByRecord, LedgerError, NotFound
from ledger.core.facts import DailyFacts, Lookup
from ledger.core.limits import check_every_day, check_limits
from ledger.core.recipes import Particulars, reversal
from ledger.db.engine import DAYS_AHEAD, DEFAULT_DAYS_AHEAD
from ledger.db.listing import Page, keyset_page
from ledger.db.models import Donation, Entry, Grant, GrantPayment, Posting, Refund
from ledger.db.store import Batch, EntryIds, post_batches
from ledger.db.types import utc_now


def post_entry(session: Session, draft: EntryDraft, *, date_field: str = "effective_date") -> PostedEntry:
    """Posts one entry; a retry with the same idempotency key and content returns the original. ``date_field``:
    what the caller calls the entry's date (a gift's ``received_on``), for a refusal to name it so."""
    try:
        return post_entries(session, [draft])[0]
    except LedgerError as refusal:
        if refusal.field == "effective_date":
            refusal.field = date_field
        raise


def post_entries(session: Session, drafts: Sequence[EntryDraft]) -> list[PostedEntry]:
    """Posts a batch of entries in the caller's database transaction, all or none."""
    results: list[PostedEntry] = []
    if drafts:
        with cycle_collection_paused() if len(drafts) > 1 else nullcontext():
            post_batches(session, [_batch(session, drafts, results)], pipelined=len(drafts) > 1)
    return results


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector paused while a batch is posted: a batch makes thousands of short-lived rows, none in a
    cycle, and each full collection walks every object still alive, the caller's drafts included (at 100,000
    entries the bulk import spent a tenth of its CPU there). Whatever cycles the batch leaves are collected after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def post_chunks(session: Session, chunks: Iterable[Sequence[EntryDraft]]) -> int:
    """Posts many batches in the caller's transaction, preparing each while the database writes the one
    before (the bulk-import path). Returns how many entries are new."""
    counts: list[int] = []
    post_batches(session, (_batch(session, chunk, None, counts) for chunk in chunks if chunk), pipelined=True)
    return sum(counts)


def _batch(session: Session, drafts: Sequence[EntryDraft], results: list[PostedEntry] | None,
           counts: list[int] | None = None) -> Batch:
    """Checks the drafts that need no database, and wraps them for the store with the checks that do."""
    prefix = field_prefix(len(drafts))
    check_drafts(drafts, prefix)
    posted_at = utc_now()
    check_not_after(drafts, latest_date(session, posted_at), prefix)
    digests = [draft.digest() for draft in drafts]
    replays: dict[int, int] = {}
    judged: dict[str, object] = {}  # what ``check`` learnt, for ``check_days``

    def check(lookup: Lookup) -> None:
        # Replays first: a retry of an entry accepted before its fund or month closed still gets that entry.
        replays.update(find_replays(drafts, digests, lookup, prefix))
        for index, draft in enumerate(drafts):
            if index not in replays:
                check_references(draft, lookup, prefix(index))
        judged["changes"], judged["lookup"] = check_limits(drafts, replays, lookup, prefix), lookup

    def check_days(daily: DailyFacts) -> None:
        check_every_day(drafts, judged["changes"], daily, judged["lookup"], prefix)

    def finish(entry_ids: EntryIds) -> None:
        _check_inserted(drafts, replays, entry_ids)
        if counts is not None:
            counts.append(len(drafts) - len(replays))
        if results is not None:
            results.extend(_results(session, drafts, replays, entry_ids, posted_at))

    return Batch.of(drafts, digests, posted_at, check, finish, check_days, lambda: judged.get("changes", {}))


def latest_date(session: Session, now: dt.datetime | None = None) -> dt.date:
    """The latest date an entry may have now: today (UTC) and the days ahead the database was set up with."""
    days_ahead = session.info.get(DAYS_AHEAD, DEFAULT_DAYS_AHEAD)
    return (now or utc_now()).date() + dt.timedelta(days=days_ahead)


def _check_inserted(drafts: Sequence[EntryDraft], replays: dict[int, int], entry_ids: EntryIds) -> None:
    prefix = field_prefix(len(drafts))
    for index, draft in enumerate(drafts):
        if index not in replays and (draft.organisation_id, draft.idempotency_key) not in entry_ids:
            # Another transaction committed this key after our read: the retry will answer with its entry.
            raise ConcurrentWrite("a concurrent write used the same idempotency key",
                                  field=f"{prefix(index)}idempotency_key")


def _results(session: Session, drafts: Sequence[EntryDraft], replays: dict[int, int], entry_ids: EntryIds,
             posted_at: dt.datetime) -> list[PostedEntry]:
    loaded = _load_posted(session, sorted(set(replays.values())))
    # Positional, keyed by plain tuples: this runs once per entry of a batch (a thousand per call on the bulk path).
    return [
        loaded[replays[index]] if index in replays
        else PostedEntry(entry_ids[(draft.organisation_id, draft.idempotency_key)], draft.organisation_id, draft.kind,
                         draft.effective_date, posted_at, draft.description, draft.idempotency_key, draft.recorded_by,
                         draft.reverses_entry_id, draft.postings)
        for index, draft in enumerate(drafts)
    ]


def _load_posted(session: Session, entry_ids: list[int]) -> dict[int, PostedEntry]:
    """The entries with these ids and their postings, as the ledger holds them (marked as replayed)."""
    if not entry_ids:
        return {}
    postings: dict[int, list[PostingDraft]] = {}
    for row in session.scalars(select(Posting).where(Posting.entry_id.in_(entry_ids)).order_by(Posting.id)):
        postings.setdefault(row.entry_id, []).append(PostingDraft(
            row.fund_id, row.debit_account_id, row.credit_account_id, row.amount_minor, row.currency))
    return {row.id: PostedEntry(
        id=row.id, organisation_id=row.organisation_id, kind=row.kind, effective_date=row.effective_date,
        posted_at=row.posted_at, description=row.description, idempotency_key=row.idempotency_key,
        recorded_by=row.recorded_by, reverses_entry_id=row.reverses_entry_id,
        postings=tuple(postings.get(row.id, ())), replayed=True,
    ) for row in session.scalars(select(Entry).where(Entry.id.in_(entry_ids)))}


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
    earlier = session.execute(
        select(Entry.id, Entry.idempotency_key).where(Entry.reverses_entry_id == entry_id)).first()
    if earlier is not None and earlier.idempotency_key != idempotency_key:
        raise EntryAlreadyReversed(f"entry {entry_id} was already reversed by entry {earlier.id}",
                                   field="entry_id", reversal_entry_id=earlier.id)
    particulars = Particulars(effective_date or original.effective_date, idempotency_key, recorded_by,
                              description if description is not None else f"Reversal of entry {entry_id}")
    return post_entry(session, reversal(original, particulars, entry_id))


def _refuse_kept_by_record(session: Session, entry_id: int) -> None:
    holders = (
        ("donation", select(Donation.id).where(Donation.entry_id == entry_id)),
        ("refund", select(Refund.id).where(or_(Refund.entry_id == entry_id, Refund.cancelled_entry_id == entry_id))),
        ("grant", select(Grant.id).where(or_(Grant.approved_entry_id == entry_id,
                                             Grant.cancelled_entry_id == entry_id))),
        ("grant", select(GrantPayment.grant_id).where(GrantPayment.entry_id == entry_id)),
    )
    for what, query in holders:
        holder = session.scalars(query).first()
        if holder is not None:
            raise EntryKeptByRecord(
                f"entry {entry_id} records {what} {holder}; undo it through the {what}, not by reversing the entry",
                field="entry_id", **{f"{what}_id": holder})


def list_entries(
    session: Session, organisation_id: int, *, fund_ids: Iterable[int] | None = None, kind: str | None = None,
    date_from: dt.date | None = None, date_to: dt.date | None = None, after: int | None = None, limit: int = 100,
) -> Page:
    """A page of the organisation's entries (``PostedEntry``) in id order, optionally only those touching
    ``fund_ids``, of one kind, or effective within dates."""
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
    return Page([replace(loaded[entry.id], replayed=False) for entry in page.items], page.next_after)
