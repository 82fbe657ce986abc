"""A published report's files at stable addresses: ``/reports/<organisation>/<number>.json`` (the figures exactly as
published, with the seal and the Merkle root) and ``.pdf`` (``?lang=`` picks its language). Both are the same
bytes for ever: a report is never changed, only corrected by a later version."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, url_for

from api.edge.errors import not_found
from api.edge.public_cache import kept_or_made
from api.edge.session import public_session
from api.pages.layout import conditional, page_language
from ledger.core.errors import NotFound
from ledger.reports.publishing import get_report
from receipts import report_pdf

blp = Blueprint("published", __name__)


@blp.route("/reports/<int:organisation_id>/<int:report_id>.<any(json, pdf):extension>")
def report_file(organisation_id: int, report_id: int, extension: str) -> Response:
    # A report never changes: its files are kept with no version to check (rendering a PDF is the costly part).
    language = page_language() if extension == "pdf" else ""
    return conditional(*kept_or_made(None, language, lambda: _file(organisation_id, report_id, extension)))


def _file(organisation_id: int, report_id: int, extension: str) -> tuple[Response, object]:
    try:
        report = get_report(public_session(), organisation_id, report_id)
    except NotFound:
        return not_found(f"organisation {organisation_id} has published no report {report_id}"), None
    json_url = current_app.config["PUBLIC_URL"].rstrip("/") + url_for(
        "published.report_file", organisation_id=organisation_id, report_id=report_id, extension="json")
    if extension == "pdf":
        response = current_app.response_class(report_pdf.render(report, page_language(), json_url),
                                              mimetype="application/pdf")
        response.vary.add("Accept-Language")
    else:
        response = current_app.response_class(json.dumps(_document(report), ensure_ascii=False, indent=1),
                                              mimetype="application/json")
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response, report.published_at


def _document(report) -> dict:
    """The report as published: ``figures_canonical`` is the exact text whose SHA-256 is ``figures_sha256``."""
    return {"number": report.id, "organisation_id": report.organisation_id, "fund_id": report.fund_id,
            "period_start": report.period_start.isoformat(), "period_end": report.period_end.isoformat(),
            "version": report.version, "replaces": report.replaces_id, "correction_note": report.correction_note,
            "title": report.title, "published_at": report.published_at.isoformat(),
            "figures": json.loads(report.figures), "figures_canonical": report.figures,
            "figures_sha256": report.figures_sha256, "donation_count": report.donation_count,
            "merkle_root": report.merkle_root, "seal_batch_hash": report.seal_batch_hash,
            "sealed_through_entry_id": report.sealed_through_entry_id}
