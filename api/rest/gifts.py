"""Donors, the gifts fund managers record (bank transfer, cheque, cash, in kind), refunds, and the gifts given on
the donation pages (online gifts), with the review of those whose payment differs.

Donors' contact details and tax ids are personal data: every route here needs a role in the organisation.
"""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, post_load, validate

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
    page_or_csv,
    page_schema,
    storable,
    strict_boolean,
    text,
    today,
    wants_csv,
)
from ledger.access.policy import Need
from ledger.core.vocabulary import DonationChannel, DonorKind, GiftStatus
from ledger.giving import donations, donors, refunds
from ledger.payments import gifts

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
    created_at = fields.DateTime(required=True)


class DonorInSchema(Schema):
    kind = fields.String(load_default="individual", validate=validate.OneOf(list(DonorKind)))
    name = text(200, required=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(allow_none=True, validate=[validate.Length(max=40), storable])
    address = fields.String(allow_none=True, validate=[validate.Length(max=500), storable])
    tax_id = fields.String(allow_none=True, validate=[validate.Length(max=40), storable])
    public_name_consent = strict_boolean(load_default=False)

    @post_load
    def with_contact(self, data: dict, **_kwargs) -> dict:
        """The personal data apart, as the ledger takes it."""
        contact = {name: data.pop(name) for name in donors.CONTACT_LIMITS if name in data}
        return {**data, "contact": donors.Contact(**contact)}


class RefundSchema(Schema):
    id = fields.Integer(required=True)
    donation_id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)
    refunded_on = fields.Date(required=True)
    reason = fields.String(required=True)
    entry_id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    created_by = fields.String(required=True)
    cancelled_entry_id = fields.Integer(allow_none=True, required=True, metadata={
        "description": "The entry that reversed this refund when it was cancelled as recorded by mistake"})
    cancelled_at = fields.DateTime(allow_none=True, required=True)
    cancelled_by = fields.String(allow_none=True, required=True)
    cancel_reason = fields.String(required=True)


class RefundCancellationSchema(Schema):
    reason = text(500, required=True)
    cancelled_on = fields.Date(metadata={"description": "The reversal's date; today (UTC) when left out"})


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
    goods_value_minor = fields.Integer(required=True, metadata={
        "description": "the good-faith value of goods or services the donor received in return"})
    entry_id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    created_by = fields.String(required=True)


class DonationDetailSchema(DonationSchema):
    refunds = fields.List(fields.Nested(RefundSchema), required=True)


class DonationInSchema(Schema):
    fund_id = object_id(required=True, strict=True)
    donor_id = object_id(allow_none=True, strict=True, load_default=None)
    amount_minor = MinorUnits(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    # (Online gifts come only from a donation page, paid through a processor: ``ledger.payments``.)
    channel = fields.String(required=True, validate=validate.OneOf(
        [channel for channel in DonationChannel if channel != DonationChannel.ONLINE]))
    received_on = fields.Date(required=True)
    reference = text(200, metadata={"description": "The bank's or cheque's reference"})
    description = text(500)
    in_kind_description = text(500, metadata={"description": "What was given (in-kind gifts)"})
    valuation_basis = text(200, metadata={"description": "How its value was set (in-kind gifts)"})
    consumed_at_once = strict_boolean(load_default=False,
                                      metadata={"description": "In-kind gift used at once for the fund's work"})
    account_id = object_id(allow_none=True, strict=True, load_default=None, metadata={
        "description": "The bank (or cash) account it went into, when not the role's default"})
    goods_value_minor = MinorUnits(load_default=0, metadata={
        "description": "The good-faith value of goods or services the donor received in return (a gala dinner's "
                       "meal): receipts deduct it (the US's quid pro quo statement, Canada's advantage)"})


class DonationQuerySchema(PageQuerySchema):
    fund_id = object_id()
    donor_id = object_id()
    channel = fields.String(validate=validate.OneOf(list(DonationChannel)))
    received_from = fields.Date()
    received_to = fields.Date()


DonorPageSchema = page_schema(DonorSchema, "DonorPage")
DonationPageSchema = page_schema(DonationSchema, "DonationPage")
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
        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return donors.list_donors(session, organisation_id, after=after, limit=limit)

        if wants_csv():
            return csv_response(every_row(fetch, query.get("after"), DonorSchema(many=True).dump),
                                list(DonorSchema().fields), "donors")
        return fetch(read_session(), query.get("after"), query["limit"])

    @requires(Need.MEMBER_WRITE)
    @blp.arguments(DonorInSchema())
    @blp.response(201, DonorSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("donor.create", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Records a donor."""
        return donors.create_donor(unit.session, organisation_id, created_by=unit.recorded_by, **data)


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
        which = donations.DonationFilter(
            fund_ids=listed_funds(organisation_id, query.get("fund_id")), donor_id=query.get("donor_id"),
            channel=query.get("channel"), received_from=query.get("received_from"),
            received_to=query.get("received_to"))
        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return donations.list_donations(session, organisation_id, which, after=after, limit=limit)

        if wants_csv():
            return csv_response(every_row(fetch, query.get("after"), DonationSchema(many=True).dump),
                                DONATION_COLUMNS, "donations")
        return fetch(read_session(), query.get("after"), query["limit"])

    @requires(Need.FUND_WRITE)
    @blp.arguments(DonationInSchema())
    @blp.response(201, DonationDetailSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("donation.record")
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Records a gift received by bank transfer, cheque, cash or in kind, and posts its entry."""
        authorize_funds(organisation_id, [data["fund_id"]], write=True)
        donation = donations.record_donation(unit.session, organisation_id, donations.GiftRecord(**data),
                                             idempotency_key=unit.entry_key, recorded_by=unit.recorded_by)
        # A gift just recorded has no refunds (a retry gets the first answer, kept): no query on the hot path.
        return {**{name: getattr(donation, name) for name in DONATION_FIELDS}, "refunds": []}


def _with_refunds(session, donation) -> dict:
    """The gift's fields with its refunds, for the detail schema."""
    return {**{name: getattr(donation, name) for name in DONATION_FIELDS},
            "refunds": donations.refunds_of(session, donation)}


DONATION_FIELDS = tuple(DonationSchema().fields)


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
        return _with_refunds(session, donation)


@blp.route("/donations/<int:donation_id>/refunds")
class Refunds(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(RefundInSchema())
    @blp.response(201, RefundSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("donation.refund")
    def post(self, data, organisation_id: int, donation_id: int, unit: UnitOfWork):
        """Gives back part or all of a gift, the way it came (out of the account it went into); refunds never
        pass the gift's amount."""
        donation = donations.get_donation(unit.session, organisation_id, donation_id)
        authorize_funds(organisation_id, [donation.fund_id], write=True)
        return refunds.refund_donation(unit.session, organisation_id, donation_id, idempotency_key=unit.entry_key,
                                       recorded_by=unit.recorded_by, **data)


@blp.route("/donations/<int:donation_id>/refunds/<int:refund_id>/cancellation")
class RefundCancellation(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(RefundCancellationSchema())
    @blp.response(200, RefundSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("donation.refund.cancel")
    def post(self, data, organisation_id: int, donation_id: int, refund_id: int, unit: UnitOfWork):
        """Cancels a refund recorded by mistake: its entry is reversed (the money is back in the account it left)
        and the gift's refunded total goes back down. Once only (409 `invalid_state`)."""
        donation = donations.get_donation(unit.session, organisation_id, donation_id)
        authorize_funds(organisation_id, [donation.fund_id], write=True)
        return refunds.cancel_refund(unit.session, organisation_id, donation_id, refund_id,
                                     cancelled_on=data.get("cancelled_on") or today(), reason=data["reason"],
                                     idempotency_key=unit.entry_key, recorded_by=unit.recorded_by)


class OnlineGiftSchema(Schema):
    id = fields.Integer(required=True)
    fund_id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True, metadata={"description": "what the donor chose"})
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(GiftStatus)})
    channel = fields.String(required=True, metadata={"description": "stripe, or demo (the test mode)"})
    payment_id = fields.String(allow_none=True, required=True, metadata={
        "description": "the channel's id of the payment (Stripe: the payment intent, pi_…)"})
    paid_minor = fields.Integer(allow_none=True, required=True,
                                metadata={"description": "what the channel reported paid"})
    paid_currency = fields.String(allow_none=True, required=True)
    fee_minor = fields.Integer(allow_none=True, required=True)
    donation_id = fields.Integer(allow_none=True, required=True, metadata={"description": "once recorded"})
    review_reason = fields.String(required=True)
    donor_name = fields.String(required=True)
    donor_email = fields.String(required=True)
    name_public = fields.Boolean(required=True)
    dedication = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class OnlineGiftQuerySchema(PageQuerySchema):
    fund_id = object_id()
    status = fields.String(validate=validate.OneOf(list(GiftStatus)))


class ResolutionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["accept", "reject"]), metadata={
        "description": "accept: record a donation of what was paid; reject: the gift fails, nothing is posted"})
    note = text(300, required=True)


OnlineGiftPageSchema = page_schema(OnlineGiftSchema, "OnlineGiftPage")


@blp.route("/online-gifts")
class OnlineGifts(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(OnlineGiftQuerySchema(), location="query")
    @blp.response(200, OnlineGiftPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Gifts given on the donation pages, whatever became of them, with the channel's payment ids: pending,
        succeeded (with the donation they became), failed, expired, or set aside for ``review`` (what was paid
        differs from what was asked). Also as CSV."""
        which = gifts.GiftFilter(fund_ids=listed_funds(organisation_id, query.get("fund_id")),
                                 status=query.get("status"))

        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return gifts.list_gifts(session, organisation_id, which, after=after, limit=limit)

        return page_or_csv(fetch, query, OnlineGiftSchema, "online-gifts")


@blp.route("/online-gifts/<int:gift_id>/resolution")
class OnlineGiftResolution(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(ResolutionSchema())
    @blp.response(200, OnlineGiftSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("online_gift.resolve")
    def post(self, data, organisation_id: int, gift_id: int, unit: UnitOfWork):
        """Decides a gift set aside for review: accepted, it is recorded as a donation of what was paid (in the fund's
        currency, with the channel's fee); rejected, it fails and nothing is posted (refund at the channel what
        arrived). 409 for a gift not under review."""
        gift = gifts.get_gift(unit.session, organisation_id, gift_id)
        authorize_funds(organisation_id, [gift.fund_id], write=True)
        return gifts.resolve_review(unit.session, organisation_id, gift_id, accept=data["decision"] == "accept",
                                    note=data["note"], resolved_by=unit.recorded_by)
