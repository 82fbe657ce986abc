"""Open data: every figure of the public pages as JSON and CSV at stable addresses, and the grants in the
360Giving Data Standard. Amounts are whole minor units (fen, cents) with their currency, never decimals to round.

- ``/data/organisations.{json,csv}``: the organisations and their open funds;
- ``/data/o/<organisation>/<year>.{json,csv}``: an organisation's year (income by source, spending by category,
  China's disclosure tests, its funds now);
- ``/data/o/<organisation>/f/<fund>.{json,csv}``: a fund now (its figures, the last twelve months, its latest gifts
  with consented names only, its grants);
- ``/data/o/<organisation>/grants.{json,csv}`` and ``grants-360giving.{json,csv}``.

A CSV is one tidy table: ``section, key, label, amount_minor, currency, count`` (a row per figure), so one reader
takes every file. Each answer carries an ETag and Last-Modified (``api.pages.layout.conditional``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import asdict

from flask import Blueprint, Response, current_app

from api.edge.errors import not_found
from api.edge.language import percent
from api.edge.public_cache import kept_or_made
from api.edge.session import public_session
from api.pages.layout import conditional
from ledger.books.organisations import get_organisation, public_directory
from ledger.core.errors import NotFound
from ledger.reports.figures import disclosure
from ledger.reports.public import fund_names, fund_page, public_grants, public_version, updated_at
from ledger.reports.public import organisation_year as year_of
from ledger.reports.threesixty import Funder, awarded, grants_csv, grants_json

blp = Blueprint("open_data", __name__, url_prefix="/data")
COLUMNS = ["section", "key", "label", "amount_minor", "currency", "count"]
EXTENSIONS = ("json", "csv")


def _answer(extension: str, document: dict, rows: Iterable[dict],
            updated: dt.datetime | None) -> tuple[Response, dt.datetime | None]:
    if extension == "json":
        body, mimetype = json.dumps(document, ensure_ascii=False, default=_plain, indent=1), "application/json"
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        body, mimetype = out.getvalue(), "text/csv"
    response = current_app.response_class(body, mimetype=mimetype)
    response.headers["Access-Control-Allow-Origin"] = "*"  # open data: any page may fetch it
    return response, updated


def _of_organisation(organisation_id: int, make) -> Response:
    """An organisation's data, kept while its public version holds (``api.edge.public_cache``)."""
    version = public_version(public_session(), organisation_id)
    if version[1] is None:  # (every organisation has a public version from its first day)
        return _not_found()
    return conditional(*kept_or_made(version, "", make))


def _plain(value):
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def _not_found() -> Response:
    return not_found("no such organisation, fund or year among the open data")


@blp.route("/organisations.<any(json, csv):extension>")
def directory(extension: str) -> Response:
    entries = public_directory(public_session())
    document = {"organisations": [
        {"id": entry.organisation.id, "name": entry.organisation.name, "kind": entry.organisation.kind,
         "jurisdiction": entry.organisation.jurisdiction,
         "registration_number": entry.organisation.registration_number,
         "public_fundraising": entry.organisation.public_fundraising,
         "funds": [{"id": fund.id, "code": fund.code, "name": fund.name, "currency": fund.currency,
                    "restricted": fund.restricted, "purpose": fund.purpose} for fund in entry.open_funds]}
        for entry in entries]}
    rows = [{"section": "organisation", "key": organisation["id"], "label": organisation["name"]}
            for organisation in document["organisations"]]
    rows += [{"section": "fund", "key": f"{organisation['id']}/{fund['id']}", "label": fund["name"],
              "currency": fund["currency"]} for organisation in document["organisations"] for fund in
             organisation["funds"]]
    return conditional(*_answer(extension, document, rows, None))


@blp.route("/o/<int:organisation_id>/<int:year>.<any(json, csv):extension>")
def organisation_year(organisation_id: int, year: int, extension: str) -> Response:
    if not 2000 <= year <= 2200:
        return _not_found()
    return _of_organisation(organisation_id, lambda: _organisation_year(organisation_id, year, extension))


def _organisation_year(organisation_id: int, year: int, extension: str):
    session = public_session()
    organisation = get_organisation(session, organisation_id)
    figures = year_of(session, organisation_id, year)
    tests = disclosure(session, organisation_id, year)
    document = {
        "organisation": {"id": organisation.id, "name": organisation.name,
                         "registration_number": organisation.registration_number,
                         "public_fundraising": organisation.public_fundraising},
        "year": year, "currency": figures.currency, "income_minor": figures.income_minor,
        "spending_minor": figures.spending_minor, "income": [asdict(line) for line in figures.income],
        "spending": [{"category": category.value, "amount_minor": amount} for category, amount in figures.spending],
        "disclosure": {"figures": asdict(tests.figures),
                       "tests": [{"name": test.name, "met": test.met, "basis": test.basis,
                                  "required_percent": percent(test.required), "actual_percent": percent(test.actual)}
                                 for test in tests.tests]},
        "funds": [asdict(fund) for fund in figures.funds]}
    currency = figures.currency
    rows = [{"section": "total", "key": "income", "amount_minor": figures.income_minor, "currency": currency},
            {"section": "total", "key": "spending", "amount_minor": figures.spending_minor, "currency": currency}]
    rows += [{"section": "income", "key": line.code, "label": line.name_en, "amount_minor": line.amount_minor,
              "currency": currency} for line in figures.income]
    rows += [{"section": "spending", "key": category.value, "amount_minor": amount, "currency": currency}
             for category, amount in figures.spending]
    rows += [{"section": "disclosure", "key": name, "amount_minor": value, "currency": currency}
             for name, value in asdict(tests.figures).items()]
    rows += [{"section": "disclosure_test", "key": test["name"], "label": f"{test['actual_percent']}% "
              f"(rule {test['required_percent']}%): {'met' if test['met'] else 'not met'}"}
             for test in document["disclosure"]["tests"]]
    rows += _fund_rows(figures.funds)
    return _answer(extension, document, rows, figures.updated_at)


def _fund_rows(funds) -> list[dict]:
    rows = []
    for fund in funds:
        for name in ("raised_minor", "income_minor", "spent_minor", "granted_minor", "balance_minor"):
            rows.append({"section": "fund", "key": f"{fund.fund_id}/{name.removesuffix('_minor')}",
                         "label": fund.name, "amount_minor": getattr(fund, name), "currency": fund.currency})
        rows.append({"section": "fund", "key": f"{fund.fund_id}/donors", "label": fund.name,
                     "count": fund.donor_count + fund.anonymous_gift_count})
    return rows


@blp.route("/o/<int:organisation_id>/f/<int:fund_id>.<any(json, csv):extension>")
def fund_figures(organisation_id: int, fund_id: int, extension: str) -> Response:
    return _of_organisation(organisation_id, lambda: _fund_figures(organisation_id, fund_id, extension))


def _fund_figures(organisation_id: int, fund_id: int, extension: str):
    try:
        figures = fund_page(public_session(), organisation_id, fund_id, dt.datetime.now(dt.UTC).date())
    except NotFound:
        return _not_found(), None
    summary = figures.summary
    document = {"fund": asdict(summary), "donors": summary.donor_count + summary.anonymous_gift_count,
                "months": [asdict(month) for month in figures.months],
                "recent_gifts": [asdict(gift) for gift in figures.recent_gifts],
                "grants": [asdict(grant) for grant in figures.grants]}
    rows = _fund_rows([summary])
    rows += [{"section": "month", "key": month.month.strftime("%Y-%m"), "label": what, "amount_minor": amount,
              "currency": month.currency}
             for month in figures.months for what, amount in (("income", month.income_minor),
                                                               ("spending", month.spending_minor))]
    rows += [{"section": "gift", "key": gift.received_on.isoformat(), "label": gift.donor_name or "anonymous",
              "amount_minor": gift.amount_minor - gift.refunded_minor, "currency": gift.currency}
             for gift in figures.recent_gifts]
    rows += _grant_rows(figures.grants)
    return _answer(extension, document, rows, figures.updated_at)


def _grant_rows(grants) -> list[dict]:
    return [{"section": "grant", "key": grant.grant_id, "label": f"{grant.payee}: {grant.purpose}",
             "amount_minor": grant.amount_minor - grant.cancelled_minor, "currency": grant.currency}
            for grant in grants]


@blp.route("/o/<int:organisation_id>/grants.<any(json, csv):extension>")
def grants(organisation_id: int, extension: str) -> Response:
    return _of_organisation(organisation_id, lambda: _grants(organisation_id, extension))


def _grants(organisation_id: int, extension: str):
    session = public_session()
    listed = public_grants(session, organisation_id, limit=10_000)
    return _answer(extension, {"grants": [asdict(grant) for grant in listed]}, _grant_rows(listed),
                   updated_at(session, organisation_id))


@blp.route("/o/<int:organisation_id>/grants-360giving.<any(json, csv):extension>")
def grants_360giving(organisation_id: int, extension: str) -> Response:
    """The grants in the 360Giving Data Standard (its package schema for JSON, its column titles for CSV)."""
    return _of_organisation(organisation_id, lambda: _grants_360giving(organisation_id, extension))


def _grants_360giving(organisation_id: int, extension: str):
    session = public_session()
    organisation = get_organisation(session, organisation_id)
    funder = Funder(organisation.id, organisation.name, organisation.jurisdiction, organisation.registration_number,
                    current_app.config["PUBLIC_URL"], fund_names(session, organisation_id))
    listed = public_grants(session, organisation_id, limit=10_000)
    changed = updated_at(session, organisation_id)
    moment = changed or dt.datetime.now(dt.UTC)
    if extension == "json":
        # (the standard's package needs one grant at least: with none approved yet, an empty list says so)
        body = grants_json(funder, listed, moment) if awarded(listed) else '{"grants": []}'
        response = current_app.response_class(body, mimetype="application/json")
    else:
        response = current_app.response_class(grants_csv(funder, listed, moment), mimetype="text/csv")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response, changed
