"""Public figures (issue 12, begun): an organisation's year judged against China's rule on charitable spending and
management costs, with the figures it was judged on. Public: anyone may read them."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.edge.auth import requires
from api.edge.language import percent
from api.edge.session import read_session
from api.rest.common import Blueprint, documents_problems
from ledger.access.policy import Need
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
        return disclosure(read_session(), organisation_id, query["year"])
