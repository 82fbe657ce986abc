"""Donors, the gifts fund managers record (bank transfer, cheque, cash, in kind), and refunds.

Donors' contact details and tax ids are personal data: every route here needs a role in the organisation.
"""

from __future__ import annotations

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
    storable,
    strict_boolean,
    text,
    wants_csv,
)
from ledger.access.tokens import Need
from ledger.db.listing import keyset_page
from ledger.db.models import Donation, Donor
from ledger.giving import donations, donors

blp = Blueprint("gifts", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Donors, donations recorded by fund managers, refunds")


class DonorSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    name = fields.String(required=True)
    public_name = fields.Function(donors.public_name, required=True,
                                  metadata={"description": "As the public may see it: whole with consent, else 张*"})
    public_name_consent = fields.Boolean(required=True)
    email = fields.String(allow_none=True, required=True)
    phone = fields.String(allow_none=True, required=True)
    address = fields.String(allow_none=True, required=True)
    tax_id = fields.String(allow_none=True, required=True)
    created_at = Instant(required=True)


class DonorInSchema(Schema):
    kind = fields.String(load_default="individual", validate=validate.OneOf(donors.DONOR_KINDS))
    name = text(200, required=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(allow_none=True, validate=[validate.Length(max=40), storable])
    address = fields.String(allow_none=True, validate=[validate.Length(max=500), storable])
    tax_id = fields.String(allow_none=True, validate=[validate.Length(max=40), storable])
    public_name_consent = strict_boolean(load_default=False)


class RefundSchema(Schema):
    id = fields.Integer(required=True)
    donation_id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)
    refunded_on = fields.Date(required=True)
    reason = fields.String(required=True)
    entry_id = fields.Integer(required=True)
    created_at = Instant(required=True)
    created_by = fields.String(required=True)


class RefundInSchema(Schema):
    amount_minor = MinorUnits(required=True)
    refunded_on = fields.Date(required=True)
    reason = text(500)


class DonationSchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    fund_id = fields.Integer(required=True)
    donor_id = fields.Integer(allow_none=True, required=True)
    channel = fields.String(required=True)
    amount_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    received_on = fields.Date(required=True)
    reference = fields.String(required=True)
    description = fields.String(required=True)
    in_kind_description = fields.String(required=True)
    valuation_basis = fields.String(required=True)
    refunded_minor = fields.Integer(required=True)
    entry_id = fields.Integer(required=True)
    created_at = Instant(required=True)
    created_by = fields.String(required=True)


class DonationDetailSchema(DonationSchema):
    refunds = fields.List(fields.Nested(RefundSchema), required=True)


class DonationInSchema(Schema):
    fund_id = object_id(required=True, strict=True)
    donor_id = object_id(allow_none=True, strict=True, load_default=None)
    amount_minor = MinorUnits(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    channel = fields.String(required=True, validate=validate.OneOf(donations.CHANNELS))
    received_on = fields.Date(required=True)
    reference = text(200, metadata={"description": "The bank's or cheque's reference"})
    description = text(500)
    in_kind_description = text(500, metadata={"description": "What was given (in-kind gifts)"})
    valuation_basis = text(200, metadata={"description": "How its value was set (in-kind gifts)"})
    consumed_at_once = strict_boolean(load_default=False,
                                      metadata={"description": "In-kind gift used at once for the fund's work"})


class DonationQuerySchema(PageQuerySchema):
    fund_id = object_id()
    donor_id = object_id()
    channel = fields.String(validate=validate.OneOf(donations.CHANNELS))
    received_from = fields.Date()
    received_to = fields.Date()


DonorPageSchema = page_schema(DonorSchema, "DonorPage")
DonationPageSchema = page_schema(DonationSchema, "DonationPage")
DONATION_FILTERS = {
    "donor_id": lambda value: Donation.donor_id == value,
    "channel": lambda value: Donation.channel == value,
    "received_from": lambda value: Donation.received_on >= value,
    "received_to": lambda value: Donation.received_on <= value,
}
DONATION_COLUMNS = ["id", "received_on", "fund_id", "donor_id", "channel", "amount_minor", "currency",
                    "refunded_minor", "reference", "description", "entry_id", "created_by"]


@blp.route("/donors")
class Donors(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.arguments(PageQuerySchema(), location="query")
    @blp.response(200, DonorPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """The organisation's donors, with their personal data (members only). Also as CSV."""
        page = keyset_page(read_session(), donors.list_donors(organisation_id), Donor.id, query.get("after"),
                           query["limit"])
        if wants_csv():
            return csv_response(DonorSchema(many=True).dump(page.items), list(DonorSchema().fields), "donors")
        return {"items": page.items, "next_after": page.next_after}

    @requires(Need.MEMBER_WRITE)
    @blp.arguments(DonorInSchema())
    @blp.response(201, DonorSchema)
    @documents_problems(blp, 403, 404, 422)
    def post(self, data, organisation_id: int):
        """Records a donor."""
        return perform("donor.create", organisation_id, lambda session, principal: DonorSchema().dump(
            donors.create_donor(session, organisation_id, created_by=principal.email, **data)), moves_money=False)


@blp.route("/donors/<int:donor_id>")
class DonorItem(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.response(200, DonorSchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int, donor_id: int):
        """One donor."""
        return donors.get_donor(read_session(), organisation_id, donor_id)


@blp.route("/donations")
class Donations(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(DonationQuerySchema(), location="query")
    @blp.response(200, DonationPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Recorded gifts, filtered; fund managers see their funds' gifts. Also as CSV (`Accept: text/csv`)."""
        statement = select(Donation).where(Donation.organisation_id == organisation_id)
        funds = listed_funds(organisation_id, query.get("fund_id"))
        if funds is not None:
            statement = statement.where(Donation.fund_id.in_(sorted(funds)))
        for name, condition in DONATION_FILTERS.items():
            if query.get(name) is not None:
                statement = statement.where(condition(query[name]))
        page = keyset_page(read_session(), statement, Donation.id, query.get("after"), query["limit"])
        if wants_csv():
            return csv_response(DonationSchema(many=True).dump(page.items), DONATION_COLUMNS, "donations")
        return {"items": page.items, "next_after": page.next_after}

    @requires(Need.FUND_WRITE)
    @blp.arguments(DonationInSchema())
    @blp.response(201, DonationDetailSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @blp.doc(**IDEMPOTENCY_DOC)
    def post(self, data, organisation_id: int):
        """Records a gift received by bank transfer, cheque, cash or in kind, and posts its entry.

        Needs an `Idempotency-Key` header: a retry with the same key and body gets the first answer."""
        def work(session, principal):
            authorize_funds(organisation_id, [data["fund_id"]], write=True)
            donation = donations.record_donation(
                session, organisation_id, donations.GiftRecord(**data), idempotency_key=entry_key(principal),
                recorded_by=principal.email)
            return DONATION_DETAIL.dump(_detail(session, donation))
        return perform("donation.record", organisation_id, work)


DONATION_FIELDS = tuple(DonationSchema().fields)
DONATION_DETAIL = DonationDetailSchema()  # built once: a marshmallow schema costs ~0.2 ms to instantiate


def _detail(session, donation: Donation) -> dict:
    return {**{name: getattr(donation, name) for name in DONATION_FIELDS},
            "refunds": donations.refunds_of(session, donation.id) if donation.refunded_minor else []}


@blp.route("/donations/<int:donation_id>")
class DonationItem(MethodView):
    @requires(Need.FUND_READ)
    @blp.response(200, DonationDetailSchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int, donation_id: int):
        """One gift with its refunds."""
        session = read_session()
        donation = donations.get_donation(session, organisation_id, donation_id)
        authorize_funds(organisation_id, [donation.fund_id], write=False)
        return _detail(session, donation)


@blp.route("/donations/<int:donation_id>/refunds")
class Refunds(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(RefundInSchema())
    @blp.response(201, RefundSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @blp.doc(**IDEMPOTENCY_DOC)
    def post(self, data, organisation_id: int, donation_id: int):
        """Gives back part or all of a gift, the way it came; refunds never pass the gift's amount.

        Needs an `Idempotency-Key` header."""
        def work(session, principal):
            donation = donations.get_donation(session, organisation_id, donation_id)
            authorize_funds(organisation_id, [donation.fund_id], write=True)
            return RefundSchema().dump(donations.refund_donation(
                session, organisation_id, donation_id, idempotency_key=entry_key(principal),
                recorded_by=principal.email, **data))
        return perform("donation.refund", organisation_id, work)
