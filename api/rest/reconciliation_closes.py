"""Reconciled months closed (issue 13): an account's month closed as reconciled, its report frozen; and the
reconciliation report as a PDF (the frozen one for a whole month so closed)."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.edge.auth import requires
from api.edge.session import read_session
from api.edge.writes import UnitOfWork, perform
from api.rest.common import Blueprint, documents_problems, object_id
from api.rest.reconciliation import ReconciliationReportQuerySchema, ReconciliationReportSchema
from ledger.access.policy import Need
from ledger.reconciliation import closes
from receipts import reconciliation_pdf

blp = Blueprint("reconciliation_closes", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Reconciliation: months closed as reconciled, and the report as a PDF")


class ReconciliationCloseInSchema(Schema):
    account_id = object_id(required=True, metadata={"description": "the chart's bank, cash or clearing account"})
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=1900, max=9999))
    month = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))


@blp.route("/reconciliation/close")
class ReconciliationClose(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(ReconciliationCloseInSchema())
    @blp.response(201, ReconciliationReportSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("reconciliation.close", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Closes an ended month of the account as reconciled: refused (409, naming the amount) unless a statement
        of the month states the bank's closing balance and nothing of the difference is unexplained. The ledger's
        month is closed too (no entry dated in it is accepted), and the month's report frozen: the report for the
        whole month is this one until the month is reopened (then closed again: the next version)."""
        return closes.close_reconciled_month(unit.session, organisation_id, data["account_id"], data["year"],
                                             data["month"], unit.recorded_by)


@blp.route("/reconciliation/report.pdf")
class ReconciliationReportPdf(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(ReconciliationReportQuerySchema(), location="query")
    @blp.response(200, {"format": "binary", "type": "string"}, content_type="application/pdf")
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """The reconciliation report as a PDF, labelled in Chinese and English (the frozen report, with when it was
        closed and its SHA-256, for a whole month closed as reconciled). The same report gives the same bytes."""
        found = closes.read_report(read_session(), organisation_id, query["account_id"], query["start"],
                                   query["end"])
        name = f"reconciliation-{found.account_id}-{found.start}-{found.end}.pdf"
        return Response(reconciliation_pdf.render(found), mimetype="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}"'})
