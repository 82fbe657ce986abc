"""The figures anyone may see, read from what the database keeps with the postings: the balances (a fund's totals
now), the monthly balances (a year or a month, by account) and each fund's gift counts (``fund_figures``), never a
scan of the gifts. The few rows listed (a fund's latest gifts, its grants) come by index, newest first, bounded.

Income is what revenue accounts received (credits less debits); spending what expense accounts paid (debits less
credits), by category as China's nonprofit standard sorts them: charitable activities (业务活动成本, 5101…),
management (管理费用, 5201…), fundraising (筹资费用, 5301…), and the rest (其他费用). A fund's balance is its
net assets: its assets less its liabilities. A fund has raised its gifts net of refunds (donation and in-kind
revenue); it has granted what its approved grants came to, less any part cancelled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ledger.books.organisations import get_organisation
from ledger.core.chart import AccountType
from ledger.core.errors import NotFound
from ledger.core.vocabulary import DonorKind, GrantStatus, PayeeKind
from ledger.db.models import (
    Account,
    Balance,
    Donation,
    Donor,
    Entry,
    Fund,
    FundFigures,
    Grant,
    PublicVersion,
    month_totals,
)

_months = month_totals.c  # a balance's totals by month (a view: monthly_balances and the current month)

RECENT_GIFTS = 20
LISTED_GRANTS = 50
CHART_MONTHS = 12
_GIVEN = (GrantStatus.APPROVED, GrantStatus.PARTLY_PAID, GrantStatus.PAID, GrantStatus.CANCELLED)
_GIFT_REVENUE = ("4101",)  # donation revenue (捐赠收入) and its sub-accounts (in kind: 4101.01)


class SpendingCategory(StrEnum):
    CHARITABLE_ACTIVITIES = "charitable_activities"
    MANAGEMENT = "management"
    FUNDRAISING = "fundraising"
    OTHER = "other"


_CATEGORY_BY_CODE = {"5101": SpendingCategory.CHARITABLE_ACTIVITIES, "5201": SpendingCategory.MANAGEMENT,
                     "5301": SpendingCategory.FUNDRAISING}


def spending_category(code: str) -> SpendingCategory:
    return _CATEGORY_BY_CODE.get(code[:4], SpendingCategory.OTHER)


@dataclass(frozen=True, slots=True)
class AccountLine:
    """One account's figure: its code and names as the chart prints them, and the amount in minor units."""

    code: str
    name_zh: str
    name_en: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Month:
    month: dt.date  # its first day
    income_minor: int
    spending_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class PublicGift:
    """A gift as the public sees it: the name only with the donor's consent (an organisation's always)."""

    donation_id: int
    received_on: dt.date
    amount_minor: int
    refunded_minor: int
    currency: str
    donor_name: str | None  # None: anonymous, or no consent


@dataclass(frozen=True, slots=True)
class PublicGrant:
    """A grant as the public sees it: an individual's name masked (张*)."""

    grant_id: int
    fund_id: int
    approved_on: dt.date | None
    payee: str
    payee_kind: str
    purpose: str
    category: str
    status: str
    amount_minor: int
    paid_minor: int
    cancelled_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class FundSummary:
    fund_id: int
    organisation_id: int
    code: str
    name: str
    kind: str
    purpose: str
    restricted: bool
    status: str
    currency: str
    raised_minor: int
    income_minor: int
    spent_minor: int
    granted_minor: int
    balance_minor: int
    gift_count: int
    donor_count: int
    anonymous_gift_count: int


@dataclass(frozen=True, slots=True)
class FundPage:
    summary: FundSummary
    months: tuple[Month, ...]
    recent_gifts: tuple[PublicGift, ...]
    grants: tuple[PublicGrant, ...]
    updated_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class OrganisationYear:
    """An organisation's year: income by source and spending by category (in its base currency), and its funds."""

    organisation_id: int
    year: int
    currency: str
    income: tuple[AccountLine, ...]
    spending: tuple[tuple[SpendingCategory, int], ...]
    income_minor: int
    spending_minor: int
    funds: tuple[FundSummary, ...]
    grants: tuple[PublicGrant, ...]
    updated_at: dt.datetime | None


def masked(name: str) -> str:
    """A person's name as the public may see it without consent: the first character and a star."""
    return name[:1] + "*"


class AccountView(NamedTuple):
    code: str
    name_zh: str
    name_en: str
    type: str


def _rows(session: Session, statement):
    """Plain rows for a select of columns: the public pages' reads skip the ORM's identity map (a page is read by
    many at once, and none of it is written back)."""
    return session.connection().execute(statement)


def _accounts(session: Session, organisation_id: int) -> dict[int, AccountView]:
    return {row.id: AccountView(row.code, row.name_zh, row.name_en, row.type) for row in _rows(session, select(
        Account.id, Account.code, Account.name_zh, Account.name_en, Account.type)
        .where(Account.organisation_id == organisation_id))}


_FUND_COLUMNS = (Fund.id, Fund.organisation_id, Fund.code, Fund.name, Fund.kind, Fund.purpose, Fund.restricted,
                 Fund.status, Fund.currency)


def fund_summaries(session: Session, organisation_id: int, fund_ids: list[int] | None = None,
                   accounts: dict[int, AccountView] | None = None) -> list[FundSummary]:
    """Each fund's figures now (all of the organisation's, or those named), from the balances and the counts."""
    accounts = accounts or _accounts(session, organisation_id)
    funds = select(*_FUND_COLUMNS).where(Fund.organisation_id == organisation_id).order_by(Fund.id)
    if fund_ids is not None:
        funds = funds.where(Fund.id.in_(fund_ids))
    found = list(_rows(session, funds))
    ids = [fund.id for fund in found]
    totals: dict[int, dict[str, int]] = {fund_id: {} for fund_id in ids}
    for row in _rows(session, select(Balance.fund_id, Balance.account_id, Balance.currency, Balance.debits_minor,
                                     Balance.credits_minor).where(Balance.fund_id.in_(ids))):
        account = accounts[row.account_id]
        figures = totals[row.fund_id]
        net = row.debits_minor - row.credits_minor
        if account.type == AccountType.REVENUE:
            figures["income"] = figures.get("income", 0) - net
            if account.code[:4] in _GIFT_REVENUE:
                figures["raised"] = figures.get("raised", 0) - net
        elif account.type == AccountType.EXPENSE:
            figures["spent"] = figures.get("spent", 0) + net
        elif account.type in (AccountType.ASSET, AccountType.LIABILITY):
            figures["balance"] = figures.get("balance", 0) + net
    counts = {row.fund_id: row for row in _rows(session, select(
        FundFigures.fund_id, FundFigures.gift_count, FundFigures.donor_count, FundFigures.anonymous_gift_count)
        .where(FundFigures.fund_id.in_(ids)))}
    granted = dict(_rows(session,
        select(Grant.fund_id, func.sum(Grant.amount_minor - Grant.cancelled_minor))
        .where(Grant.fund_id.in_(ids), Grant.status.in_(_GIVEN)).group_by(Grant.fund_id)).all())
    return [_summary(fund, totals[fund.id], counts.get(fund.id), int(granted.get(fund.id) or 0)) for fund in found]


def _summary(fund, figures: dict[str, int], counts, granted: int) -> FundSummary:
    return FundSummary(
        fund.id, fund.organisation_id, fund.code, fund.name, fund.kind, fund.purpose, fund.restricted, fund.status,
        fund.currency, figures.get("raised", 0), figures.get("income", 0), figures.get("spent", 0), granted,
        figures.get("balance", 0), counts.gift_count if counts else 0, counts.donor_count if counts else 0,
        counts.anonymous_gift_count if counts else 0)


def fund_names(session: Session, organisation_id: int) -> dict[int, str]:
    return {row.id: row.name for row in session.execute(
        select(Fund.id, Fund.name).where(Fund.organisation_id == organisation_id))}


def fund_page(session: Session, organisation_id: int, fund_id: int, today: dt.date) -> FundPage:
    """A fund's public page: its figures, the last twelve months, its latest gifts and its grants."""
    accounts = _accounts(session, organisation_id)
    found = fund_summaries(session, organisation_id, [fund_id], accounts)
    if not found:
        raise NotFound(f"fund {fund_id} does not exist", field="fund_id")
    summary = found[0]
    return FundPage(summary, fund_months(session, organisation_id, fund_id, today, accounts=accounts,
                                         currency=summary.currency),
                    recent_gifts(session, fund_id), public_grants(session, organisation_id, fund_id),
                    updated_at(session, organisation_id))


def _months_back(today: dt.date, count: int) -> list[dt.date]:
    first = today.replace(day=1)
    months = []
    for _ in range(count):
        months.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return months[::-1]


def fund_months(session: Session, organisation_id: int, fund_id: int, today: dt.date, count: int = CHART_MONTHS,
                *, accounts: dict[int, AccountView], currency: str) -> tuple[Month, ...]:
    """The fund's income and spending in each of the last ``count`` months, this one included."""
    months = _months_back(today, count)
    sums = {month: [0, 0] for month in months}
    for row in _rows(session,
            select(_months.account_id, _months.month, _months.debits_minor, _months.credits_minor)
            .where(_months.organisation_id == organisation_id, _months.fund_id == fund_id,
                   _months.month >= months[0])):
        kind = accounts[row.account_id].type
        month = _as_date(row.month)
        if month not in sums:
            continue
        if kind == AccountType.REVENUE:
            sums[month][0] += row.credits_minor - row.debits_minor
        elif kind == AccountType.EXPENSE:
            sums[month][1] += row.debits_minor - row.credits_minor
    return tuple(Month(month, *sums[month], currency) for month in months)


def recent_gifts(session: Session, fund_id: int, limit: int = RECENT_GIFTS) -> tuple[PublicGift, ...]:
    rows = _rows(session,
        select(Donation.id, Donation.received_on, Donation.amount_minor, Donation.refunded_minor, Donation.currency,
               Donor.name, Donor.kind, Donor.public_name_consent)
        .outerjoin(Donor, Donor.id == Donation.donor_id)
        .where(Donation.fund_id == fund_id)
        .order_by(Donation.received_on.desc(), Donation.id.desc()).limit(limit))
    return tuple(PublicGift(row.id, row.received_on, row.amount_minor, row.refunded_minor, row.currency,
                            row.name if row.name is not None and (row.public_name_consent
                                                                  or row.kind == DonorKind.ORGANISATION) else None)
                 for row in rows)


def public_grants(session: Session, organisation_id: int, fund_id: int | None = None,
                  limit: int = LISTED_GRANTS) -> tuple[PublicGrant, ...]:
    """The latest grants approved (a request not yet decided, or rejected, is not public)."""
    query = select(Grant, Entry.effective_date).join(Entry, Entry.id == Grant.approved_entry_id) \
        .where(Grant.organisation_id == organisation_id, Grant.status.in_(_GIVEN))
    if fund_id is not None:
        query = query.where(Grant.fund_id == fund_id)
    return tuple(public_grant(grant, approved_on)
                 for grant, approved_on in session.execute(query.order_by(Grant.id.desc()).limit(limit)))


def public_grant(grant: Grant, approved_on: dt.date | None) -> PublicGrant:
    """``approved_on``: the date of the approval's entry (the day the books say it was granted)."""
    payee = masked(grant.payee) if grant.payee_kind == PayeeKind.INDIVIDUAL else grant.payee
    return PublicGrant(grant.id, grant.fund_id, approved_on, payee,
                       grant.payee_kind, grant.purpose, grant.category, grant.status, grant.amount_minor,
                       grant.paid_minor, grant.cancelled_minor, grant.currency)


_VERSION = select(
    select(Entry.id).where(Entry.organisation_id == bindparam("organisation_id"))
    .order_by(Entry.id.desc()).limit(1).scalar_subquery(),
    select(PublicVersion.version).where(PublicVersion.organisation_id == bindparam("organisation_id"))
    .scalar_subquery())


def public_version(session: Session, organisation_id: int) -> tuple[int | None, int | None]:
    """What an organisation's public figures are as of, in one indexed read: its newest entry (every gift, refund,
    grant step and transfer posts one) and its public version (raised by the database for everything else the pages
    show: ``public_versions``)."""
    return tuple(_rows(session, _VERSION.params(organisation_id=organisation_id)).one())


def updated_at(session: Session, organisation_id: int) -> dt.datetime | None:
    """When the organisation's books last changed: its newest entry's moment (by the entries' own index)."""
    return session.scalars(select(Entry.posted_at).where(Entry.organisation_id == organisation_id)
                           .order_by(Entry.id.desc()).limit(1)).first()


def organisation_year(session: Session, organisation_id: int, year: int) -> OrganisationYear:
    """The organisation's year in its base currency: income by revenue account, spending by category."""
    organisation = get_organisation(session, organisation_id)
    accounts = _accounts(session, organisation_id)
    by_account = period_by_account(session, organisation_id, organisation.base_currency,
                                   dt.date(year, 1, 1), dt.date(year, 12, 1))
    income, spending = [], {category: 0 for category in SpendingCategory}
    for account_id, net in sorted(by_account.items(), key=lambda item: accounts[item[0]].code):
        account = accounts[account_id]
        if account.type == AccountType.REVENUE and net:
            income.append(AccountLine(account.code, account.name_zh, account.name_en, -net))
        elif account.type == AccountType.EXPENSE:
            spending[spending_category(account.code)] += net
    return OrganisationYear(organisation_id, year, organisation.base_currency, tuple(income),
                            tuple(spending.items()), sum(line.amount_minor for line in income),
                            sum(spending.values()), tuple(fund_summaries(session, organisation_id)),
                            public_grants(session, organisation_id), updated_at(session, organisation_id))


def period_by_account(session: Session, organisation_id: int, currency: str, first_month: dt.date | None,
                      last_month: dt.date, fund_id: int | None = None) -> dict[int, int]:
    """Each account's debits less credits over the months from ``first_month`` (None: from the start) through
    ``last_month`` (first days of months), over the organisation's funds or one, in the currency."""
    query = (select(_months.account_id, func.sum(_months.debits_minor - _months.credits_minor))
             .where(_months.organisation_id == organisation_id, _months.currency == currency,
                    _months.month <= last_month)
             .group_by(_months.account_id))
    if first_month is not None:
        query = query.where(_months.month >= first_month)
    if fund_id is not None:
        query = query.where(_months.fund_id == fund_id)
    return {account_id: int(net) for account_id, net in _rows(session, query)}


def _as_date(value) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value
