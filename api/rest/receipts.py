"""Receipts: the register (list, one receipt, its PDF), issuing on request, voiding and replacing, the
organisation's receipt settings, and the public key that checks receipts' verification tokens.

Receipts hold donors' names, addresses and tax ids: reading them needs an admin or auditor of the organisation;
changing them, an admin. The public key is public: anyone may check a receipt with it.
"""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.edge.auth import authorize_funds, requires
from api.edge.session import database, read_session
from api.edge.writes import UnitOfWork, perform
from api.rest.common import (
    CSV_DOC,
    MAX_PAGE_SIZE,
    Blueprint,
    PageQuerySchema,
    csv_response,
    documents_problems,
    every_row,
    object_id,
    page_schema,
    text,
    wants_csv,
)
from ledger.access.policy import Need
from ledger.giving import donations
from receipts import documents, gift_aid, official, register, signing

blp = Blueprint("receipts", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Receipts: the register, voids and replacements, PDFs, the verification key")


def _secret() -> bytes:
    return current_app.config["RECEIPT_SIGNING_SECRET"].encode()


def verify_address(receipt) -> str:
    return documents.verify_address(current_app.config["PUBLIC_URL"], _secret(), receipt)


class ReceiptSchema(Schema):
    id = fields.Function(lambda facts: facts.receipt.id, required=True)
    number = fields.Function(lambda facts: facts.receipt.number, required=True,
                             metadata={"example": "R1-2026-000123"})
    kind = fields.Function(lambda facts: facts.receipt.kind, required=True,
                           metadata={"description": "donation (one gift) or annual (a donor's gifts of a year)"})
    status = fields.String(required=True, metadata={"description": "issued, voided or replaced"})
    void_reason = fields.String(required=True)
    replaced_by = fields.String(required=True, metadata={"description": "the number of the receipt replacing it"})
    replaces = fields.String(required=True, metadata={"description": "the number of the receipt it replaces"})
    donation_ids = fields.List(fields.Integer(), required=True)
    donor_id = fields.Function(lambda facts: facts.receipt.donor_id, required=True)
    donor_name = fields.Function(lambda facts: facts.receipt.donor_name, required=True)
    fund_id = fields.Function(lambda facts: facts.receipt.fund_id, required=True, allow_none=True)
    amount_minor = fields.Function(lambda facts: facts.receipt.amount_minor, required=True)
    currency = fields.Function(lambda facts: facts.receipt.currency, required=True)
    advantage_minor = fields.Function(lambda facts: facts.receipt.advantage_minor, required=True, metadata={
        "description": "goods or services given in return, at their good-faith value: not deductible"})
    issued_on = fields.Function(lambda facts: facts.receipt.issued_on.isoformat(), required=True)
    jurisdiction = fields.Function(lambda facts: facts.receipt.jurisdiction, required=True)
    language = fields.Function(lambda facts: facts.receipt.language, required=True)
    verify_url = fields.Function(lambda facts: verify_address(facts.receipt), required=True, metadata={
        "description": "the public verification page (its token is the organisation's signature)"})
    created_by = fields.Function(lambda facts: facts.receipt.created_by, required=True)


RECEIPT_COLUMNS = ["id", "number", "kind", "status", "issued_on", "donor_id", "donor_name", "fund_id",
                   "amount_minor", "currency", "replaces", "replaced_by", "void_reason"]
ReceiptPageSchema = page_schema(ReceiptSchema, "ReceiptPage")


class ReceiptQuerySchema(PageQuerySchema):
    donor_id = object_id()
    donation_id = object_id()
    year = fields.Integer(validate=validate.Range(min=2000, max=2200))


class IssueSchema(Schema):
    donation_id = object_id(required=True)


class ReasonSchema(Schema):
    reason = text(500, required=True)


class ReplacementSchema(ReasonSchema):
    language = fields.String(validate=validate.OneOf(list(register.ReceiptLanguage)), metadata={
        "description": "the new receipt's language (a donor asking for English, say); the organisation's if absent"})


class SettingsSchema(Schema):
    prefix = fields.String(required=True, validate=validate.Length(min=1, max=20), metadata={"example": "CDCF"})
    timing = fields.String(required=True, validate=validate.OneOf(list(register.ReceiptTiming)))
    jurisdiction = fields.String(required=True, validate=validate.OneOf(list(register.ReceiptJurisdiction)))
    language = fields.String(required=True, validate=validate.OneOf(list(register.ReceiptLanguage)))
    fiscal_year_start_month = fields.Integer(load_default=1, validate=validate.Range(min=1, max=12), metadata={
        "description": "the month the organisation's year starts: annual receipts cover that year"})
    issuer_address = text(300, metadata={"description": "where receipts are issued from (Canada's receipts say)"})
    signatory = text(200, metadata={"description": "who signs receipts (printed on Canada's official receipts)"})


class OfficialBillSchema(Schema):
    bill_code = text(40, required=True, metadata={"description": "票据代码", "example": "51010126"})
    bill_number = text(40, required=True, metadata={"description": "票据号码", "example": "0000123456"})
    check_code = text(40, required=True, metadata={"description": "校验码", "example": "a1b2c3"})
    issued_on = fields.Date(required=True, metadata={"description": "the e-bill's date"})


class PdfQuerySchema(Schema):
    version = fields.String(load_default="copy", validate=validate.OneOf(["copy", "original"]), metadata={
        "description": "copy (the default: marked 副本 / COPY, and VOID when voided) or original (the bytes whose "
                       "SHA-256 the verification page shows)"})


class KeySchema(Schema):
    algorithm = fields.String(required=True, metadata={"example": "Ed25519"})
    public_key = fields.String(required=True, metadata={"description": "the raw key, base64url without padding"})
    signed_text = fields.String(required=True, metadata={"description": "what a token signs"})


def _facts_page(page):
    session = read_session()
    return {"items": [register.facts_of(session, receipt) for receipt in page.items], "next_after": page.next_after}


@blp.route("/receipts")
class Receipts(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(ReceiptQuerySchema(), location="query")
    @blp.response(200, ReceiptPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """The receipt register, filtered by donor, gift or year. Also as CSV (`Accept: text/csv`)."""
        which = register.ReceiptFilter(donor_id=query.get("donor_id"), donation_id=query.get("donation_id"),
                                       year=query.get("year"))

        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return register.list_receipts(session, organisation_id, which, after=after, limit=limit)

        if wants_csv():
            def dump(items):
                session = read_session()
                return ReceiptSchema(many=True).dump([register.facts_of(session, item) for item in items])
            return csv_response(every_row(fetch, query.get("after"), dump), RECEIPT_COLUMNS, "receipts")
        return _facts_page(fetch(read_session(), query.get("after"), query["limit"]))

    @requires(Need.FUND_WRITE)
    @blp.arguments(IssueSchema())
    @blp.response(201, ReceiptSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("receipt.issue", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Issues a receipt for what of a gift no receipt covers yet (an organisation that receipts on request, or
        a gift recorded before receipts were on). 409 when nothing is left to receipt."""
        donation = donations.get_donation(unit.session, organisation_id, data["donation_id"])
        authorize_funds(organisation_id, [donation.fund_id], write=True)
        receipt = register.issue_on_request(unit.session, organisation_id, donation.id, unit.recorded_by)
        return register.facts_of(unit.session, receipt)


@blp.route("/receipts/<int:receipt_id>")
class OneReceipt(MethodView):
    @requires(Need.ORG_READ)
    @blp.response(200, ReceiptSchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int, receipt_id: int):
        """One receipt, with what became of it."""
        session = read_session()
        return register.facts_of(session, register.get_receipt(session, organisation_id, receipt_id))


@blp.route("/receipts/<int:receipt_id>/pdf")
class ReceiptPdf(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(PdfQuerySchema(), location="query")
    @blp.response(200, {"format": "binary", "type": "string"}, content_type="application/pdf")
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int, receipt_id: int):
        """The receipt as a PDF: a copy (marked 副本 / COPY), or the original as issued."""
        session = read_session()
        receipt = register.get_receipt(session, organisation_id, receipt_id)
        if query["version"] == "original":
            pdf = database().write(lambda write: documents.original_document(
                write, register.get_receipt(write, organisation_id, receipt_id), verify_address(receipt)).pdf)
        else:
            pdf = documents.copy_pdf(session, receipt, verify_address(receipt))
        return Response(pdf, mimetype="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{receipt.number}.pdf"'})


@blp.route("/receipts/<int:receipt_id>/void")
class ReceiptVoid(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(ReasonSchema())
    @blp.response(200, ReceiptSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("receipt.void", moves_money=False)
    def post(self, data, organisation_id: int, receipt_id: int, unit: UnitOfWork):
        """Voids a receipt, with the reason (it stays in the register, marked void). Once (409 after)."""
        receipt = register.void_on_request(unit.session, organisation_id, receipt_id, reason=data["reason"],
                                           voided_by=unit.recorded_by)
        return register.facts_of(unit.session, receipt)


@blp.route("/receipts/<int:receipt_id>/replacement")
class ReceiptReplacement(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(ReplacementSchema())
    @blp.response(201, ReceiptSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("receipt.replace", moves_money=False)
    def post(self, data, organisation_id: int, receipt_id: int, unit: UnitOfWork):
        """Replaces a receipt: it is voided, and a new one (with the donor's details as they are now, in the language
        asked for) states the number it replaces. 409 for a void receipt."""
        new = register.replace_on_request(unit.session, organisation_id, receipt_id, reason=data["reason"],
                                          replaced_by=unit.recorded_by, language=data.get("language"))
        return register.facts_of(unit.session, new)


@blp.route("/receipts/<int:receipt_id>/official-bill")
class ReceiptOfficialBill(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(OfficialBillSchema())
    @blp.response(200, ReceiptSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("receipt.official_bill", moves_money=False)
    def post(self, data, organisation_id: int, receipt_id: int, unit: UnitOfWork):
        """Attaches the finance department's official donation e-bill (公益事业捐赠票据) to a Chinese receipt once
        that system has issued it: its code, number, check code and date. The receipt's PDF is rendered again with
        them, as a new version (`version=original` then gives it; the first stays kept). Once (409 after)."""
        receipt = register.get_receipt(unit.session, organisation_id, receipt_id)
        official.attach_official_bill(unit.session, organisation_id, receipt_id, attached_by=unit.recorded_by,
                                      verify_url=verify_address(receipt), **data)
        return register.facts_of(unit.session, receipt)


@blp.route("/receipt-settings")
class ReceiptSettings(MethodView):
    @requires(Need.ORG_READ)
    @blp.response(200, SettingsSchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """The numbers' prefix, when receipts are issued (per_donation, annual, on_request), whose rules they
        follow and their language; the defaults until an admin sets them."""
        return register.settings_of(read_session(), organisation_id)

    @requires(Need.ORG_ADMIN)
    @blp.arguments(SettingsSchema())
    @blp.response(200, SettingsSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("receipt.settings", moves_money=False)
    def put(self, data, organisation_id: int, unit: UnitOfWork):
        """Sets the organisation's receipt settings (receipts issued before keep what they say)."""
        return register.set_settings(unit.session, organisation_id, updated_by=unit.recorded_by, **data)


class DeclarationSchema(Schema):
    id = fields.Integer(required=True)
    donor_id = fields.Integer(required=True)
    declared_on = fields.Date(required=True)
    effective_from = fields.Date(required=True)
    cancelled_on = fields.Date(required=True, allow_none=True)
    created_by = fields.String(required=True)


class DeclarationInSchema(Schema):
    declared_on = fields.Date(required=True)
    effective_from = fields.Date(metadata={"description": "the first day whose gifts it covers (at most four years "
                                                          "back); the day it was made if absent"})


class DeclarationCancelSchema(Schema):
    cancelled_on = fields.Date(required=True)


@blp.route("/donors/<int:donor_id>/gift-aid-declarations")
class GiftAidDeclarations(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.response(200, DeclarationSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int, donor_id: int):
        """The donor's Gift Aid declarations (UK), cancelled ones included."""
        return gift_aid.declarations(read_session(), organisation_id, donor_id)

    @requires(Need.MEMBER_WRITE)
    @blp.arguments(DeclarationInSchema())
    @blp.response(201, DeclarationSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("gift_aid.declare", moves_money=False)
    def post(self, data, organisation_id: int, donor_id: int, unit: UnitOfWork):
        """Records the donor's Gift Aid declaration: UK receipts of the gifts it covers say so."""
        return gift_aid.declare(unit.session, organisation_id, donor_id, declared_on=data["declared_on"],
                                effective_from=data.get("effective_from"), created_by=unit.recorded_by)


@blp.route("/donors/<int:donor_id>/gift-aid-declarations/<int:declaration_id>/cancellation")
class GiftAidCancellation(MethodView):
    @requires(Need.MEMBER_WRITE)
    @blp.arguments(DeclarationCancelSchema())
    @blp.response(200, DeclarationSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("gift_aid.cancel", moves_money=False)
    def post(self, data, organisation_id: int, donor_id: int, declaration_id: int, unit: UnitOfWork):
        """The donor cancelled their declaration: gifts after that day are not covered. Once (409 after)."""
        return gift_aid.cancel(unit.session, organisation_id, donor_id, declaration_id,
                               cancelled_on=data["cancelled_on"])


@blp.route("/receipt-key")
class ReceiptKey(MethodView):
    @requires(Need.PUBLIC)
    @blp.response(200, KeySchema)
    @documents_problems(blp, 404)
    def get(self, organisation_id: int):
        """The organisation's public key (Ed25519) that checks its receipts' verification tokens offline: the
        token is a signature over the lines of `signed_text` (`scripts/verify_receipt.py` checks one)."""
        register.settings_of(read_session(), organisation_id)  # (404 for an organisation that is not there)
        return {"algorithm": "Ed25519", "public_key": signing.public_key_text(_secret(), organisation_id),
                "signed_text": f"{signing.VERSION}\\n<organisation id>\\n<number>\\n<amount in minor units>\\n"
                               "<currency>\\n<date issued, YYYY-MM-DD>"}
