"""Grants: requested, approved (never by the requester; by two people above the organisation's
threshold), paid, or rejected."""

from __future__ import annotations

import datetime as dt

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.edge.auth import authorize_funds, listed_funds, requires
from api.edge.session import read_session
from api.edge.writes import entry_key, perform
from api.rest.common import (
    CSV_DOC,
    IDEMPOTENCY_DOC,
    Instant,
    MinorUnits,
    PageQuerySchema,
    csv_response,
    documents_problems,
    object_id,
    page_schema,
    text,
    wants_csv,
)
from ledger.access.tokens import Need
from ledger.books.organisations import get_fund
from ledger.core.errors import CurrencyMismatch
from ledger.core.recipes import GRANT_CATEGORIES
from ledger.db.listing import keyset_page
from ledger.db.models import Grant
from ledger.grants import lifecycle as grants

blp = Blueprint("grants", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Grants: request, approve (separation of duties), pay, reject")


class GrantSchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    fund_id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    payee = fields.String(required=True)
    purpose = fields.String(required=True)
    category = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "requested, approved, paid or rejected"})
    approvals_required = fields.Integer(required=True)
    approved_by = fields.List(fields.Integer(), required=True, metadata={"description": "Approvers' user ids"})
    requested_by_user_id = fields.Integer(required=True)
    requested_at = Instant(required=True)
    decided_at = Instant(allow_none=True, required=True)
    approved_entry_id = fields.Integer(allow_none=True, required=True)
    paid_entry_id = fields.Integer(allow_none=True, required=True)


class GrantInSchema(Schema):
    fund_id = object_id(required=True, strict=True)
    amount_minor = MinorUnits(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    payee = text(200, required=True)
    purpose = text(500, required=True)
    category = fields.String(required=True, validate=validate.OneOf(list(GRANT_CATEGORIES)))


class GrantStepSchema(Schema):
    effective_date = fields.Date(metadata={"description": "The entry's date; today (UTC) when left out"})


class GrantQuerySchema(PageQuerySchema):
    fund_id = object_id()
    status = fields.String(validate=validate.OneOf(("requested", "approved", "paid", "rejected")))


GrantPageSchema = page_schema(GrantSchema, "GrantPage")
GRANT_COLUMNS = ["id", "fund_id", "amount_minor", "currency", "payee", "purpose", "category", "status",
                 "requested_at", "decided_at", "approved_entry_id", "paid_entry_id"]


def _views(session, page: list[Grant]) -> list[dict]:
    """The grants with their approvers, not yet dumped."""
    approvers = grants.approvers_of(session, [grant.id for grant in page])
    return [{**{column: getattr(grant, column) for column in GrantSchema().fields if column != "approved_by"},
             "approved_by": approvers[grant.id]} for grant in page]


def _view(session, grant: Grant) -> dict:
    return _views(session, [grant])[0]


@blp.route("/grants")
class Grants(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(GrantQuerySchema(), location="query")
    @blp.response(200, GrantPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Grants, filtered by fund and status; fund managers see their funds'. Also as CSV."""
        session = read_session()
        statement = select(Grant).where(Grant.organisation_id == organisation_id)
        funds = listed_funds(organisation_id, query.get("fund_id"))
        if funds is not None:
            statement = statement.where(Grant.fund_id.in_(sorted(funds)))
        if query.get("status"):
            statement = statement.where(Grant.status == query["status"])
        page = keyset_page(session, statement, Grant.id, query.get("after"), query["limit"])
        items = _views(session, page.items)
        if wants_csv():
            return csv_response(GrantSchema(many=True).dump(items), GRANT_COLUMNS, "grants")
        return {"items": items, "next_after": page.next_after}

    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantInSchema())
    @blp.response(201, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    def post(self, data, organisation_id: int):
        """Requests a grant from a fund. Nothing is posted until it is approved."""
        def work(session, principal):
            authorize_funds(organisation_id, [data["fund_id"]], write=True)
            fund_currency = get_fund(session, organisation_id, data["fund_id"]).currency
            if data.pop("currency") != fund_currency:
                raise CurrencyMismatch(f"the fund keeps {fund_currency}", field="currency")
            return GrantSchema().dump(_view(session, grants.request_grant(
                session, organisation_id, requested_by_user_id=principal.user_id, **data)))
        return perform("grant.request", organisation_id, work, moves_money=False)


@blp.route("/grants/<int:grant_id>")
class GrantItem(MethodView):
    @requires(Need.FUND_READ)
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int, grant_id: int):
        """One grant, with who approved it."""
        session = read_session()
        grant = grants.get_grant(session, organisation_id, grant_id)
        authorize_funds(organisation_id, [grant.fund_id], write=False)
        return _view(session, grant)


def _step(action: str, organisation_id: int, grant_id: int, take, moves_money: bool = True):
    """One step of a grant's life: ``take(session, principal)`` returns the grant after the step."""
    def work(session, principal):
        grant = grants.get_grant(session, organisation_id, grant_id)
        authorize_funds(organisation_id, [grant.fund_id], write=True)
        return GrantSchema().dump(_view(session, take(session, principal)))
    return perform(f"grant.{action}", organisation_id, work, status=200, moves_money=moves_money)


def _on(data: dict) -> dt.date:
    return data.get("effective_date") or dt.datetime.now(dt.UTC).date()


@blp.route("/grants/<int:grant_id>/approvals")
class GrantApprovals(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantStepSchema(), required=False)
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @blp.doc(**IDEMPOTENCY_DOC)
    def post(self, data, organisation_id: int, grant_id: int):
        """Approves a grant. Refused for its requester (403 `separation_of_duties`) and for a second approval
        by the same person; the last approval needed posts the cost and the amount owed. Needs an
        `Idempotency-Key` header."""
        return _step("approve", organisation_id, grant_id, lambda session, principal: grants.approve_grant(
            session, organisation_id, grant_id, approver_user_id=principal.user_id, effective_date=_on(data),
            idempotency_key=entry_key(principal), recorded_by=principal.email))


@blp.route("/grants/<int:grant_id>/payment")
class GrantPayment(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantStepSchema(), required=False)
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @blp.doc(**IDEMPOTENCY_DOC)
    def post(self, data, organisation_id: int, grant_id: int):
        """Pays an approved grant from the fund's bank account. Needs an `Idempotency-Key` header."""
        return _step("pay", organisation_id, grant_id, lambda session, principal: grants.pay_grant(
            session, organisation_id, grant_id, paid_on=_on(data), idempotency_key=entry_key(principal),
            recorded_by=principal.email))


@blp.route("/grants/<int:grant_id>/rejection")
class GrantRejection(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantStepSchema(), required=False)
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    def post(self, data, organisation_id: int, grant_id: int):
        """Rejects (or withdraws) a grant still awaiting approval; nothing was posted for it."""
        return _step("reject", organisation_id, grant_id,
                     lambda session, _principal: grants.reject_grant(session, organisation_id, grant_id),
                     moves_money=False)
