"""One moment type for both engines: every moment goes in with its zone and comes back in UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from ledger.db.models import Fund
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
