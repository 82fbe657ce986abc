"""The pages anyone may open: the home page (the organisations and the funds that take gifts), and each
organisation's page (its funds, and its year against China's rule on charitable spending and management costs,
each test in one plain sentence)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, request
from flask_babel import gettext as _

from api.edge.language import percent
from api.edge.session import read_session
from api.pages.layout import money, render_page
from ledger.books.organisations import get_organisation, list_funds, public_directory
from ledger.core.errors import NotFound
from ledger.payments.gifts import gifts_received
from ledger.reports.figures import disclosure

# The templates and the stylesheet of every page (the other page modules render through ``render_page``).
blp = Blueprint("pages", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")


def home_page() -> Response:
    """The root as a browser asks for it (``api.rest.health.Home`` answers JSON to everyone else)."""
    return render_page("home.html", directory=public_directory(read_session()))


@blp.route("/o/<int:organisation_id>")
def organisation(organisation_id: int) -> Response:
    """An organisation's public page: its year (``?year=``; the last whole year by default) judged against the
    rule, and its funds with the gifts each has received."""
    session = read_session()
    this_year = dt.datetime.now(dt.UTC).year
    year = request.args.get("year", type=int) or this_year - 1
    try:
        found = get_organisation(session, organisation_id)
    except NotFound:
        return render_page("not_found.html", status=404)
    if not found.books_opened_on.year - 1 <= year <= this_year:
        return render_page("not_found.html", status=404)
    report = disclosure(session, organisation_id, year)
    funds = list_funds(session, organisation_id, after=None, limit=500).items
    return render_page("organisation.html", organisation=found, report=report, money=money,
                       sentences=[_sentence(test, report) for test in report.tests],
                       years=[other for other in range(max(found.books_opened_on.year, this_year - 5), this_year + 1)
                              if other != year],
                       funds=[(fund, gifts_received(session, fund)) for fund in funds])


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
