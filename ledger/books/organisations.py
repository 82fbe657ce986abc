"""Organisations and their funds: created, read, listed, and the few settings that change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from ledger.core.chart import CHINA_NONPROFIT, AccountTemplate
from ledger.core.checks import BEFORE_THE_BOOKS
from ledger.core.errors import Conflict, InvalidInput, NotFound
from ledger.core.money import MAX_AMOUNT_MINOR, check_currency
from ledger.core.registration import normalise_registration_number
from ledger.core.values import one_of, required_text
from ledger.core.vocabulary import FundKind, FundStatus, OrganisationKind, PeriodStatus
from ledger.db.engine import dialect_insert, insert_unless_taken
from ledger.db.listing import Page, get_owned, keyset_page
from ledger.db.models import Account, Fund, Organisation, Period
from ledger.db.types import utc_now

GENERAL_FUND_CODE = "GENERAL"
# The organisations whose chart a session's transaction made or changed, in ``session.info`` (which ends with the
# session): their charts are not cached until that transaction has committed (see ``ledger.books.charts``).
CHANGED_CHARTS = "ledger_changed_charts"


def create_organisation(
    session: Session, *, name: str, kind: str, base_currency: str, jurisdiction: str, registration_number: str,
    template: tuple[AccountTemplate, ...] = CHINA_NONPROFIT, books_opened_on: dt.date | None = None,
    created_by: str = "ledger",
) -> Organisation:
    """Creates an organisation with its chart of accounts (from ``template``, each role's account its default)
    and its general fund; its books open on ``books_opened_on`` (the day it is created, when None). A
    registration number already held in the jurisdiction is a Conflict."""
    number = normalise_registration_number(jurisdiction, registration_number)
    now = utc_now()
    opened_on = check_opening_date(books_opened_on or now.date(), now.date())
    organisation = insert_unless_taken(session, Organisation, dict(
        name=required_text(name, "name", 200), kind=one_of(kind, OrganisationKind, "kind"),
        base_currency=check_currency(base_currency, "base_currency"), jurisdiction=jurisdiction,
        registration_number=number, created_at=now, chart_version=1, books_opened_on=opened_on,
    ), key=("jurisdiction", "registration_number"))
    if organisation is None:
        raise Conflict("an organisation with this registration number exists", field="registration_number")
    close_before_opening(session, organisation.id, opened_on, created_by)
    # Its chart is made in this transaction: not to be cached before it commits (see ledger.books.charts).
    session.info.setdefault(CHANGED_CHARTS, set()).add(organisation.id)
    session.execute(insert(Account), [
        {"organisation_id": organisation.id, "code": line.code, "name_zh": line.name_zh,
         "name_en": line.name_en, "type": line.type, "normal_balance": line.normal_balance,
         "balance_limit": line.balance_limit, "role": line.role, "role_default": line.role is not None}
        for line in template
    ])
    create_fund(session, organisation.id, code=GENERAL_FUND_CODE, name="非限定性基金 General fund",
                kind=FundKind.GENERAL, restricted=False)
    return organisation


def create_fund(
    session: Session, organisation_id: int, *, code: str, name: str, kind: str, restricted: bool,
    currency: str | None = None, purpose: str = "",
) -> Fund:
    """Opens a fund; its code is unique in the organisation (a Conflict otherwise)."""
    organisation = get_organisation(session, organisation_id)
    if not isinstance(restricted, bool):
        raise InvalidInput("must be true or false", field="restricted")
    fund = insert_unless_taken(session, Fund, dict(
        organisation_id=organisation_id, code=required_text(code, "code", 40),
        name=required_text(name, "name", 200), kind=one_of(kind, FundKind, "kind"), restricted=restricted,
        status=FundStatus.OPEN, currency=check_currency(currency or organisation.base_currency), purpose=purpose,
        created_at=utc_now(),
    ), key=("organisation_id", "code"))
    if fund is None:
        raise Conflict(f"the organisation already has a fund {code}", field="code")
    return fund


def get_organisation(session: Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(f"organisation {organisation_id} does not exist", field="organisation_id")
    return organisation


def list_organisations(session: Session) -> list[Organisation]:
    return list(session.scalars(select(Organisation).order_by(Organisation.id)))


EARLIEST_OPENING = dt.date(1900, 1, 1)


def check_opening_date(opened_on: object, today: dt.date) -> dt.date:
    if not isinstance(opened_on, dt.date) or isinstance(opened_on, dt.datetime) \
            or not EARLIEST_OPENING <= opened_on <= today:
        raise InvalidInput(f"must be a date from {EARLIEST_OPENING.isoformat()} to today", field="books_opened_on")
    return opened_on


def close_before_opening(session: Session, organisation_id: int, opened_on: dt.date, changed_by: str) -> None:
    """Everything dated before the books opened is one closed period, from the first day there is
    (``ledger.core.checks.BEFORE_THE_BOOKS``): the closed-period guards, the code's and the database's trigger,
    then refuse it like a posting into a closed month."""
    values = {"end_date": opened_on - dt.timedelta(days=1), "status": PeriodStatus.CLOSED, "changed_at": utc_now(),
              "changed_by": changed_by}
    session.execute(dialect_insert(session)(Period).values(
        organisation_id=organisation_id, start_date=BEFORE_THE_BOOKS, **values,
    ).on_conflict_do_update(index_elements=["organisation_id", "start_date"], set_=values))


def set_dual_approval_threshold(session: Session, organisation_id: int, threshold_minor: int | None) -> Organisation:
    """Grants above the threshold need two approvers; None means one approver is always enough."""
    if threshold_minor is not None and not (isinstance(threshold_minor, int) and not isinstance(threshold_minor, bool)
                                            and 0 <= threshold_minor <= MAX_AMOUNT_MINOR):
        raise InvalidInput(f"must be null or a whole number of minor units up to {MAX_AMOUNT_MINOR}",
                           field="dual_approval_threshold_minor")
    organisation = get_organisation(session, organisation_id)
    organisation.dual_approval_threshold_minor = threshold_minor
    session.flush()
    return organisation


def set_public_fundraising(session: Session, organisation_id: int, public_fundraising: bool) -> Organisation:
    """Records whether the organisation holds public-fundraising status (公开募捐资格)."""
    if not isinstance(public_fundraising, bool):
        raise InvalidInput("must be true or false", field="public_fundraising")
    organisation = get_organisation(session, organisation_id)
    organisation.public_fundraising = public_fundraising
    session.flush()
    return organisation


def get_fund(session: Session, organisation_id: int, fund_id: int) -> Fund:
    return get_owned(session, Fund, organisation_id, fund_id, "fund")


def unknown_funds(session: Session, organisation_id: int, fund_ids: Iterable[int]) -> list[int]:
    """Those of ``fund_ids`` that are not funds of this organisation, in order."""
    wanted = sorted(set(fund_ids))
    known = set(session.scalars(select(Fund.id).where(Fund.organisation_id == organisation_id, Fund.id.in_(wanted))))
    return [fund_id for fund_id in wanted if fund_id not in known]


def list_funds(session: Session, organisation_id: int, *, after: int | None, limit: int) -> Page:
    get_organisation(session, organisation_id)
    return keyset_page(session, select(Fund).where(Fund.organisation_id == organisation_id), Fund.id, after, limit)


class PublicOrganisation(NamedTuple):
    """An organisation as the public pages show it: what anyone may know of it, and its open funds."""

    organisation: Organisation
    open_funds: list[Fund]


def public_directory(session: Session) -> list[PublicOrganisation]:
    """Every organisation with its open funds (those that take gifts), in the order they were made: two queries,
    however many there are."""
    funds: dict[int, list[Fund]] = {}
    for fund in session.scalars(select(Fund).where(Fund.status == FundStatus.OPEN).order_by(Fund.id)):
        funds.setdefault(fund.organisation_id, []).append(fund)
    return [PublicOrganisation(organisation, funds.get(organisation.id, []))
            for organisation in list_organisations(session)]


class PostingTerms(NamedTuple):
    """What a hot write needs before it posts into a fund: the fund's currency, and the version of the
    organisation's chart (to tell whether the cached chart is current)."""

    currency: str
    chart_version: int


_POSTING_TERMS = (select(Fund.currency, Organisation.chart_version)
                  .join(Organisation, Organisation.id == Fund.organisation_id)
                  .where(Fund.id == bindparam("fund_id"), Fund.organisation_id == bindparam("organisation_id")))


def posting_terms(session: Session, organisation_id: int, fund_id: int) -> PostingTerms:
    """The fund's currency and the chart's version in one plain read, for the hot write paths (whether the fund
    is open is judged with the posting itself)."""
    row = session.connection().execute(_POSTING_TERMS, {"fund_id": fund_id, "organisation_id": organisation_id}
                                       ).first()
    if row is None:
        raise NotFound(f"fund {fund_id} does not exist", field="fund_id")
    return PostingTerms(*row)


def set_fund_status(session: Session, organisation_id: int, fund_id: int, status: str) -> Fund:
    """Closes or reopens a fund; a closed fund accepts no postings."""
    fund = get_fund(session, organisation_id, fund_id)
    fund.status = one_of(status, FundStatus, "status")
    session.flush()
    return fund
