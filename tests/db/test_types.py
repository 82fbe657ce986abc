"""One moment type for both engines: every moment goes in with its zone and comes back in UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from ledger.db.models import Fund
from ledger.db.types import sqlite_text
from tests.builders import new_books

CHENGDU = dt.timezone(dt.timedelta(hours=8))


def test_a_moment_in_any_zone_comes_back_the_same_moment_in_utc(db):
    books = new_books(db)
    moment = dt.datetime(2026, 11, 29, 20, 15, 30, 123456, tzinfo=CHENGDU)

    def stamp(session):
        session.get(Fund, books.open_fund).created_at = moment

    db.write(stamp)
    with db.read() as session:
        stored = session.scalar(select(Fund.created_at).where(Fund.id == books.open_fund))

    assert stored == moment
    assert stored.tzinfo == dt.UTC and stored.hour == 12


def test_a_moment_without_its_zone_is_refused(db):
    books = new_books(db)

    def stamp(session):
        session.get(Fund, books.open_fund).created_at = dt.datetime(2026, 11, 29, 12, 0)
        session.flush()

    with pytest.raises(StatementError, match="a moment needs its zone"):
        db.write(stamp)


@pytest.mark.parametrize("moment", [dt.datetime(2026, 11, 29, 20, 15, 30, 123456, tzinfo=CHENGDU),
                                    dt.datetime(2026, 1, 1, 0, 0, tzinfo=CHENGDU),
                                    dt.datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=dt.UTC)])
def test_the_stores_raw_text_for_a_moment_is_the_text_the_dialect_writes(sqlite_db, moment):
    """The store's raw inserts write ``sqlite_text``; SQLAlchemy reads them back, and compares them as text."""
    books = new_books(sqlite_db)

    def stamp(session):
        session.get(Fund, books.open_fund).created_at = moment

    sqlite_db.write(stamp)
    with sqlite_db.read() as session:
        stored = session.scalar(text("SELECT created_at FROM funds WHERE id = :id"), {"id": books.open_fund})
    assert stored == sqlite_text(moment)
