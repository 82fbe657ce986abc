"""Accounting periods: calendar months that can be closed to postings and reopened; and the day the books opened,
before which nothing may be dated."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ledger.books.organisations import check_opening_date, close_before_opening, get_organisation
from ledger.core.checks import BEFORE_THE_BOOKS
from ledger.core.errors import Conflict, InvalidInput
from ledger.core.vocabulary import PeriodStatus
from ledger.db.engine import dialect_insert
from ledger.db.models import Entry, Organisation, Period
from ledger.db.types import utc_now


def month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    if not (isinstance(year, int) and 1900 <= year <= 9999):
        raise InvalidInput("must be a year between 1900 and 9999", field="year")
    if not (isinstance(month, int) and 1 <= month <= 12):
        raise InvalidInput("must be a month from 1 to 12", field="month")
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def close_period(session: Session, organisation_id: int, year: int, month: int, changed_by: str) -> Period:
    """Closes a month: from the commit on, no entry dated inside it is accepted. A month that has not begun
    cannot be closed."""
    start, _ = month_bounds(year, month)
    if start > utc_now().date():
        raise InvalidInput(f"{year}-{month:02d} has not begun: a month in the future cannot be closed", field="month")
    return _set_status(session, organisation_id, year, month, PeriodStatus.CLOSED, changed_by)


def reopen_period(session: Session, organisation_id: int, year: int, month: int, changed_by: str) -> Period:
    return _set_status(session, organisation_id, year, month, PeriodStatus.OPEN, changed_by)


def _set_status(
    session: Session, organisation_id: int, year: int, month: int, status: str, changed_by: str
) -> Period:
    get_organisation(session, organisation_id)
    start, end = month_bounds(year, month)
    _hold_writers(session)
    # One upsert: two admins closing the same month at once meet at its unique key, and both answers hold.
    changed = {"status": status, "changed_at": utc_now(), "changed_by": changed_by}
    statement = dialect_insert(session)(Period).values(
        organisation_id=organisation_id, start_date=start, end_date=end, **changed,
    ).on_conflict_do_update(index_elements=["organisation_id", "start_date"], set_=changed)
    return session.scalars(statement.returning(Period), execution_options={"populate_existing": True}).one()


def _hold_writers(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Wait for writers already inside a transaction: one of them may have checked the period before
        # this close and would otherwise commit an entry into it afterwards. SHARE mode lets readers on,
        # holds new writers only until this transaction commits, and is taken only for this rare change.
        session.execute(text("LOCK TABLE entries IN SHARE MODE"))


def list_periods(session: Session, organisation_id: int) -> list[Period]:
    """The months that were ever closed (or closed and reopened), in date order; a month never closed is open.
    (The time before the books opened, kept as a closed period too, is the organisation's ``books_opened_on``.)"""
    get_organisation(session, organisation_id)
    return list(session.scalars(select(Period).where(Period.organisation_id == organisation_id,
                                                     Period.start_date != BEFORE_THE_BOOKS)
                                .order_by(Period.start_date)))


def set_books_opened_on(session: Session, organisation_id: int, opened_on: dt.date, changed_by: str) -> Organisation:
    """Moves the day the organisation's books opened. Earlier is always possible; later only when no entry is
    dated before the new day (the books would no longer hold it)."""
    organisation = get_organisation(session, organisation_id)
    opened_on = check_opening_date(opened_on, utc_now().date())
    _hold_writers(session)
    earliest = session.scalar(select(func.min(Entry.effective_date)).where(Entry.organisation_id == organisation_id))
    if earliest is not None and earliest < opened_on:
        raise Conflict(f"an entry is dated {earliest.isoformat()}, before {opened_on.isoformat()}: the books must "
                       "open on or before it", field="books_opened_on", earliest_entry_date=earliest.isoformat())
    close_before_opening(session, organisation_id, opened_on, changed_by)
    organisation.books_opened_on = opened_on
    session.flush()
    return organisation
