"""Tamper evidence and the integrity check (DESIGN.md invariants 3 and 7).

The sealer runs after writes, never inside them (a chain computed at write time would serialise every
writer). It takes each organisation's entries that are not sealed yet, hashes each entry and each posting
into a leaf, builds an RFC 6962 Merkle tree over the leaves, and stores the batch with the hash of the
previous batch, so the batches of an organisation form a chain. The leaf hashes are kept with the batch,
so that ``verify`` can name the very entry or posting that changed, not only the batch.

Which entries are safe to seal: on PostgreSQL, ids come from a sequence before commit, so a transaction
holding id 100 may commit after one holding 101. The sealer therefore reads its high-water mark under
``LOCK TABLE entries IN SHARE MODE``, which waits for every writer already inside a transaction and lets
none start until the mark is read: every id at or below the mark is then committed or never will be. The
lock is held for one short transaction; the hashing happens afterwards without it. On SQLite writers are
already serialised by BEGIN IMMEDIATE.

``verify`` recomputes every cached total from the postings and re-hashes every sealed batch, returning
one ``Problem`` per mismatch with the ids involved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import case, func, literal, select, text, union_all
from sqlalchemy.orm import Session

from ledger.books.organisations import get_organisation
from ledger.core.chart import BalanceLimit
from ledger.core.facts import BalanceKey, Cumulative
from ledger.db.engine import Database
from ledger.db.models import (
    Account,
    Balance,
    DayBalance,
    Donation,
    Entry,
    FundFigures,
    Organisation,
    Posting,
    SealBatch,
    month_totals,
)
from ledger.db.types import utc_now

_months = month_totals.c  # a balance's totals by month (a view: monthly_balances and the current month)

MAX_ENTRIES_PER_BATCH = 10_000
GENESIS = "0" * 64
_RECORD = 41  # kind byte + 8-byte id + 32-byte hash
ENTRY, POSTING = b"E", b"P"  # the kind bytes of the stored leaves
_SEALER_LOCK_KEY = 0x46554E444C454447  # "FUNDLEDG": one sealer at a time on PostgreSQL


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing the integrity check found wrong, with the ids a person needs to look at."""

    kind: str
    message: str
    ids: dict[str, object]

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.ids.items())
        return f"{self.kind}: {self.message} [{where}]"


def _utc(moment: dt.datetime) -> str:
    # The column type hands every moment back in UTC, on both engines; a naive one would be read as local time
    # and seal a wrong hash, so it is a programming error.
    assert moment.tzinfo is not None, f"a sealed moment needs its zone: {moment!r}"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_leaf(entry) -> bytes:
    fields = (entry.id, entry.organisation_id, entry.kind, entry.effective_date.isoformat(),
              _utc(entry.posted_at), entry.description, entry.idempotency_key, entry.payload_digest,
              entry.recorded_by, entry.reverses_entry_id)
    return hashlib.sha256(b"\x00E" + "\x1f".join(map(str, fields)).encode()).digest()


def posting_leaf(posting) -> bytes:
    fields = (posting.id, posting.entry_id, posting.organisation_id, posting.effective_date.isoformat(),
              posting.fund_id, posting.debit_account_id, posting.credit_account_id, posting.amount_minor,
              posting.currency)
    return hashlib.sha256(b"\x00P" + "\x1f".join(map(str, fields)).encode()).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash: split at the largest power of two below n, so no leaf is duplicated."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:split]) + merkle_root(leaves[split:])).digest()


def _batch_hash(previous_hash: str, organisation_id: int, sequence_no: int, first: int, last: int,
                entry_count: int, posting_count: int, root: str) -> str:
    fields = (previous_hash, organisation_id, sequence_no, first, last, entry_count, posting_count, root)
    return hashlib.sha256("|".join(map(str, fields)).encode()).hexdigest()


class Leaf(NamedTuple):
    """One sealed row: its kind (``ENTRY`` or ``POSTING``, one byte as stored), its id and its SHA-256."""

    kind: bytes
    row_id: int
    digest: bytes

    @property
    def noun(self) -> str:
        return "entry" if self.kind == ENTRY else "posting"


def _records(leaves: list[Leaf]) -> bytes:
    return b"".join(leaf.kind + leaf.row_id.to_bytes(8, "big") + leaf.digest for leaf in leaves)


def _parse_records(blob: bytes) -> Iterator[Leaf]:
    for offset in range(0, len(blob), _RECORD):
        record = blob[offset:offset + _RECORD]
        yield Leaf(record[:1], int.from_bytes(record[1:9], "big"), record[9:])


def _high_water(db: Database) -> int:
    def read(session: Session) -> int:
        if db.dialect == "postgresql":
            session.execute(text("SET LOCAL lock_timeout = '5s'"))
            session.execute(text("LOCK TABLE entries IN SHARE MODE"))
        return session.execute(select(func.coalesce(func.max(Entry.id), 0))).scalar_one()

    return db.write(read)


def _nothing_to_seal(db: Database) -> bool:
    """True when no entry is newer than the newest sealed one. Every sealing run seals every organisation up
    to one high-water mark in one transaction, so no older entry can be left unsealed. Checked without a
    lock, so that an idle sealer (one per web worker, every few seconds) never makes writers wait."""
    with db.read() as session:
        newest_entry = session.execute(select(func.coalesce(func.max(Entry.id), 0))).scalar_one()
        newest_sealed = session.execute(select(func.coalesce(func.max(SealBatch.last_entry_id), 0))).scalar_one()
    return newest_entry <= newest_sealed


def seal_pending(db: Database) -> int:
    """Seals every committed, unsealed entry; returns how many batches it wrote."""
    if _nothing_to_seal(db):
        return 0
    high_water = _high_water(db)
    return db.write(lambda session: _seal_up_to(session, high_water, db.dialect))


def _seal_up_to(session: Session, high_water: int, dialect: str) -> int:
    if dialect == "postgresql" and not session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _SEALER_LOCK_KEY}
    ).scalar_one():
        return 0  # another sealer is at work and will cover these entries
    written = 0
    for organisation_id in session.scalars(select(Organisation.id).order_by(Organisation.id)):
        while _seal_next_batch(session, organisation_id, high_water):
            written += 1
    return written


def last_batch(session: Session, organisation_id: int) -> SealBatch | None:
    """The organisation's newest sealed batch, if any."""
    return session.scalars(
        select(SealBatch).where(SealBatch.organisation_id == organisation_id)
        .order_by(SealBatch.sequence_no.desc()).limit(1)
    ).first()


def _seal_next_batch(session: Session, organisation_id: int, high_water: int) -> bool:
    last = last_batch(session, organisation_id)
    after = last.last_entry_id if last else 0
    entries = session.execute(
        select(Entry).where(Entry.organisation_id == organisation_id, Entry.id > after, Entry.id <= high_water)
        .order_by(Entry.id).limit(MAX_ENTRIES_PER_BATCH)
    ).scalars().all()
    if not entries:
        return False
    first, final = entries[0].id, entries[-1].id
    records = _leaf_records(session, organisation_id, entries, first, final)
    root = merkle_root([leaf.digest for leaf in records]).hex()
    previous = last.batch_hash if last else GENESIS
    sequence_no = last.sequence_no + 1 if last else 1
    posting_count = sum(1 for leaf in records if leaf.kind == POSTING)
    session.add(SealBatch(
        organisation_id=organisation_id, sequence_no=sequence_no, first_entry_id=first, last_entry_id=final,
        entry_count=len(entries), posting_count=posting_count, leaves=_records(records), merkle_root=root,
        previous_hash=previous, sealed_at=utc_now(),
        batch_hash=_batch_hash(previous, organisation_id, sequence_no, first, final, len(entries),
                               posting_count, root),
    ))
    session.flush()
    return True


def _leaf_records(session: Session, organisation_id: int, entries, first: int, last: int) -> list[Leaf]:
    postings = session.execute(
        select(Posting).where(Posting.organisation_id == organisation_id, Posting.entry_id >= first,
                              Posting.entry_id <= last).order_by(Posting.id)
    ).scalars().all()
    return [Leaf(ENTRY, entry.id, entry_leaf(entry)) for entry in entries] + [
        Leaf(POSTING, posting.id, posting_leaf(posting)) for posting in postings]


def verify(session: Session, organisation_id: int | None = None) -> list[Problem]:
    """Everything wrong with the stored ledger: cached totals that differ from their postings, and
    sealed batches whose chain, root or rows no longer match."""
    problems = (verify_totals(session, organisation_id) + verify_days(session, organisation_id)
                + verify_months(session, organisation_id) + verify_gift_counts(session, organisation_id))
    organisations = [organisation_id] if organisation_id is not None else list(
        session.scalars(select(Organisation.id).order_by(Organisation.id)))
    for org in organisations:
        problems += verify_seals(session, org)
    return problems


def verify_totals(session: Session, organisation_id: int | None = None) -> list[Problem]:
    """Every cached total recomputed from the postings (of one organisation, or all): a Problem per balance whose
    stored debits or credits differ from its postings' sums, or whose last day is not its latest posting's date."""
    computed, stored = _summed_totals(session, organisation_id), _stored_totals(session, organisation_id)
    problems = []
    for key in sorted(set(computed) | set(stored)):
        (expected, expected_day), (actual, actual_day) = (computed.get(key, (Cumulative(0, 0), None)),
                                                          stored.get(key, (Cumulative(0, 0), None)))
        if expected != actual:
            problems.append(Problem(
                "total_mismatch", f"cached debits/credits {actual.debits_minor}/{actual.credits_minor} but postings "
                                  f"sum to {expected.debits_minor}/{expected.credits_minor}", key._asdict()))
        if expected_day != actual_day:
            problems.append(Problem(
                "last_day_mismatch", f"the balance's last day is {actual_day}, its latest posting's {expected_day}",
                key._asdict()))
    return problems


def verify_days(session: Session, organisation_id: int | None = None) -> list[Problem]:
    """Every limited balance's daily totals (``daily_balances``) recomputed from the postings: a Problem per day
    whose stored totals differ, or that is missing or has no postings behind it. A balance's last day has no row
    (its totals are the balance's, which ``verify_totals`` checks): one there is a Problem."""
    expected: dict[tuple, Cumulative] = {}
    running: dict[tuple, tuple[int, int]] = {}
    last: dict[tuple, tuple] = {}
    for row in session.execute(_daily_sums(organisation_id)):
        key = (row.account_id, row.fund_id, row.currency)
        debits, credits = running.get(key, (0, 0))
        running[key] = (debits + int(row.debits), credits + int(row.credits))
        expected[(*key, _as_date(row.day))] = Cumulative(*running[key])
        last[key] = (*key, _as_date(row.day))  # (the sums come in day order)
    for day in last.values():
        del expected[day]
    query = select(DayBalance.account_id, DayBalance.fund_id, DayBalance.currency, DayBalance.day,
                   DayBalance.debits_minor, DayBalance.credits_minor)
    if organisation_id is not None:
        query = query.where(DayBalance.organisation_id == organisation_id)
    stored = {tuple(row[:4]): Cumulative(row.debits_minor, row.credits_minor) for row in session.execute(query)}
    problems = []
    for key in sorted(set(expected) | set(stored)):
        if expected.get(key) != stored.get(key):
            problems.append(Problem(
                "day_total_mismatch", f"the daily totals of {key[3]} are {stored.get(key)}, the postings give "
                                      f"{expected.get(key)}",
                {"account_id": key[0], "fund_id": key[1], "currency": key[2], "day": key[3].isoformat()}))
    return problems


def verify_months(session: Session, organisation_id: int | None = None) -> list[Problem]:
    """Every balance's monthly totals (``month_totals``, kept by the store with the postings) recomputed from the
    postings: a Problem per month whose stored debits or credits differ, or that is missing or extra."""
    expected: dict[tuple, Cumulative] = {}
    for row in session.execute(_daily_sums(organisation_id, limited_only=False)):
        key = (row.account_id, row.fund_id, row.currency, _as_date(row.day).replace(day=1))
        debits, credits = expected.get(key, (0, 0))
        expected[key] = Cumulative(debits + int(row.debits), credits + int(row.credits))
    query = select(_months.account_id, _months.fund_id, _months.currency, _months.month,
                   _months.debits_minor, _months.credits_minor)
    if organisation_id is not None:
        query = query.where(_months.organisation_id == organisation_id)
    stored = {(*row[:3], _as_date(row.month)): Cumulative(row.debits_minor, row.credits_minor)
              for row in session.execute(query)}
    return [Problem("month_total_mismatch", f"the totals of the month are {stored.get(key)}, the postings give "
                                            f"{expected.get(key)}",
                    {"account_id": key[0], "fund_id": key[1], "currency": key[2], "month": key[3].isoformat()})
            for key in sorted(set(expected) | set(stored)) if expected.get(key) != stored.get(key)]


def verify_gift_counts(session: Session, organisation_id: int | None = None) -> list[Problem]:
    """Each fund's counted gifts, donors and anonymous gifts (``fund_figures``, kept by a trigger) against its
    donations."""
    anonymous = func.sum(case((Donation.donor_id.is_(None), 1), else_=0))
    query = select(Donation.fund_id, func.count(), func.count(Donation.donor_id.distinct()), anonymous) \
        .group_by(Donation.fund_id)
    kept = select(FundFigures.fund_id, FundFigures.gift_count, FundFigures.donor_count,
                  FundFigures.anonymous_gift_count)
    if organisation_id is not None:
        query = query.where(Donation.organisation_id == organisation_id)
        kept = kept.where(FundFigures.organisation_id == organisation_id)
    expected = {row[0]: tuple(int(value) for value in row[1:]) for row in session.execute(query)}
    stored = {row[0]: tuple(row[1:]) for row in session.execute(kept)}
    return [Problem("gift_count_mismatch", f"counted (gifts, donors, anonymous) {stored.get(fund_id)}, the "
                                           f"donations give {expected.get(fund_id)}", {"fund_id": fund_id})
            for fund_id in sorted(set(expected) | set(stored)) if expected.get(fund_id) != stored.get(fund_id)]


def _daily_sums(organisation_id: int | None, limited_only: bool = True):
    """The postings (of limited accounts only, by default), summed by balance and day, in day order."""
    def side(account_column, is_debit: bool):
        amount = Posting.amount_minor
        query = select(account_column.label("account_id"), Posting.fund_id, Posting.currency,
                       Posting.effective_date.label("day"),
                       (amount if is_debit else literal(0)).label("debits"),
                       (literal(0) if is_debit else amount).label("credits"))
        if limited_only:
            query = query.join(Account, Account.id == account_column) \
                .where(Account.balance_limit != BalanceLimit.NONE)
        if organisation_id is not None:
            query = query.where(Posting.organisation_id == organisation_id)
        return query

    both = union_all(side(Posting.debit_account_id, True), side(Posting.credit_account_id, False)).subquery()
    return (select(both.c.account_id, both.c.fund_id, both.c.currency, both.c.day,
                   func.sum(both.c.debits).label("debits"), func.sum(both.c.credits).label("credits"))
            .group_by(both.c.account_id, both.c.fund_id, both.c.currency, both.c.day)
            .order_by(both.c.account_id, both.c.fund_id, both.c.currency, both.c.day))


def _summed_totals(session: Session, organisation_id: int | None) -> dict[BalanceKey, tuple[Cumulative, dt.date]]:
    def side(account_column, is_debit: bool):
        amount = Posting.amount_minor
        query = select(account_column.label("account_id"), Posting.fund_id, Posting.currency,
                       Posting.effective_date.label("day"),
                       (amount if is_debit else literal(0)).label("debits"),
                       (literal(0) if is_debit else amount).label("credits"))
        if organisation_id is not None:
            query = query.where(Posting.organisation_id == organisation_id)
        return query

    both = union_all(side(Posting.debit_account_id, True), side(Posting.credit_account_id, False)).subquery()
    rows = session.execute(select(both.c.account_id, both.c.fund_id, both.c.currency,
                                  func.sum(both.c.debits).label("debits"), func.sum(both.c.credits).label("credits"),
                                  func.max(both.c.day).label("day"))
                           .group_by(both.c.account_id, both.c.fund_id, both.c.currency))
    return {BalanceKey(row.account_id, row.fund_id, row.currency): (Cumulative(int(row.debits), int(row.credits)),
                                                                    _as_date(row.day)) for row in rows}


def _stored_totals(session: Session, organisation_id: int | None) -> dict[BalanceKey, tuple[Cumulative, dt.date]]:
    query = select(Balance.account_id, Balance.fund_id, Balance.currency, Balance.debits_minor, Balance.credits_minor,
                   Balance.last_day)
    if organisation_id is not None:
        query = query.where(Balance.organisation_id == organisation_id)
    return {BalanceKey(row.account_id, row.fund_id, row.currency): (Cumulative(row.debits_minor, row.credits_minor),
                                                                    row.last_day) for row in session.execute(query)}


def _as_date(value) -> dt.date | None:
    # max() over a union of a Date column comes back from SQLite as text: the result type is not carried through.
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def verify_seals(session: Session, organisation_id: int) -> list[Problem]:
    problems: list[Problem] = []
    previous_hash, previous_last, expected_sequence = GENESIS, 0, 1
    batches = session.execute(
        select(SealBatch).where(SealBatch.organisation_id == organisation_id).order_by(SealBatch.sequence_no)
    ).scalars()
    for batch in batches:
        ids = {"organisation_id": organisation_id, "batch": batch.sequence_no}
        if batch.sequence_no != expected_sequence or batch.previous_hash != previous_hash:
            problems.append(Problem("chain_broken", "batch does not follow the previous one", ids))
        problems += _check_batch_fields(batch, ids)
        problems += _check_batch_rows(session, batch, previous_last, ids)
        previous_hash, previous_last, expected_sequence = batch.batch_hash, batch.last_entry_id, \
            batch.sequence_no + 1
    return problems


def _check_batch_fields(batch: SealBatch, ids: dict) -> list[Problem]:
    problems = []
    stored = list(_parse_records(batch.leaves))
    if merkle_root([leaf.digest for leaf in stored]).hex() != batch.merkle_root:
        problems.append(Problem("root_mismatch", "stored leaves do not hash to the batch's Merkle root", ids))
    expected = _batch_hash(batch.previous_hash, batch.organisation_id, batch.sequence_no, batch.first_entry_id,
                           batch.last_entry_id, batch.entry_count, batch.posting_count, batch.merkle_root)
    if expected != batch.batch_hash:
        problems.append(Problem("batch_hash_mismatch", "batch fields do not hash to its stored hash", ids))
    return problems


def _check_batch_rows(session: Session, batch: SealBatch, previous_last: int, ids: dict) -> list[Problem]:
    # Entries between the previous batch and this one belong to no batch: they were slipped in later.
    entries = session.execute(
        select(Entry).where(Entry.organisation_id == batch.organisation_id, Entry.id > previous_last,
                            Entry.id <= batch.last_entry_id).order_by(Entry.id)
    ).scalars().all()
    current = {leaf[:2]: leaf for leaf in _leaf_records(
        session, batch.organisation_id, entries, previous_last + 1, batch.last_entry_id)}
    sealed = {leaf[:2]: leaf for leaf in _parse_records(batch.leaves)}
    problems = []
    for key in sorted(set(current) | set(sealed)):
        leaf = current.get(key) or sealed[key]
        name, row_ids = leaf.noun, {**ids, f"{leaf.noun}_id": leaf.row_id}
        if key not in current:
            problems.append(Problem(f"{name}_missing", f"sealed {name} {leaf.row_id} is gone", row_ids))
        elif key not in sealed:
            problems.append(Problem(f"{name}_unsealed", f"{name} {leaf.row_id} was added inside sealed history",
                                    row_ids))
        elif current[key].digest != sealed[key].digest:
            problems.append(Problem(f"{name}_altered", f"{name} {leaf.row_id} changed after it was sealed",
                                    row_ids))
    return problems


@dataclass(frozen=True, slots=True)
class IntegrityStatus:
    """The integrity check of one organisation, now: problems (none when ``verified``), the newest sealed batch
    and how many entries wait for the sealer."""

    organisation_id: int
    problems: list[Problem]
    sealed_through: SealBatch | None
    unsealed_entries: int
    checked_at: dt.datetime

    @property
    def verified(self) -> bool:
        return not self.problems


def integrity_status(session: Session, organisation_id: int) -> IntegrityStatus:
    """Recomputes the organisation's cached totals and re-hashes its sealed batches, and says what is sealed."""
    get_organisation(session, organisation_id)
    last = last_batch(session, organisation_id)
    unsealed = session.scalar(select(func.count()).where(Entry.organisation_id == organisation_id,
                                                         Entry.id > (last.last_entry_id if last else 0)))
    return IntegrityStatus(organisation_id, verify(session, organisation_id), last, unsealed, utc_now())


def chain_head(session: Session, organisation_id: int) -> tuple[int, str] | None:
    """The newest batch's (sequence number, hash): the digest a published report cites."""
    last = last_batch(session, organisation_id)
    return (last.sequence_no, last.batch_hash) if last else None
