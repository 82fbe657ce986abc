"""Dates are bounded: no entry before the organisation's books opened, none after today and the days ahead the
database allows, no month closed before it begins; the day the books opened moves later only past no entry."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.books.entries import post_entry
from ledger.books.periods import close_period, list_periods, set_books_opened_on
from ledger.core import recipes
from ledger.core.errors import Conflict, InvalidInput
from ledger.core.money import Money
from ledger.db.engine import Database
from ledger.db.types import utc_now
from tests.builders import key, new_books, particulars

OPENED = dt.date(2026, 11, 2)


def _gift(db, books, day: dt.date):
    draft = recipes.offline_donation(books.chart, books.open_fund, Money(1_000, "CNY"), "bank",
                                     particulars(day, key()))
    return db.write(lambda session: post_entry(session, draft))


def test_an_entry_before_the_books_opened_is_refused_naming_its_date(db):
    books = new_books(db)
    db.write(lambda session: set_books_opened_on(session, books.organisation_id, OPENED, "admin"))

    with pytest.raises(InvalidInput) as refused:
        _gift(db, books, OPENED - dt.timedelta(days=1))
    accepted = _gift(db, books, OPENED)

    assert refused.value.field == "effective_date" and "2026-11-02" in refused.value.message
    assert accepted.effective_date == OPENED
    with db.read() as session:  # the time before the books opened is not a month anybody closed
        assert list_periods(session, books.organisation_id) == []


def test_the_books_open_later_only_when_no_entry_is_dated_before(db):
    books = new_books(db)
    _gift(db, books, OPENED)

    with pytest.raises(Conflict) as refused:
        db.write(lambda session: set_books_opened_on(session, books.organisation_id, OPENED + dt.timedelta(days=1),
                                                     "admin"))
    moved = db.write(lambda session: set_books_opened_on(session, books.organisation_id, OPENED, "admin"))

    assert refused.value.field == "books_opened_on" and refused.value.details["earliest_entry_date"] == "2026-11-02"
    assert moved.books_opened_on == OPENED


@pytest.mark.parametrize("opened_on", [dt.date(1899, 12, 31), "2026-11-02", None])
def test_an_impossible_opening_day_is_refused(db, opened_on):
    books = new_books(db)
    tomorrow = utc_now().date() + dt.timedelta(days=1)

    for day in (opened_on, tomorrow):
        with pytest.raises(InvalidInput) as refused:
            db.write(lambda session, day=day: set_books_opened_on(session, books.organisation_id, day, "admin"))
        assert refused.value.field == "books_opened_on"


def test_an_entry_dated_further_ahead_than_the_database_allows_is_refused(db):
    books = new_books(db)
    today = utc_now().date()
    strict = Database(db.engine.url.render_as_string(hide_password=False), days_ahead=0)
    try:
        with pytest.raises(InvalidInput) as refused:
            _gift(strict, books, today + dt.timedelta(days=1))
        accepted = _gift(strict, books, today)
    finally:
        strict.dispose()

    assert refused.value.field == "effective_date" and refused.value.details["latest"] == today.isoformat()
    assert accepted.effective_date == today
    assert _gift(db, books, today + dt.timedelta(days=1)).effective_date > today  # the default: a day ahead


def test_a_month_that_has_not_begun_cannot_be_closed(db):
    books = new_books(db)
    later = utc_now().date().replace(day=1) + dt.timedelta(days=70)

    with pytest.raises(InvalidInput) as refused:
        db.write(lambda session: close_period(session, books.organisation_id, later.year, later.month, "admin"))

    assert refused.value.field == "month"
    with db.read() as session:
        assert list_periods(session, books.organisation_id) == []
