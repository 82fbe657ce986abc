"""Grants: requested, approved (never by the requester; by two people above the organisation's
threshold), paid at once or in parts (never by the requester), cancelled before they are wholly paid, or
rejected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.edge.auth import authorize_funds, listed_funds, requires
from api.edge.session import read_session
from api.edge.writes import UnitOfWork, perform
from api.rest.common import (
    CSV_DOC,
    MAX_PAGE_SIZE,
    Blueprint,
    MinorUnits,
    PageQuerySchema,
    csv_response,
    documents_problems,
    every_row,
    object_id,
    page_schema,
    text,
    today,
    wants_csv,
)
from ledger.access.policy import Need
from ledger.core.vocabulary import GrantCategory, GrantStatus, PayeeKind
from ledger.db.listing import Page
from ledger.grants import lifecycle as grants

blp = Blueprint("grants", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Grants: request, approve (separation of duties), pay, reject")


class GrantPaymentOutSchema(Schema):
    id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)
    paid_on = fields.Date(required=True)
    entry_id = fields.Integer(required=True)
    paid_by_user_id = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Who paid it (unknown only for payments recorded before partial payments existed)"})
    created_at = fields.DateTime(required=True)


class GrantSchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    fund_id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    payee = fields.String(required=True)
    payee_kind = fields.String(required=True, metadata={
        "description": "organisation, or individual (whose name the public pages show as its first character)"})
    purpose = fields.String(required=True)
    category = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "description": "requested, approved, partly_paid, paid, cancelled (after approval) or rejected"})
    approvals_required = fields.Integer(required=True)
    approved_by = fields.List(fields.Integer(), required=True, metadata={"description": "Approvers' user ids"})
    requested_by_user_id = fields.Integer(required=True)
    requested_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True, required=True)
    approved_entry_id = fields.Integer(allow_none=True, required=True)
    paid_minor = fields.Integer(required=True, metadata={"description": "Paid so far"})
    payments = fields.List(fields.Nested(GrantPaymentOutSchema), required=True)
    cancelled_minor = fields.Integer(required=True, metadata={"description": "The unpaid part cancelled"})
    cancelled_entry_id = fields.Integer(allow_none=True, required=True)
    cancelled_at = fields.DateTime(allow_none=True, required=True)
    cancelled_by_user_id = fields.Integer(allow_none=True, required=True)
    cancel_reason = fields.String(required=True)


class GrantInSchema(Schema):
    fund_id = object_id(required=True, strict=True)
    amount_minor = MinorUnits(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    payee = text(200, required=True)
    payee_kind = fields.String(load_default=PayeeKind.ORGANISATION.value, validate=validate.OneOf(list(PayeeKind)),
                               metadata={"description": "organisation (the default), or individual: a person, "
                                                        "whose name the public pages mask"})
    purpose = text(500, required=True)
    category = fields.String(required=True, validate=validate.OneOf(list(GrantCategory)))


class GrantStepSchema(Schema):
    effective_date = fields.Date(metadata={"description": "The entry's date; today (UTC) when left out"})


class GrantPaymentSchema(GrantStepSchema):
    amount_minor = MinorUnits(metadata={"description": "How much of what is still owed to pay now; all of it when "
                                                      "left out"})
    bank_account_id = object_id(strict=True, allow_none=True, load_default=None, metadata={
        "description": "The bank account it is paid from, when not the bank role's default"})


class GrantCancellationSchema(GrantStepSchema):
    reason = text(500, required=True)


class GrantQuerySchema(PageQuerySchema):
    fund_id = object_id()
    status = fields.String(validate=validate.OneOf(list(GrantStatus)))


GrantPageSchema = page_schema(GrantSchema, "GrantPage")
GRANT_COLUMNS = ["id", "fund_id", "amount_minor", "currency", "payee", "payee_kind", "purpose", "category", "status",
                 "requested_at", "decided_at", "approved_entry_id", "paid_minor", "cancelled_minor", "cancelled_at",
                 "cancel_reason"]


def _views(session, grant_list: list) -> list[dict]:
    """The grants with their approvers and payments, for the grant schema."""
    grant_ids = [grant.id for grant in grant_list]
    approvers, payments = grants.approvers_of(session, grant_ids), grants.payments_of(session, grant_ids)
    return [{**{column: getattr(grant, column) for column in GRANT_FIELDS}, "approved_by": approvers[grant.id],
             "payments": payments[grant.id]} for grant in grant_list]


def _view(session, grant) -> dict:
    return _views(session, [grant])[0]


GRANT_FIELDS = tuple(name for name in GrantSchema().fields if name not in ("approved_by", "payments"))


@blp.route("/grants")
class Grants(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(GrantQuerySchema(), location="query")
    @blp.response(200, GrantPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Grants, filtered by fund and status; fund managers see their funds'. Also as CSV."""
        funds = listed_funds(organisation_id, query.get("fund_id"))

        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE) -> Page:
            page = grants.list_grants(session, organisation_id, fund_ids=funds, status=query.get("status"),
                                      after=after, limit=limit)
            return Page(_views(session, page.items), page.next_after)

        if wants_csv():
            return csv_response(every_row(fetch, query.get("after"), GrantSchema(many=True).dump), GRANT_COLUMNS,
                                "grants")
        return fetch(read_session(), query.get("after"), query["limit"])

    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantInSchema())
    @blp.response(201, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("grant.request", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Requests a grant from a fund. Nothing is posted until it is approved."""
        authorize_funds(organisation_id, [data["fund_id"]], write=True)
        grant = grants.request_grant(unit.session, organisation_id, grants.GrantRequest(**data),
                                     requested_by_user_id=unit.principal.user_id)
        return _view(unit.session, grant)


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


def _step(unit: UnitOfWork, organisation_id: int, grant_id: int, take: Callable[[], object]) -> dict:
    """One step of a grant's life, by someone who may write to its fund: ``take`` runs the step."""
    grant = grants.get_grant(unit.session, organisation_id, grant_id)
    authorize_funds(organisation_id, [grant.fund_id], write=True)
    return _view(unit.session, take())


def _on(data: dict) -> dt.date:
    return data.get("effective_date") or today()


@blp.route("/grants/<int:grant_id>/approvals")
class GrantApprovals(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantStepSchema(), required=False)
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("grant.approve")
    def post(self, data, organisation_id: int, grant_id: int, unit: UnitOfWork):
        """Approves a grant. Refused for its requester (403 `separation_of_duties`) and for a second approval
        by the same person; the last approval needed posts the cost and the amount owed."""
        return _step(unit, organisation_id, grant_id, lambda: grants.approve_grant(
            unit.session, organisation_id, grant_id, approver_user_id=unit.principal.user_id,
            effective_date=_on(data), idempotency_key=unit.entry_key, recorded_by=unit.recorded_by))


@blp.route("/grants/<int:grant_id>/payments")
class GrantPayments(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantPaymentSchema(), required=False)
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("grant.pay")
    def post(self, data, organisation_id: int, grant_id: int, unit: UnitOfWork):
        """Pays an approved grant, all that is still owed or `amount_minor` of it (never more), from the fund's
        bank account (the bank role's default unless named). Refused for its requester (403
        `separation_of_duties`)."""
        return _step(unit, organisation_id, grant_id, lambda: grants.pay_grant(
            unit.session, organisation_id, grant_id, paid_on=_on(data), idempotency_key=unit.entry_key,
            recorded_by=unit.recorded_by, paid_by_user_id=unit.principal.user_id,
            amount_minor=data.get("amount_minor"), bank_account_id=data.get("bank_account_id")))


@blp.route("/grants/<int:grant_id>/cancellation")
class GrantCancellation(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantCancellationSchema())
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("grant.cancel")
    def post(self, data, organisation_id: int, grant_id: int, unit: UnitOfWork):
        """Cancels what is still owed of an approved or partly paid grant: the unpaid part is posted back to the
        fund (owed no more, a cost no more); what was paid stays paid."""
        return _step(unit, organisation_id, grant_id, lambda: grants.cancel_grant(
            unit.session, organisation_id, grant_id, cancelled_on=_on(data), reason=data["reason"],
            idempotency_key=unit.entry_key, recorded_by=unit.recorded_by,
            cancelled_by_user_id=unit.principal.user_id))


@blp.route("/grants/<int:grant_id>/rejection")
class GrantRejection(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(GrantStepSchema(), required=False)
    @blp.response(200, GrantSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("grant.reject", moves_money=False)
    def post(self, data, organisation_id: int, grant_id: int, unit: UnitOfWork):
        """Rejects (or withdraws) a grant still awaiting approval; nothing was posted for it."""
        return _step(unit, organisation_id, grant_id, lambda: grants.reject_grant(unit.session, organisation_id,
                                                                                 grant_id))
