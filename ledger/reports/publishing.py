"""Published reports: a period's figures for an organisation or one fund, frozen as published.

A report covers whole months (the figures are the months kept with the postings). Publishing reads the figures, the
period's gifts (each a Merkle leaf, ``ledger.reports.merkle``) and the organisation's latest sealed batch (the hash
chaining every entry sealed so far, ``ledger.books.integrity``), and stores them as one numbered, append-only row:
the figures as canonical JSON with their SHA-256, the leaves, their root, the seal. Publishing the same period
again is refused; a correction is a new version of the series that names what it corrects (更正说明), and the
earlier versions stay public. The annual work report's financial part (due by 31 May) is the organisation's
report for the calendar year.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from ledger.books.integrity import GENESIS, last_batch
from ledger.books.organisations import get_fund, get_organisation
from ledger.core.chart import AccountType
from ledger.core.errors import Conflict, InvalidInput, NotFound
from ledger.db.models import Account, Donation, Entry, Fund, Grant, PublishedReport, month_totals
from ledger.db.types import utc_now
from ledger.reports.figures import disclosure
from ledger.reports.merkle import GiftLeaf, inclusion_path, index_of, root, split_leaves
from ledger.reports.public import SpendingCategory, period_by_account, public_grant, spending_category

_months = month_totals.c  # a balance's totals by month (a view: monthly_balances and the current month)

CORRECTION_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.date
    end: dt.date

    @classmethod
    def of(cls, start: dt.date, end: dt.date, today: dt.date) -> Period:
        """Whole months, in order, over by today: the figures are kept by month."""
        if start.day != 1:
            raise InvalidInput("must be the first day of a month", field="period_start")
        if end.day != calendar.monthrange(end.year, end.month)[1]:
            raise InvalidInput("must be the last day of a month", field="period_end")
        if end < start:
            raise InvalidInput("must not be before period_start", field="period_end")
        if end >= today:
            raise InvalidInput("a period is published once it is over", field="period_end")
        return cls(start, end)


@dataclass(frozen=True, slots=True)
class Seal:
    batch_hash: str
    through_entry_id: int


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """What a donor needs to check their gift is in a report, without the server (``scripts/verify_inclusion.py``)."""

    report_id: int
    merkle_root: str
    tree_size: int
    index: int
    leaf_fields: list[str]
    leaf_hash: str
    path: list[str]


def series_of(fund_id: int | None, period: Period) -> str:
    return f"{'organisation' if fund_id is None else f'fund-{fund_id}'}:{period.start}:{period.end}"


def publish(session: Session, organisation_id: int, fund_id: int | None, period: Period, *, published_by: str,
            correction_note: str = "") -> PublishedReport:
    """Publishes the period's report, or (with ``correction_note``) a corrected version of the one published."""
    organisation = get_organisation(session, organisation_id)
    if period.end < organisation.books_opened_on:  # an empty report, sealed for good, of years the books never held
        raise InvalidInput(f"must not be before the books opened ({organisation.books_opened_on.isoformat()})",
                           field="period_end")
    fund = get_fund(session, organisation_id, fund_id) if fund_id is not None else None
    series = series_of(fund_id, period)
    before = latest_version(session, organisation_id, series)
    note = correction_note.strip()
    if before is not None and not note:
        raise Conflict(f"report {before.id} already covers this period: publish a correction, with a "
                       "correction_note saying what it corrects", field="correction_note")
    if before is None and note:
        raise InvalidInput("nothing is published for this period yet to correct", field="correction_note")
    if len(note) > CORRECTION_LIMIT:
        raise InvalidInput(f"must be at most {CORRECTION_LIMIT} characters", field="correction_note")
    leaves, count, total = _gift_leaves(session, organisation_id, fund_id, period)
    seal = current_seal(session, organisation_id)
    figures = report_figures(session, organisation, fund, period)
    figures["gifts"] = {"count": count, "amount_minor": total, "merkle_root": root(split_leaves(leaves)).hex()}
    canonical = canonical_json(figures)
    report = PublishedReport(
        organisation_id=organisation_id, fund_id=fund_id, period_start=period.start, period_end=period.end,
        series=series, version=before.version + 1 if before else 1, replaces_id=before.id if before else None,
        correction_note=note, title=_title(organisation.name, fund.name if fund else None, period),
        figures=canonical, figures_sha256=hashlib.sha256(canonical.encode()).hexdigest(), donation_count=count,
        merkle_root=figures["gifts"]["merkle_root"], leaves=leaves, seal_batch_hash=seal.batch_hash,
        sealed_through_entry_id=seal.through_entry_id, published_at=utc_now(), published_by=published_by)
    session.add(report)
    session.flush()
    return report


def canonical_json(value) -> str:
    """The one spelling of a report's figures that its digest is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _title(organisation: str, fund: str | None, period: Period) -> str:
    return f"{organisation}{' · ' + fund if fund else ''} · {period.start.isoformat()} – {period.end.isoformat()}"


def latest_version(session: Session, organisation_id: int, series: str) -> PublishedReport | None:
    return session.scalars(select(PublishedReport).where(PublishedReport.organisation_id == organisation_id,
                                                         PublishedReport.series == series)
                           .order_by(PublishedReport.version.desc()).limit(1)).first()


def current_seal(session: Session, organisation_id: int) -> Seal:
    """The organisation's latest sealed batch: the figures are the books' as sealed through its last entry (and
    any entry since, which the next batch will seal)."""
    batch = last_batch(session, organisation_id)
    return Seal(batch.batch_hash, batch.last_entry_id) if batch else Seal(GENESIS, 0)


def _gift_leaves(session: Session, organisation_id: int, fund_id: int | None,
                 period: Period) -> tuple[bytes, int, int]:
    """The period's gifts as leaves, in order, read by index in chunks: (the leaves, how many, their total)."""
    query = (select(Donation.id, Donation.fund_id, Donation.donor_id, Donation.amount_minor, Donation.currency,
                    Donation.received_on)
             .where(Donation.organisation_id == organisation_id, Donation.received_on >= period.start,
                    Donation.received_on <= period.end)
             .order_by(Donation.received_on, Donation.id))
    if fund_id is not None:
        query = query.where(Donation.fund_id == fund_id)
    leaves, count, total = bytearray(), 0, 0
    for row in session.execute(query.execution_options(yield_per=10_000)):
        leaves += GiftLeaf(row.id, organisation_id, row.fund_id, row.donor_id, row.amount_minor, row.currency,
                           row.received_on).digest()
        count += 1
        total += row.amount_minor
    return bytes(leaves), count, total


def report_figures(session: Session, organisation, fund, period: Period) -> dict:
    """The period's figures in the currency of the books (the fund's, or the organisation's base currency)."""
    currency = fund.currency if fund else organisation.base_currency
    fund_id = fund.id if fund else None
    accounts = {account.id: account for account in session.scalars(
        select(Account).where(Account.organisation_id == organisation.id))}
    months = period_by_account(session, organisation.id, currency, period.start, period.end.replace(day=1), fund_id)
    closing = period_by_account(session, organisation.id, currency, None, period.end.replace(day=1), fund_id)
    income = [{"code": accounts[a].code, "name_zh": accounts[a].name_zh, "name_en": accounts[a].name_en,
               "amount_minor": -net} for a, net in sorted(months.items(), key=lambda item: accounts[item[0]].code)
              if accounts[a].type == AccountType.REVENUE and net]
    spending = {category.value: 0 for category in SpendingCategory}
    for account_id, net in months.items():
        if accounts[account_id].type == AccountType.EXPENSE:
            spending[spending_category(accounts[account_id].code)] += net
    figures = {
        "scope": "fund" if fund else "organisation",
        "organisation": {"id": organisation.id, "name": organisation.name,
                         "registration_number": organisation.registration_number,
                         "jurisdiction": organisation.jurisdiction},
        "fund": {"id": fund.id, "code": fund.code, "name": fund.name} if fund else None,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "currency": currency,
        "income": income, "income_minor": sum(line["amount_minor"] for line in income),
        "spending": spending, "spending_minor": sum(spending.values()),
        "closing_net_assets_minor": sum(net for a, net in closing.items()
                                        if accounts[a].type in (AccountType.ASSET, AccountType.LIABILITY)),
        "grants": _period_grants(session, organisation.id, fund_id, period),
    }
    if fund is None:
        figures["funds"] = _fund_lines(session, organisation.id, currency, period)
        if (period.start.month, period.start.day, period.end.month) == (1, 1, 12) and \
                period.start.year == period.end.year:
            figures["disclosure"] = _disclosure(session, organisation.id, period.start.year)
    return figures


def _fund_lines(session: Session, organisation_id: int, currency: str, period: Period) -> list[dict]:
    """Each fund's income, spending and closing balance for the period: one grouped read of the months."""
    kinds = {row.id: row.type for row in session.execute(
        select(Account.id, Account.type).where(Account.organisation_id == organisation_id))}
    lines: dict[int, dict] = {}
    last = period.end.replace(day=1)
    for row in session.execute(
            select(_months.fund_id, _months.account_id, (_months.month >= period.start).label("within"),
                   func.sum(_months.debits_minor - _months.credits_minor).label("net"))
            .where(_months.organisation_id == organisation_id, _months.currency == currency,
                   _months.month <= last)
            .group_by(_months.fund_id, _months.account_id, "within")):
        line = lines.setdefault(row.fund_id, {"fund_id": row.fund_id, "income_minor": 0, "spending_minor": 0,
                                              "closing_net_assets_minor": 0})
        net, kind = int(row.net), kinds[row.account_id]
        if kind in (AccountType.ASSET, AccountType.LIABILITY):
            line["closing_net_assets_minor"] += net
        elif row.within and kind == AccountType.REVENUE:
            line["income_minor"] -= net
        elif row.within and kind == AccountType.EXPENSE:
            line["spending_minor"] += net
    names = {row.id: (row.code, row.name) for row in session.execute(
        select(Fund.id, Fund.code, Fund.name).where(Fund.organisation_id == organisation_id))}
    return [{**lines[fund_id], "code": names[fund_id][0], "name": names[fund_id][1]} for fund_id in sorted(lines)]


def _period_grants(session: Session, organisation_id: int, fund_id: int | None, period: Period) -> list[dict]:
    """The grants approved in the period, by their approval entry's date (a person's name masked)."""
    query = (select(Grant, Entry.effective_date).join(Entry, Entry.id == Grant.approved_entry_id)
             .where(Grant.organisation_id == organisation_id, Entry.effective_date >= period.start,
                    Entry.effective_date <= period.end).order_by(Grant.id))
    if fund_id is not None:
        query = query.where(Grant.fund_id == fund_id)
    grants = [public_grant(grant, approved_on) for grant, approved_on in session.execute(query)]
    return [{"id": grant.grant_id, "fund_id": grant.fund_id, "approved_on": grant.approved_on.isoformat(),
             "payee": grant.payee, "payee_kind": grant.payee_kind, "purpose": grant.purpose,
             "category": grant.category, "amount_minor": grant.amount_minor - grant.cancelled_minor}
            for grant in grants]


def _disclosure(session: Session, organisation_id: int, year: int) -> dict:
    report = disclosure(session, organisation_id, year)
    return {"public_fundraising": report.public_fundraising, "form": report.form.value,
            "figures": asdict(report.figures),
            "tests": [{"name": test.name, "met": test.met, "basis": test.basis,
                       "required": _fraction(test.required), "actual": _fraction(test.actual)}
                      for test in report.tests]}


def _fraction(share) -> str | None:
    return None if share is None else f"{share.numerator}/{share.denominator}"


def annual_report(session: Session, organisation_id: int, year: int) -> PublishedReport | None:
    """The latest version of the organisation's report for the calendar year: the financial part of its annual
    work report (年度工作报告), due by 31 May of the next year."""
    return latest_version(session, organisation_id, series_of(None, Period(dt.date(year, 1, 1),
                                                                           dt.date(year, 12, 31))))


def list_reports(session: Session, organisation_id: int, fund_id: int | None = None) -> list[PublishedReport]:
    """Every version published for the organisation (or one fund), newest first, without their leaves."""
    query = select(PublishedReport).where(PublishedReport.organisation_id == organisation_id)
    if fund_id is not None:
        query = query.where(PublishedReport.fund_id == fund_id)
    return list(session.scalars(query.options(defer(PublishedReport.leaves)).order_by(PublishedReport.id.desc())))


def get_report(session: Session, organisation_id: int, report_id: int) -> PublishedReport:
    report = session.get(PublishedReport, report_id)
    if report is None or report.organisation_id != organisation_id:
        raise NotFound(f"report {report_id} does not exist", field="report_id")
    return report


def inclusion_proof(report: PublishedReport, gift: GiftLeaf) -> InclusionProof | None:
    """The proof that the gift is among the report's leaves, or None when it is not."""
    leaf = gift.digest()
    index = index_of(report.leaves, leaf)
    if index is None:
        return None
    leaves = split_leaves(report.leaves)
    return InclusionProof(report.id, report.merkle_root, len(leaves), index, gift.fields(), leaf.hex(),
                          [sibling.hex() for sibling in inclusion_path(leaves, index)])


def reports_covering(session: Session, organisation_id: int, fund_id: int, received_on: dt.date
                     ) -> list[PublishedReport]:
    """The latest version of each report whose period holds a gift's date (the organisation's, or its fund's)."""
    candidates = session.scalars(select(PublishedReport).where(
        PublishedReport.organisation_id == organisation_id, PublishedReport.period_start <= received_on,
        PublishedReport.period_end >= received_on,
        (PublishedReport.fund_id.is_(None)) | (PublishedReport.fund_id == fund_id))
        .order_by(PublishedReport.id))
    latest: dict[str, PublishedReport] = {}
    for report in candidates:
        latest[report.series] = report
    return list(latest.values())
