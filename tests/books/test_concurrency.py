"""Concurrent writers on PostgreSQL: row locks, the idempotency race and period closes (DESIGN.md §3, §4, §6).

SQLite serialises writers with BEGIN IMMEDIATE, so these races exist only on a server; every test here uses
``postgres_db`` and is skipped without TEST_DATABASE_URL. Writers of the hot-fund test call ``db.write``
with a single attempt, so that a deadlock or serialization failure cannot hide behind the retry loop.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select, text

from ledger.books.balances import balance, days_of
from ledger.books.entries import post_entry, reverse_entry
from ledger.books.integrity import verify_days, verify_months, verify_totals
from ledger.books.periods import close_period, list_periods
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.drafts import EntryDraft, PostedEntry
from ledger.core.errors import AccountLimitExceeded, EntryAlreadyReversed, PeriodClosed
from ledger.core.money import Money
from ledger.db import store
from ledger.db.engine import Database
from ledger.db.models import Entry
from tests.builders import Books, balances_of, key, new_books, particulars

pytestmark = pytest.mark.postgres

THREADS = 8
OPERATIONS_PER_THREAD = 250
Key = tuple[int, int, str]  # (account id, fund id, currency)


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def run_in_threads(count: int, work: Callable[[int], object]) -> list:
    """Runs ``work(index)`` on ``count`` threads at once; any exception in a thread is raised here."""
    start = threading.Barrier(count)

    def started(index: int):
        start.wait(timeout=60)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(started, index) for index in range(count)]
        return [future.result(timeout=600) for future in futures]


def entry_count(db: Database, organisation_id: int) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).where(Entry.organisation_id == organisation_id))


def wait_until_a_backend_waits_for_a_lock(db: Database, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("no backend started waiting for a lock")


# --- one hot fund -------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one thread's accepted entries add to each balance, and how many of each kind were refused."""

    debits: Counter = field(default_factory=Counter)
    credits: Counter = field(default_factory=Counter)
    accepted: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        for mine, theirs in ((self.debits, other.debits), (self.credits, other.credits),
                             (self.accepted, other.accepted), (self.refused, other.refused)):
            mine.update(theirs)


@dataclass(frozen=True)
class HotBooks:
    books: Books
    hot: int
    other: int
    day: dt.date = dt.date(2026, 11, 2)  # the entries' date

    def account(self, role: Role) -> int:
        return self.books.account(role)


def attempt(db: Database, tally: Tally, kind: str, draft: EntryDraft, overdrawn_fund: int | None) -> None:
    """Posts ``draft``; a refusal is allowed only when ``overdrawn_fund`` is given, and only for its bank."""
    try:
        db.write(lambda session: post_entry(session, draft), attempts=1)
    except AccountLimitExceeded as refusal:
        if overdrawn_fund is None:
            raise
        assert refusal.code == "account_limit_exceeded"
        assert (refusal.details["account_id"], refusal.details["fund_id"]) == (
            draft.postings[0].credit_account_id, overdrawn_fund)
        tally.refused[kind] += 1
        return
    tally.accepted[kind] += 1
    for posting in draft.postings:
        tally.debits[(posting.debit_account_id, posting.fund_id, posting.currency)] += posting.amount_minor
        tally.credits[(posting.credit_account_id, posting.fund_id, posting.currency)] += posting.amount_minor


def hot_fund_worker(db: Database, books: HotBooks, index: int) -> Tally:
    """A few hundred random operations on the hot fund; amounts drift the hot bank down, so some
    payments and transfers find it empty and must be refused."""
    rng, chart, tally = random.Random(index), books.books.chart, Tally()
    for _ in range(OPERATIONS_PER_THREAD):
        operation = rng.choices(["donation", "grant", "transfer_out", "transfer_in"], [8, 5, 4, 4])[0]
        if operation == "donation":
            draft = recipes.offline_donation(chart, books.hot, cny(rng.randint(100, 1_500)), "bank",
                                             particulars(books.day))
            attempt(db, tally, "donation", draft, None)
        elif operation == "grant":
            amount = cny(rng.randint(500, 3_000))
            approval = recipes.grant_approved(chart, books.hot, amount, "charitable_activities", particulars(books.day))
            attempt(db, tally, "grant_approved", approval, None)
            attempt(db, tally, "grant_paid", recipes.grant_paid(chart, books.hot, amount, particulars(books.day)),
                    books.hot)
        else:
            source, target = (books.hot, books.other) if operation == "transfer_out" else (books.other, books.hot)
            draft = recipes.transfer_between_funds(chart, source, target, cny(rng.randint(100, 2_500)),
                                                   particulars(books.day))
            attempt(db, tally, operation, draft, source)
    return tally


# Entries of an earlier day write their balances in their own statement; today's, when another writer of the process
# moves the same balances, write them apart and hold them for the COMMIT (ledger.db.held): a payment that finds the
# bank spent by then is refused at the COMMIT, typed, and nothing of it stays.
@pytest.mark.parametrize("day", [dt.date(2026, 11, 2), None], ids=["backdated", "today"])
def test_writers_on_one_hot_fund_keep_every_balance_exact_and_never_overdraw(postgres_db, day, monkeypatch):
    monkeypatch.setattr(store, "_HOLDING", store._Holding())  # whatever other tests taught this process
    db = postgres_db
    books = new_books(db)
    hot = HotBooks(books, books.open_fund, books.other, day or dt.datetime.now(dt.UTC).date())
    expected = Tally()
    for fund in (hot.hot, hot.other):
        attempt(db, expected, "seed", recipes.offline_donation(books.chart, fund, cny(20_000), "bank",
                                                               particulars(hot.day)), None)

    for tally in run_in_threads(THREADS, lambda index: hot_fund_worker(db, hot, index)):
        expected.add(tally)

    keys = set(expected.debits) | set(expected.credits)
    assert balances_of(db, books.organisation_id) == {k: (expected.debits[k], expected.credits[k]) for k in keys}
    assert entry_count(db, books.organisation_id) == sum(expected.accepted.values())
    with db.read() as session:
        assert verify_totals(session, books.organisation_id) == []
        assert verify_months(session, books.organisation_id) == []
        for fund in (hot.hot, hot.other):
            assert balance(session, hot.account(Role.BANK), fund, "CNY").balance_minor("debit") >= 0
            assert balance(session, hot.account(Role.GRANTS_PAYABLE), fund, "CNY").balance_minor("credit") >= 0
    # The limit was exercised both ways: some payments went through, some found the bank empty.
    for kind in ("grant_paid", "transfer_out", "transfer_in"):
        assert expected.accepted[kind] > 0, kind
        assert expected.refused[kind] > 0, kind


# Across a month's end: the balance row's month moves on (revision 0020) while backdated entries land in the month
# before.
DAYS = [dt.date(2026, 10, 30) + dt.timedelta(days=offset) for offset in range(5)]


def dated_worker(db: Database, books: HotBooks, index: int) -> Tally:
    """Gifts into the hot fund and transfers out of it, each dated on one of five days at random: the entries dated
    on the balance's last day keep their day in their own statement, the backdated ones rewrite the later days, and
    the two kinds race for the same rows."""
    rng, chart, tally = random.Random(1_000 + index), books.books.chart, Tally()
    for _ in range(OPERATIONS_PER_THREAD // 2):
        day = rng.choice(DAYS)
        if rng.random() < 0.5:
            draft = recipes.offline_donation(chart, books.hot, cny(rng.randint(100, 1_500)), "bank", particulars(day))
            attempt(db, tally, "donation", draft, None)
        else:
            draft = recipes.transfer_between_funds(chart, books.hot, books.other, cny(rng.randint(100, 2_500)),
                                                   particulars(day))
            attempt(db, tally, "transfer_out", draft, books.hot)
    return tally


def test_writers_dating_entries_on_different_days_keep_every_days_totals_exact_and_never_overdraw(postgres_db):
    db = postgres_db
    books = new_books(db)
    hot = HotBooks(books, books.open_fund, books.other)
    expected = Tally()
    attempt(db, expected, "seed", recipes.offline_donation(books.chart, hot.hot, cny(5_000), "bank",
                                                           particulars(DAYS[0])), None)

    for tally in run_in_threads(THREADS, lambda index: dated_worker(db, hot, index)):
        expected.add(tally)

    keys = set(expected.debits) | set(expected.credits)
    assert balances_of(db, books.organisation_id) == {k: (expected.debits[k], expected.credits[k]) for k in keys}
    with db.read() as session:
        assert verify_totals(session, books.organisation_id) == []
        assert verify_months(session, books.organisation_id) == []
        assert verify_days(session, books.organisation_id) == []
        days = days_of(session, hot.account(Role.BANK), hot.hot, "CNY")
    assert [row.day for row in days] == sorted(DAYS)
    assert all(row.debits_minor >= row.credits_minor for row in days)  # the hot bank never below zero, any day
    assert expected.accepted["transfer_out"] > 0 and expected.refused["transfer_out"] > 0


# --- one idempotency key ------------------------------------------------------------------------------------


def test_one_idempotency_key_sent_by_eight_threads_at_once_makes_one_entry(postgres_db):
    db = postgres_db
    books = new_books(db)
    rounds = 10
    for _ in range(rounds):
        draft = recipes.offline_donation(books.chart, books.open_fund, cny(1_000), "bank", particulars())

        results: list[PostedEntry] = run_in_threads(
            THREADS, lambda _index, draft=draft: db.write(lambda session: post_entry(session, draft)))

        assert len({result.id for result in results}) == 1
        assert sorted(result.replayed for result in results) == [False] + [True] * (THREADS - 1)
        with db.read() as session:
            assert session.scalar(select(func.count()).where(
                Entry.organisation_id == books.organisation_id,
                Entry.idempotency_key == draft.idempotency_key)) == 1
    assert entry_count(db, books.organisation_id) == rounds
    bank = (books.account(Role.BANK), books.open_fund, "CNY")
    assert balances_of(db, books.organisation_id)[bank] == (rounds * 1_000, 0)


# --- period close -------------------------------------------------------------------------------------------


OCTOBER = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


def october_gift(books: Books, fund: int | None = None) -> EntryDraft:
    return recipes.offline_donation(books.chart, fund or books.open_fund, cny(100), "bank",
                                    particulars(dt.date(2026, 10, 15)))


def test_a_period_close_racing_with_writers_admits_no_entry_committed_after_it(postgres_db):
    db = postgres_db
    books = new_books(db)
    enough_before, closed = threading.Event(), threading.Event()
    accepted_so_far = itertools.count(1)  # next() on it is atomic under the GIL

    # Writers spread over the four funds, so that (unlike on one hot fund) several are inside a transaction
    # at the moment of the close, not queued on one balance row.
    funds = [books.general, books.open_fund, books.restricted, books.other]

    def post_and_linger(session, fund: int) -> PostedEntry:
        # A request that does more work after posting (say, its audit log) keeps its transaction open a
        # moment longer: the window in which a close must not slip in between its insert and its commit.
        entry = post_entry(session, october_gift(books, fund))
        time.sleep(0.01)
        return entry

    def write(index: int) -> tuple[list[int], Counter]:
        ids, outcomes, tries_after_close = [], Counter(), 0
        while tries_after_close < 25 and len(ids) < 1_000:
            tries_after_close += closed.is_set()
            try:
                fund = funds[index % len(funds)]
                ids.append(db.write(lambda session, fund=fund: post_and_linger(session, fund), attempts=1).id)
                if next(accepted_so_far) >= 40:
                    enough_before.set()
            except PeriodClosed as refusal:  # also when the database's trigger caught it mid-write
                outcomes[(refusal.code, refusal.field)] += 1
        return ids, outcomes

    def close() -> int:
        assert enough_before.wait(timeout=60)
        db.write(lambda session: close_period(session, books.organisation_id, 2026, 10, "closer@example.org"))
        with db.read() as session:
            highest = session.scalar(select(func.max(Entry.id)).where(Entry.organisation_id == books.organisation_id))
        closed.set()
        return highest

    results = run_in_threads(THREADS + 1, lambda index: close() if index == THREADS else write(index))

    highest_after_close, writers = results[-1], results[:-1]
    accepted_ids = [entry_id for ids, _ in writers for entry_id in ids]
    refusals = sum((outcomes for _, outcomes in writers), Counter())
    with db.read() as session:
        late = session.scalar(select(func.count()).where(
            Entry.organisation_id == books.organisation_id, Entry.id > highest_after_close,
            Entry.effective_date.between(*OCTOBER)))
        assert verify_totals(session, books.organisation_id) == []
        assert verify_months(session, books.organisation_id) == []
    assert late == 0
    assert accepted_ids
    assert max(accepted_ids) <= highest_after_close
    assert set(refusals) == {("period_closed", "effective_date")}
    assert refusals.total() >= THREADS * 25
    assert entry_count(db, books.organisation_id) == len(accepted_ids)


def test_closing_a_period_waits_for_a_writer_already_inside_a_transaction(postgres_db):
    db = postgres_db
    books = new_books(db)
    with ThreadPoolExecutor(max_workers=1) as pool, db.session() as writer:
        entry = post_entry(writer, october_gift(books))  # inserted, not committed yet
        closing = pool.submit(db.write, lambda session: close_period(session, books.organisation_id, 2026, 10,
                                                                     "closer@example.org"))
        wait_until_a_backend_waits_for_a_lock(db, timeout_s=5)
        assert not closing.done()
        writer.commit()
        closing.result(timeout=60)

    with db.read() as session:
        assert [(period.start_date, period.end_date) for period in list_periods(session, books.organisation_id)
                if period.status == "closed"] == [OCTOBER]
        assert session.scalars(select(Entry.id).where(Entry.organisation_id == books.organisation_id)).all() == [
            entry.id]


def test_a_writer_caught_behind_a_period_close_is_refused_with_period_closed(postgres_db):
    db = postgres_db
    books = new_books(db)
    with ThreadPoolExecutor(max_workers=1) as pool, db.session() as closer:
        close_period(closer, books.organisation_id, 2026, 10, "closer@example.org")  # holds entries in SHARE mode
        pending = pool.submit(db.write, lambda session: post_entry(session, october_gift(books)))
        wait_until_a_backend_waits_for_a_lock(db)
        closer.commit()

        with pytest.raises(PeriodClosed) as refused:
            pending.result(timeout=60)

    assert refused.value.code == "period_closed"
    assert entry_count(db, books.organisation_id) == 0


# --- reversals ----------------------------------------------------------------------------------------------


def test_a_reversal_racing_another_reversal_of_the_same_entry_is_refused_as_already_reversed(postgres_db):
    db = postgres_db
    books = new_books(db)
    # Goods used at once touch no account with a limit, so a second reversal is not refused by a limit first.
    original = db.write(lambda session: post_entry(session, recipes.in_kind_donation(
        books.chart, books.open_fund, cny(5_000), particulars(), consumed_at_once=True)))

    def reverse(session, idempotency_key: str) -> PostedEntry:
        return reverse_entry(session, books.organisation_id, original.id, idempotency_key=idempotency_key,
                             recorded_by="auditor@example.org")

    with ThreadPoolExecutor(max_workers=1) as pool, db.session() as first:
        first_reversal = reverse(first, key("first"))
        pending = pool.submit(db.write, lambda session: reverse(session, key("second")))
        wait_until_a_backend_waits_for_a_lock(db)
        first.commit()

        with pytest.raises(EntryAlreadyReversed) as refused:
            pending.result(timeout=60)

    assert (refused.value.code, refused.value.details["reversal_entry_id"]) == (
        "entry_already_reversed", first_reversal.id)
    assert entry_count(db, books.organisation_id) == 2
