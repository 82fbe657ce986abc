"""Public figures: an organisation's year judged against China's rule on charitable spending and management costs,
with the figures it was judged on; and its published reports (an organisation admin publishes a period's report
or its correction; anyone reads them). The reports' files and the pages are ``api.pages.published``."""

from __future__ import annotations

import datetime as dt
import json

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.edge.auth import requires
from api.edge.language import percent
from api.edge.session import public_session
from api.edge.writes import UnitOfWork, perform
from api.rest.common import Blueprint, documents_problems, object_id, text
from ledger.access.policy import Need
from ledger.books.organisations import get_organisation
from ledger.reports import publishing
from ledger.reports.figures import disclosure

blp = Blueprint("reports", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Public figures: the yearly disclosure tests")


class TestSchema(Schema):
    name = fields.String(required=True, metadata={"description": "charitable_spending or management_costs"})
    required_percent = fields.Function(lambda test: percent(test.required), required=True,
                                       metadata={"description": "at least (spending) or at most (management)"})
    actual_percent = fields.Function(lambda test: percent(test.actual), required=True, allow_none=True,
                                     metadata={"description": "null when its base is zero"})
    met = fields.Boolean(required=True)
    basis = fields.String(required=True, metadata={"description": "the article and what the share is of"})


class FiguresSchema(Schema):
    last_year_income_minor = fields.Integer(required=True)
    last_year_end_net_assets_minor = fields.Integer(required=True)
    charitable_spending_minor = fields.Integer(required=True)
    management_minor = fields.Integer(required=True)
    total_spending_minor = fields.Integer(required=True)


class DisclosureSchema(Schema):
    organisation_id = fields.Integer(required=True)
    year = fields.Integer(required=True)
    currency = fields.String(required=True)
    public_fundraising = fields.Boolean(required=True)
    form = fields.String(required=True, metadata={"description": "foundation, or social_organisation"})
    figures = fields.Nested(FiguresSchema, required=True)
    tests = fields.List(fields.Nested(TestSchema), required=True)


class YearQuerySchema(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2200))


@blp.route("/disclosure")
class Disclosure(MethodView):
    @requires(Need.PUBLIC)
    @blp.arguments(YearQuerySchema(), location="query")
    @blp.response(200, DisclosureSchema)
    @documents_problems(blp, 404, 422)
    def get(self, query, organisation_id: int):
        """The year's two tests of China's 2016 rule (《关于慈善组织开展慈善活动年度支出和管理费用的规定》):
        charitable-activity spending against last year's income (with public-fundraising status) or last
        year-end's net assets (without, by tiers), and management costs against the year's total spending (not held
        to it under ¥200,000), with the figures from the books they were judged on."""
        return disclosure(public_session(), organisation_id, query["year"])


class PublishSchema(Schema):
    fund_id = object_id(strict=True, allow_none=True, load_default=None, metadata={
        "description": "The fund the report is about; none for the whole organisation"})
    period_start = fields.Date(required=True, metadata={"description": "The first day of a month"})
    period_end = fields.Date(required=True, metadata={"description": "The last day of a month, before today"})
    correction_note = text(publishing.CORRECTION_LIMIT, metadata={
        "description": "更正说明: what a correction corrects and why; required to publish a period again, refused "
                       "the first time"})


class ReportSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "The report's public number"})
    organisation_id = fields.Integer(required=True)
    fund_id = fields.Integer(required=True, allow_none=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    version = fields.Integer(required=True, metadata={"description": "1, then one more for each correction"})
    replaces_id = fields.Integer(required=True, allow_none=True, metadata={"description": "The version corrected"})
    correction_note = fields.String(required=True)
    title = fields.String(required=True)
    figures = fields.Function(lambda report: json.loads(report.figures), required=True, metadata={
        "description": "The figures as published (their canonical JSON text is what figures_sha256 digests)"})
    figures_sha256 = fields.String(required=True)
    donation_count = fields.Integer(required=True)
    merkle_root = fields.String(required=True, metadata={"description": "RFC 6962 root over the period's gifts"})
    seal_batch_hash = fields.String(required=True, metadata={
        "description": "The organisation's latest sealed batch of entries when the report was computed"})
    sealed_through_entry_id = fields.Integer(required=True)
    published_at = fields.DateTime(required=True)


class ReportListSchema(ReportSchema):
    class Meta:
        exclude = ("figures",)


@blp.route("/reports")
class Reports(MethodView):
    @requires(Need.PUBLIC)
    @blp.response(200, ReportListSchema(many=True))
    @documents_problems(blp, 404)
    def get(self, organisation_id: int):
        """Every version of every report the organisation has published, newest first (its figures at
        ``GET …/reports/{report_id}``)."""
        session = public_session()
        get_organisation(session, organisation_id)
        return publishing.list_reports(session, organisation_id)

    @requires(Need.ORG_ADMIN)
    @blp.arguments(PublishSchema())
    @blp.response(201, ReportSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("report.publish", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Publishes a period's report (whole months, over by today) for the organisation or one fund: its figures
        frozen, numbered, with the seal of the books they came from and a Merkle root over the period's gifts.
        409 when the period is published already: send a ``correction_note`` to publish a corrected version (the
        earlier ones stay public). The annual work report's financial part is the calendar year's report."""
        period = publishing.Period.of(data["period_start"], data["period_end"], dt.datetime.now(dt.UTC).date())
        return publishing.publish(unit.session, organisation_id, data["fund_id"], period,
                                  published_by=unit.recorded_by, correction_note=data["correction_note"])


@blp.route("/reports/<int:report_id>")
class Report(MethodView):
    @requires(Need.PUBLIC)
    @blp.response(200, ReportSchema)
    @documents_problems(blp, 404)
    def get(self, organisation_id: int, report_id: int):
        """One published report with its figures (also as a file: ``/reports/{organisation_id}/{report_id}.json``
        and ``.pdf``)."""
        return publishing.get_report(public_session(), organisation_id, report_id)
