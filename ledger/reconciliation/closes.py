"""Reconciled months closed: an account's month whose reconciliation leaves nothing unexplained is closed in the
ledger (``ledger.books.periods``) and its report frozen, as canonical JSON with its SHA-256, in an append-only row.

While the month stays closed, its report (asked for the whole month: its first day to its last) is the frozen one,
whatever is matched, unmatched, imported or recorded afterwards. A month reopened in the ledger shows the live report
again, until it is closed again as reconciled (the next ``version``). The frozen report shows only while the
ledger's close is not newer than it: a month reopened and closed again in the ledger alone may hold other entries,
and the live report says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from decimal import Decimal

from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.books.organisations import get_organisation
from ledger.books.periods import close_period, month_bounds
from ledger.core.errors import ConcurrentWrite, InvalidInput, InvalidState
from ledger.core.money import currency_exponent
from ledger.core.vocabulary import PeriodStatus
from ledger.db.engine import unique_violation_on
from ledger.db.models import Account, BankStatement, Period, ReconciliationClose
from ledger.db.types import utc_now
from ledger.reconciliation.matches import Report, report
from ledger.reconciliation.matching import Item, Line


@dataclass(frozen=True, slots=True)
class ShownReport(Report):
    """The report as shown: what names it (the organisation, the account, the currency the bank's balance is in)
    and, when it is a closed month's frozen report, when it was frozen, its digest and its version."""

    currency: str = ""
    organisation_name: str = ""
    account_code: str = ""
    account_name_zh: str = ""
    account_name_en: str = ""
    frozen: bool = False
    closed_at: dt.datetime | None = None
    sha256: str | None = None
    version: int | None = None


FROZEN_ONLY = ("frozen", "closed_at", "sha256", "version")  # (what the frozen JSON does not hold: the row does)


def read_report(session: Session, organisation_id: int, account_id: int, start: dt.date,
                end: dt.date) -> ShownReport:
    """The account's report from ``start`` through ``end``: a whole month closed as reconciled gives its frozen
    report; anything else is computed now."""
    month = _whole_month(start, end)
    if month is not None:
        kept = _current_close(session, organisation_id, account_id, month)
        if kept is not None:
            return thaw(kept)
    return live_report(session, organisation_id, account_id, start, end)


def live_report(session: Session, organisation_id: int, account_id: int, start: dt.date,
                end: dt.date) -> ShownReport:
    found = report(session, organisation_id, account_id, start, end)
    account = session.get(Account, account_id)
    organisation = get_organisation(session, organisation_id)
    currency = session.scalars(select(BankStatement.currency).where(BankStatement.account_id == account_id)
                               .order_by(BankStatement.period_end.desc(), BankStatement.id.desc()).limit(1)).first()
    return ShownReport(**{field.name: getattr(found, field.name) for field in fields(Report)},
                       currency=currency or organisation.base_currency, organisation_name=organisation.name,
                       account_code=account.code, account_name_zh=account.name_zh, account_name_en=account.name_en)


def close_reconciled_month(session: Session, organisation_id: int, account_id: int, year: int, month: int,
                           closed_by: str) -> ShownReport:
    """Closes the account's month as reconciled: refused, writing nothing, unless the month has ended, a statement
    of the month states the bank's closing balance and nothing of the difference is unexplained. The ledger's month
    is closed too (if it was not already), and the report frozen. A month closed as reconciled already (and not
    reopened since) answers with its frozen report."""
    start, end = month_bounds(year, month)
    if end >= utc_now().date():
        raise InvalidInput(f"{year}-{month:02d} has not ended: only a past month can be closed as reconciled",
                           field="month")
    kept = _current_close(session, organisation_id, account_id, start)
    if kept is not None:
        return thaw(kept)
    found = live_report(session, organisation_id, account_id, start, end)
    _check_reconciled(session, found)
    period = _period(session, organisation_id, start)
    if period is None or period.status != PeriodStatus.CLOSED:
        period = close_period(session, organisation_id, year, month, closed_by)
    return thaw(_freeze(session, organisation_id, found, max(utc_now(), period.changed_at), closed_by))


def _check_reconciled(session: Session, found: ShownReport) -> None:
    stated_end = session.scalar(select(func.max(BankStatement.period_end)).where(
        BankStatement.account_id == found.account_id, BankStatement.closing_minor.is_not(None),
        BankStatement.period_end <= found.end))
    month = f"{found.start:%Y-%m}"
    if stated_end is None or stated_end < found.start:
        raise InvalidState(f"no statement of account {found.account_id} states the bank's closing balance for "
                           f"{month}: import the month's statement before closing it", field="account_id")
    if found.unexplained_minor != 0:
        raise InvalidState(f"{month} does not reconcile: {amount_text(found.unexplained_minor, found.currency)} of "
                           "the difference between the bank and the books is unexplained", field="month",
                           unexplained_minor=found.unexplained_minor)


def amount_text(amount_minor: int, currency: str) -> str:
    """``CNY 12.00``: minor units written out in the currency's decimals (never through a float)."""
    return f"{currency} {Decimal(amount_minor).scaleb(-currency_exponent(currency)):f}"


def _freeze(session: Session, organisation_id: int, found: ShownReport, closed_at: dt.datetime,
            closed_by: str) -> ReconciliationClose:
    text = canonical_json({key: value for key, value in asdict(found).items() if key not in FROZEN_ONLY}
                          | {"reconciled": found.reconciled})
    previous = session.scalar(select(func.max(ReconciliationClose.version)).where(
        ReconciliationClose.account_id == found.account_id, ReconciliationClose.month == found.start))
    row = ReconciliationClose(organisation_id=organisation_id, account_id=found.account_id, month=found.start,
                              version=(previous or 0) + 1, report=text,
                              sha256=hashlib.sha256(text.encode()).hexdigest(), closed_at=closed_at,
                              closed_by=closed_by)
    session.add(row)
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent close took this version: the retry finds its frozen report
        if unique_violation_on(error, "reconciliation_closes"):
            raise ConcurrentWrite("the month was closed meanwhile", field="month") from error
        raise
    return row


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_iso)


def _iso(value) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not kept in a frozen report")


def thaw(kept: ReconciliationClose) -> ShownReport:
    """The frozen report as it was closed; its digest is checked first (the database keeps the row from change,
    this check keeps a row changed behind its back from being shown as frozen)."""
    if hashlib.sha256(kept.report.encode()).hexdigest() != kept.sha256:
        raise InvalidState(f"the frozen report of {kept.month:%Y-%m} (version {kept.version}) does not match its "
                           "digest", field="month")
    values = json.loads(kept.report)
    values.pop("reconciled")
    values["start"], values["end"] = dt.date.fromisoformat(values["start"]), dt.date.fromisoformat(values["end"])
    values["unmatched_lines"] = [_dated(Line, line) for line in values["unmatched_lines"]]
    values["unmatched_items"] = [_dated(Item, item) for item in values["unmatched_items"]]
    return ShownReport(**values, frozen=True, closed_at=kept.closed_at, sha256=kept.sha256, version=kept.version)


def _dated(kind, value: dict):
    return kind(**(value | {"day": dt.date.fromisoformat(value["day"])}))


def _whole_month(start: dt.date, end: dt.date) -> dt.date | None:
    """The month's first day when ``start`` to ``end`` is one whole month."""
    if start.day != 1 or end != month_bounds(start.year, start.month)[1]:
        return None
    return start


def _period(session: Session, organisation_id: int, month: dt.date) -> Period | None:
    return session.scalars(select(Period).where(Period.organisation_id == organisation_id,
                                                Period.start_date == month)).first()


def _current_close(session: Session, organisation_id: int, account_id: int,
                   month: dt.date) -> ReconciliationClose | None:
    """The month's latest frozen report, while the ledger's month is closed and was not closed again after it."""
    period = _period(session, organisation_id, month)
    if period is None or period.status != PeriodStatus.CLOSED:
        return None
    kept = session.scalars(select(ReconciliationClose).where(
        ReconciliationClose.organisation_id == organisation_id, ReconciliationClose.account_id == account_id,
        ReconciliationClose.month == month).order_by(ReconciliationClose.version.desc()).limit(1)).first()
    return kept if kept is not None and kept.closed_at >= period.changed_at else None


@event.listens_for(ReconciliationClose, "before_update")
@event.listens_for(ReconciliationClose, "before_delete")
def _refuse_change(_mapper, _connection, target: ReconciliationClose) -> None:
    # (Checked twice: the code refuses before the database's triggers would.)
    raise InvalidState("a frozen reconciliation report is never changed: reopen the month and close it again",
                       field="month")
