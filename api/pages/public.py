"""The pages anyone may open: the home page (the organisations and their funds, with search), each organisation's
page (its year: income by source, spending by category, China's rule on charitable spending and management costs in
plain sentences; its funds and grants; its published reports), and each fund's page (raised, granted, balance,
donors, a monthly chart, its latest gifts and its grants). Every figure comes from ``ledger.reports.public`` (the
aggregates kept with the postings) on the public session (a read replica when one is set), and every page answers
with an ETag and Last-Modified so that a browser or a proxy asks again cheaply."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, request
from flask_babel import gettext as _

from api.edge.language import percent
from api.edge.public_cache import kept_or_made
from api.edge.session import public_session
from api.pages.chart import month_chart
from api.pages.layout import conditional, money, page_language, render_page
from ledger.books.organisations import get_organisation, public_directory
from ledger.core.errors import NotFound
from ledger.reports.figures import disclosure
from ledger.reports.public import SpendingCategory, fund_page, organisation_year, public_version
from ledger.reports.publishing import annual_report, list_reports

# The templates and the stylesheet of every page (the other page modules render through ``render_page``).
blp = Blueprint("pages", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")

def category_labels() -> dict[SpendingCategory, str]:
    """The spending categories as China's standard names them, in this request's language."""
    return {SpendingCategory.CHARITABLE_ACTIVITIES: _("Charitable activities"),
            SpendingCategory.MANAGEMENT: _("Management"), SpendingCategory.FUNDRAISING: _("Fundraising"),
            SpendingCategory.OTHER: _("Other costs")}


def home_page() -> Response:
    """The root as a browser asks for it (``api.rest.health.Home`` answers JSON to everyone else): every
    organisation and its open funds, or those whose name, code or purpose holds ``?q=``."""
    query = request.args.get("q", "").strip()[:100]
    directory = public_directory(public_session())
    if query:
        directory = _matching(directory, query.casefold())
    return render_page("home.html", directory=directory, query=query)


def _matching(directory, query: str) -> list:
    found = []
    for entry in directory:
        named = query in entry.organisation.name.casefold()
        funds = [fund for fund in entry.open_funds
                 if named or any(query in text.casefold() for text in (fund.name, fund.code, fund.purpose))]
        if named or funds:
            found.append(type(entry)(entry.organisation, funds))
    return found


def _year(found) -> int | None:
    """The year asked for (``?year=``; by default the last whole year, or this one so far for books opened this
    year), or None when the books cannot have it."""
    this_year = dt.datetime.now(dt.UTC).year
    year = request.args.get("year", type=int) or max(this_year - 1, found.books_opened_on.year)
    return year if found.books_opened_on.year - 1 <= year <= this_year else None


@blp.route("/o/<int:organisation_id>")
def organisation(organisation_id: int) -> Response:
    """An organisation's public page for a year (``?year=``)."""
    version = public_version(public_session(), organisation_id)
    if version[1] is None:  # (every organisation has a public version from its first day)
        return render_page("not_found.html", status=404)
    return conditional(*kept_or_made(version, page_language(), lambda: _organisation_page(organisation_id)))


def _organisation_page(organisation_id: int) -> tuple[Response, dt.datetime | None]:
    session = public_session()
    found = get_organisation(session, organisation_id)
    year = _year(found)
    if year is None:
        return render_page("not_found.html", status=404), None
    report = disclosure(session, organisation_id, year)
    figures = organisation_year(session, organisation_id, year)
    this_year = dt.datetime.now(dt.UTC).year
    page = render_page("organisation.html", organisation=found, report=report, money=money, figures=figures,
                       sentences=[_sentence(test, report) for test in report.tests], labels=category_labels(),
                       language=page_language(), reports=list_reports(session, organisation_id),
                       annual=(this_year - 1, annual_report(session, organisation_id, this_year - 1))
                       if found.books_opened_on.year < this_year else None,
                       years=[other for other in range(max(found.books_opened_on.year, this_year - 5), this_year + 1)
                              if other != year])
    return page, figures.updated_at


@blp.route("/o/<int:organisation_id>/f/<int:fund_id>")
def fund(organisation_id: int, fund_id: int) -> Response:
    """A fund's public page: its figures now, its last twelve months, its latest gifts and its grants."""
    version = public_version(public_session(), organisation_id)
    if version[1] is None:
        return render_page("not_found.html", status=404)
    return conditional(*kept_or_made(version, page_language(), lambda: _fund_page(organisation_id, fund_id)))


def _fund_page(organisation_id: int, fund_id: int) -> tuple[Response, dt.datetime | None]:
    session = public_session()
    try:
        figures = fund_page(session, organisation_id, fund_id, dt.datetime.now(dt.UTC).date())
    except NotFound:
        return render_page("not_found.html", status=404), None
    page = render_page("fund.html", organisation=get_organisation(session, organisation_id), figures=figures,
                       fund=figures.summary, money=money, chart=month_chart(figures.months, page_language()),
                       reports=list_reports(session, organisation_id, fund_id))
    return page, figures.updated_at


def _sentence(test, report) -> tuple[str, bool]:
    """One test in one sentence a neighbour understands: what was spent, what the rule asks, and whether it is met."""
    verdict = _("met") if test.met else _("not met")
    values = {"year": report.year, "actual": percent(test.actual), "required": percent(test.required),
              "verdict": verdict}
    if test.name == "charitable_spending":
        if test.actual is None:
            return _("In %(year)s there was nothing the rule asks to be spent on charitable work: %(verdict)s.",
                     **values), test.met
        if report.public_fundraising:
            return _("In %(year)s it spent on charitable work %(actual)s%% of the previous year’s income; the rule "
                     "asks for at least %(required)s%%: %(verdict)s.", **values), test.met
        return _("In %(year)s it spent on charitable work %(actual)s%% of its net assets at the end of the previous "
                 "year; the rule asks for at least %(required)s%%: %(verdict)s.", **values), test.met
    if test.actual is None:
        return _("In %(year)s it spent nothing, so its running costs are not judged: %(verdict)s.", **values), test.met
    if "art. 11" in test.basis:
        return _("Its running (management) costs were %(actual)s%% of the year’s spending, under ¥200,000, which "
                 "the rule does not hold to its %(required)s%% limit: %(verdict)s.", **values), test.met
    return _("Its running (management) costs were %(actual)s%% of the year’s spending; the rule allows at most "
             "%(required)s%%: %(verdict)s.", **values), test.met
