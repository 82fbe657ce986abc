"""A balance's months (revision 0020): PostgreSQL's one-entry statement adds an entry to its balance row's current
month; ``monthly_balances`` gets a month when the row moves on to the next one, or an entry dated in an earlier month;
batches and SQLite add every month to ``monthly_balances``. ``month_totals`` sums the two, and must always give each
month exactly what its postings give, on both engines, whatever order the months come in."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import select, text

from ledger.books.entries import post_entries, post_entry
from ledger.books.integrity import verify_months
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.drafts import EntryDraft
from ledger.core.money import Money
from ledger.db.engine import Database
from ledger.db.models import month_totals
from tests.builders import Books, new_books, particulars

# Dates in the past (an entry may not be dated further than a day ahead): a month, the next, one before.
AUGUST, SEPTEMBER, JULY = dt.date(2026, 8, 20), dt.date(2026, 9, 1), dt.date(2026, 7, 31)


def gift(books: Books, amount_minor: int, day: dt.date) -> EntryDraft:
    return recipes.offline_donation(books.chart, books.open_fund, Money(amount_minor, "CNY"), "bank", particulars(day))


def bank_months(db: Database, books: Books) -> dict[dt.date, int]:
    """The open fund's bank debits by month, as ``month_totals`` gives them."""
    with db.read() as session:
        rows = session.execute(select(month_totals.c.month, month_totals.c.debits_minor).where(
            month_totals.c.account_id == books.account(Role.BANK), month_totals.c.fund_id == books.open_fund))
        return {(dt.date.fromisoformat(m) if isinstance(m, str) else m): int(debits) for m, debits in rows}


def row_month(db: Database, books: Books) -> tuple:
    with db.read() as session:
        return tuple(session.execute(text(
            "SELECT month, month_debits_minor FROM balances WHERE account_id = :account AND fund_id = :fund"),
            {"account": books.account(Role.BANK), "fund": books.open_fund}).one())


def stored_months(db: Database, books: Books) -> dict[dt.date, int]:
    with db.read() as session:
        rows = session.execute(text(
            "SELECT month, debits_minor FROM monthly_balances WHERE account_id = :account AND fund_id = :fund"),
            {"account": books.account(Role.BANK), "fund": books.open_fund})
        return {(dt.date.fromisoformat(m) if isinstance(m, str) else m): debits for m, debits in rows}


def test_each_months_totals_are_its_postings_whatever_order_the_months_come_in(db):
    books, expected = new_books(db), Counter()
    for amount, day in ((1_000, AUGUST), (2_000, AUGUST), (4_000, SEPTEMBER), (8_000, JULY),
                        (16_000, SEPTEMBER), (32_000, AUGUST), (64_000, dt.date(2026, 11, 3))):
        draft = gift(books, amount, day)
        db.write(lambda session, draft=draft: post_entry(session, draft))
        expected[day.replace(day=1)] += amount

        assert bank_months(db, books) == dict(expected)
        with db.read() as session:
            assert verify_months(session, books.organisation_id) == []


def test_on_postgresql_the_current_month_stays_on_the_balance_row(postgres_db):
    db, books = postgres_db, new_books(postgres_db)
    for draft in (gift(books, 1_000, AUGUST), gift(books, 2_000, AUGUST)):
        db.write(lambda session, draft=draft: post_entry(session, draft))
    assert row_month(db, books) == (AUGUST.replace(day=1), 3_000)
    assert stored_months(db, books) == {}  # a gift in the row's month writes no monthly_balances row

    db.write(lambda session: post_entry(session, gift(books, 4_000, SEPTEMBER)))  # the row moves on
    assert row_month(db, books) == (SEPTEMBER, 4_000)
    assert stored_months(db, books) == {AUGUST.replace(day=1): 3_000}

    db.write(lambda session: post_entry(session, gift(books, 8_000, JULY)))  # an earlier month
    assert row_month(db, books) == (SEPTEMBER, 4_000)
    assert stored_months(db, books) == {AUGUST.replace(day=1): 3_000, JULY.replace(day=1): 8_000}


def test_a_batch_adds_its_months_to_monthly_balances_and_leaves_the_rows_month_alone(db):
    books = new_books(db)
    db.write(lambda session: post_entry(session, gift(books, 1_000, AUGUST)))
    month_before = row_month(db, books)

    drafts = [gift(books, 100, day) for day in (JULY, AUGUST, SEPTEMBER, SEPTEMBER)]
    db.write(lambda session: post_entries(session, drafts))

    assert row_month(db, books) == month_before
    assert bank_months(db, books) == {JULY.replace(day=1): 100, AUGUST.replace(day=1): 1_100, SEPTEMBER: 200}
    with db.read() as session:
        assert verify_months(session, books.organisation_id) == []


@pytest.mark.parametrize("day", [SEPTEMBER, JULY], ids=["the next month", "an earlier month"])
def test_a_refused_entry_in_another_month_moves_no_month(postgres_db, day):
    db, books = postgres_db, new_books(postgres_db)
    db.write(lambda session: post_entry(session, gift(books, 1_000, AUGUST)))
    before = (row_month(db, books), stored_months(db, books), bank_months(db, books))

    def post_then_fail(session):
        post_entry(session, gift(books, 500, day))
        raise RuntimeError("the caller's own write failed after the entry")

    with pytest.raises(RuntimeError):
        db.write(post_then_fail)

    assert (row_month(db, books), stored_months(db, books), bank_months(db, books)) == before
