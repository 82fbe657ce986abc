"""Balances written with the COMMIT (``ledger.db.held``): an entry of today whose balances another writer of the
process is moving writes them in a statement held until its transaction's next statement or its COMMIT, sent then
in the same round trip. Each test makes the contention itself: another write session, in the same thread, posts to
the same balances first and keeps its transaction open (its own statement locks the rows until it commits).

The held write is never lost and never written twice: its transaction's next statement sends it first, COMMIT sends
it with itself, ROLLBACK forgets it. A day moved on meanwhile refuses it for a retry; a limit broken meanwhile refuses
it, typed, and nothing of the entry stays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ledger.books.balances import balance, days_of
from ledger.books.entries import post_entry
from ledger.books.integrity import verify_days, verify_months, verify_totals
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.drafts import EntryDraft
from ledger.core.errors import AccountLimitExceeded
from ledger.core.money import Money
from ledger.db import held, store
from ledger.db.engine import Database
from ledger.db.models import Entry
from tests.builders import Books, new_books, particulars

pytestmark = pytest.mark.postgres

TODAY = dt.datetime.now(dt.UTC).date()


def gift(books: Books, amount_minor: int, day: dt.date = TODAY, fund: int | None = None) -> EntryDraft:
    return recipes.offline_donation(books.chart, fund or books.open_fund, Money(amount_minor, "CNY"), "bank",
                                    particulars(day))


def spend(books: Books, amount_minor: int) -> EntryDraft:
    return recipes.transfer_between_funds(books.chart, books.open_fund, books.other, Money(amount_minor, "CNY"),
                                          particulars(TODAY))


@pytest.fixture(autouse=True)
def fresh_score(monkeypatch) -> None:
    """Each test starts where holding pays (other tests of the process may have taught it otherwise)."""
    monkeypatch.setattr(store, "_HOLDING", store._Holding())


@pytest.fixture
def books(postgres_db) -> Books:
    books = new_books(postgres_db)
    # Every balance row a test's entries move, each with its last day today; the open fund's bank at 10,000.
    for draft in (gift(books, 11_000), gift(books, 1_000, fund=books.other), spend(books, 1_000)):
        postgres_db.write(lambda session, draft=draft: post_entry(session, draft))
    return books


@contextmanager
def another_writer(db: Database, draft) -> Iterator[Session]:
    """A write session of this process that has posted ``draft`` and holds its balance rows until it commits."""
    with db.session() as session:
        post_entry(session, draft)
        yield session


def impatient(session: Session) -> Session:
    """The session gives up waiting for a lock after 5 s: the other writer is this same thread, so a wait for its
    rows (a balance written at once, not held) would never end."""
    session.execute(text("SET LOCAL lock_timeout = '5s'"))
    return session


def bank(db: Database, books: Books) -> int:
    with db.read() as session:
        return balance(session, books.account(Role.BANK), books.open_fund, "CNY").balance_minor("debit")


def entries(db: Database, books: Books) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).where(Entry.organisation_id == books.organisation_id))


def books_exact(db: Database, books: Books) -> None:
    with db.read() as session:
        assert verify_totals(session, books.organisation_id) == []
        assert verify_days(session, books.organisation_id) == []
        assert verify_months(session, books.organisation_id) == []


def rows_locked(db: Database, books: Books) -> bool:
    """Whether another transaction holds the bank balance's row lock now."""
    with db.engine.connect() as connection:
        free = connection.execute(text(
            "SELECT account_id FROM balances WHERE account_id = :account AND fund_id = :fund "
            "FOR UPDATE SKIP LOCKED"), {"account": books.account(Role.BANK), "fund": books.open_fund}).all()
        connection.rollback()
        return not free


def test_a_contended_gift_writes_its_balances_with_the_commit_and_locks_nothing_before(postgres_db, books):
    db = postgres_db
    with another_writer(db, gift(books, 300)) as other, db.session() as mine:
        post_entry(impatient(mine), gift(books, 500))  # were the balances written now, this would wait
        other.commit()
        assert not rows_locked(db, books)  # the gift posted, and its balance rows free: its write is held
        assert bank(db, books) == 10_300
        mine.commit()

    assert bank(db, books) == 10_800
    books_exact(db, books)


def test_the_next_statement_of_the_transaction_sends_the_held_write_first(postgres_db, books):
    db = postgres_db
    with another_writer(db, gift(books, 300)) as other, db.session() as mine:
        post_entry(impatient(mine), gift(books, 500))
        other.commit()
        assert balance(mine, books.account(Role.BANK), books.open_fund, "CNY").balance_minor("debit") == 10_800
        assert rows_locked(db, books)  # written now, by this transaction
        mine.commit()

    assert store._HOLDING.score == -1  # held for nothing: a round trip more than the one statement

    assert bank(db, books) == 10_800
    books_exact(db, books)


def test_a_rollback_forgets_the_held_write_and_nothing_of_the_entry_stays(postgres_db, books):
    db = postgres_db
    before = entries(db, books)
    with another_writer(db, gift(books, 300)) as other, db.session() as mine:
        post_entry(impatient(mine), gift(books, 500))
        mine.rollback()
        other.commit()

    assert (bank(db, books), entries(db, books)) == (10_300, before + 1)
    db.write(lambda session: post_entry(session, gift(books, 200)))  # the pool's connections carry nothing over
    assert bank(db, books) == 10_500
    books_exact(db, books)


def test_a_day_moved_on_meanwhile_refuses_the_held_write_and_the_retry_judges_the_days(postgres_db, books):
    db = postgres_db
    attempts = []
    with another_writer(db, gift(books, 300, TODAY + dt.timedelta(days=1))) as other:
        def work(session: Session):
            attempts.append(post_entry(impatient(session), gift(books, 500)))
            if len(attempts) == 1:
                other.commit()  # the bank's last day is tomorrow now: today's gift is a backdated one

        db.write(work)

    assert len(attempts) == 2
    assert bank(db, books) == 10_800
    with db.read() as session:
        days = days_of(session, books.account(Role.BANK), books.open_fund, "CNY")
    assert [(day.day, day.debits_minor - day.credits_minor) for day in days] == [
        (TODAY, 10_500), (TODAY + dt.timedelta(days=1), 10_800)]
    books_exact(db, books)


def test_money_spent_meanwhile_refuses_the_held_write_typed_and_nothing_of_it_stays(postgres_db, books):
    db = postgres_db
    before = entries(db, books)
    attempts = []
    with another_writer(db, spend(books, 8_000)) as other:
        def work(session: Session):
            attempts.append(post_entry(impatient(session), spend(books, 5_000)))  # judged on the 10,000 read: allowed
            other.commit()

        with pytest.raises(AccountLimitExceeded) as refusal:
            db.write(work)

    assert len(attempts) == 1
    assert (refusal.value.details["account_id"], refusal.value.details["fund_id"]) == (
        books.account(Role.BANK), books.open_fund)
    assert (bank(db, books), entries(db, books)) == (2_000, before + 1)
    books_exact(db, books)


def test_a_prepared_statement_lost_behind_the_connection_costs_one_retry(postgres_url, postgres_db, books):
    db, other_db = Database(postgres_url, pool_size=1, max_overflow=0), Database(postgres_url)
    try:
        for round_ in range(2):
            attempts, posted = [], []
            with another_writer(other_db, gift(books, 300)) as other:
                def work(session: Session, other=other, attempts=attempts, posted=posted):
                    attempts.append(session)
                    posted.append(post_entry(impatient(session), gift(books, 500)))
                    if len(posted) == 1:
                        other.commit()

                db.write(work)
            # The second round's first try finds the one-entry statement gone (or, were it there, the COMMIT the
            # held one): one retry, which prepares them again.
            assert len(attempts) == round_ + 1
            with db.session() as session:  # the one connection's statements dropped (as DISCARD ALL would)
                session.execute(text("DEALLOCATE ALL"))
                session.commit()
        assert bank(db, books) == 10_000 + 2 * 800
    finally:
        db.dispose()
        other_db.dispose()
    books_exact(postgres_db, books)


def test_a_writers_mark_ends_with_its_transaction_however_it_ends(postgres_db, books):
    db = postgres_db
    with db.session() as committed:
        post_entry(committed, gift(books, 100))
        assert store._MOVING
        committed.commit()
    with db.session() as rolled_back:
        post_entry(rolled_back, gift(books, 100))
        rolled_back.rollback()
    with db.session() as closed:
        post_entry(closed, gift(books, 100))
        closed.connection().invalidate()

    assert store._MOVING == {}


@pytest.mark.parametrize("value", ["CNY'; DROP TABLE entries; --", "a b", dt.datetime(2026, 11, 30), 1.5, None])
def test_a_held_statement_takes_as_literals_only_numbers_dates_booleans_and_plain_words(value):
    with pytest.raises(ValueError, match="not taken as a literal"):
        held._literal(value)


def test_holding_is_given_up_where_held_writes_keep_going_before_the_commit_and_tried_again_now_and_then():
    holding = store._Holding()
    assert holding.pays()
    for _ in range(3):
        holding.sent(with_commit=False)

    assert [holding.pays() for _ in range(2 * store._Holding.PROBE_EVERY)].count(True) == 2
    for _ in range(3):
        holding.sent(with_commit=True)
    assert holding.pays()
    for _ in range(100):
        holding.sent(with_commit=False)
    assert holding.score == -store._Holding.LIMIT


# A one-entry statement goes with its transaction's BEGIN in one network write (``held.Connection.execute_prepared``):
# it must still run inside that transaction, begun as psycopg would begin it, and read back what it wrote.

@pytest.mark.parametrize("isolation", [None, "SERIALIZABLE", "REPEATABLE READ"])
def test_the_one_entry_statement_runs_inside_its_transaction_begun_as_the_connection_would(postgres_db, books,
                                                                                         isolation):
    before = (bank(postgres_db, books), entries(postgres_db, books))
    with postgres_db.session() as session:
        options = {"isolation_level": isolation} if isolation else {}
        driver = session.connection(execution_options=options).connection.driver_connection
        assert isinstance(driver, held.Connection)
        assert driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE  # nothing sent yet
        posted = post_entry(session, gift(books, 700))
        assert driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        level = session.scalar(text("SELECT current_setting('transaction_isolation')"))
        assert level == (isolation or "read committed").lower()
        assert session.scalar(select(func.count()).where(Entry.id == posted.id)) == 1
        session.rollback()
    assert (bank(postgres_db, books), entries(postgres_db, books)) == before
    books_exact(postgres_db, books)


def test_the_one_entry_statement_takes_any_text_as_its_parameters(postgres_db, books):
    description = "社区基金 it's 100% \\ \"quoted\"; $1 %(x)s"
    draft = recipes.offline_donation(books.chart, books.open_fund, Money(250, "CNY"), "bank",
                                     particulars(TODAY, idempotency_key="键 ' ; --", description=description))
    posted = postgres_db.write(lambda session: post_entry(session, draft))
    with postgres_db.read() as session:
        stored = session.get(Entry, posted.id)
        assert (stored.description, stored.idempotency_key) == (description, "键 ' ; --")
    replayed = postgres_db.write(lambda session: post_entry(session, draft))
    assert (replayed.id, replayed.replayed) == (posted.id, True)
    books_exact(postgres_db, books)


def test_a_statement_refused_by_the_database_raises_its_error_and_leaves_the_connection_usable(postgres_db, books):
    with postgres_db.session() as session:
        driver = session.connection().connection.driver_connection
        with pytest.raises(psycopg.errors.DivisionByZero):  # sent with BEGIN, in the transaction BEGIN opened
            driver.execute_prepared(b"ledger_test_divide", b"SELECT 1 / $1::int", [0])
        assert driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.INERROR
        session.rollback()
        assert driver.execute_prepared(b"ledger_test_divide", b"SELECT 1 / $1::int", [1]) == [(1,)]
    posted = postgres_db.write(lambda session: post_entry(session, gift(books, 100)))
    assert posted.replayed is False
    books_exact(postgres_db, books)
