"""Accounting periods: calendar months that can be closed to postings and reopened."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ledger.books.organisations import get_organisation
from ledger.core.errors import InvalidInput
from ledger.core.vocabulary import PeriodStatus
from ledger.db.engine import dialect_insert
from ledger.db.models import Period
from ledger.db.types import utc_now


def month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    if not (isinstance(year, int) and 1900 <= year <= 9999):
        raise InvalidInput("must be a year between 1900 and 9999", field="year")
    if not (isinstance(month, int) and 1 <= month <= 12):
        raise InvalidInput("must be a month from 1 to 12", field="month")
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def close_period(session: Session, organisation_id: int, year: int, month: int, changed_by: str) -> Period:
    """Closes a month: from the commit on, no entry dated inside it is accepted."""
    return _set_status(session, organisation_id, year, month, PeriodStatus.CLOSED, changed_by)


def reopen_period(session: Session, organisation_id: int, year: int, month: int, changed_by: str) -> Period:
    return _set_status(session, organisation_id, year, month, PeriodStatus.OPEN, changed_by)


def _set_status(
    session: Session, organisation_id: int, year: int, month: int, status: str, changed_by: str
) -> Period:
    get_organisation(session, organisation_id)
    start, end = month_bounds(year, month)
    if session.get_bind().dialect.name == "postgresql":
        # Wait for writers already inside a transaction: one of them may have checked the period before
        # this close and would otherwise commit an entry into it afterwards. SHARE mode lets readers on,
        # holds new writers only until this transaction commits, and is taken only for this rare change.
        session.execute(text("LOCK TABLE entries IN SHARE MODE"))
    # One upsert: two admins closing the same month at once meet at its unique key, and both answers hold.
    changed = {"status": status, "changed_at": utc_now(), "changed_by": changed_by}
    statement = dialect_insert(session)(Period).values(
        organisation_id=organisation_id, start_date=start, end_date=end, **changed,
    ).on_conflict_do_update(index_elements=["organisation_id", "start_date"], set_=changed)
    return session.scalars(statement.returning(Period), execution_options={"populate_existing": True}).one()


def list_periods(session: Session, organisation_id: int) -> list[Period]:
    """The months that were ever closed (or closed and reopened), in date order; a month never closed is open."""
    get_organisation(session, organisation_id)
    return list(session.scalars(select(Period).where(Period.organisation_id == organisation_id)
                                .order_by(Period.start_date)))
