"""Processor payouts reconciled (issue 13): a Stripe payout's balance transactions tied to the organisation's
donations, and the payout's amount to the entries that moved it to the bank; every difference listed."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from api.edge.auth import requires
from api.edge.channels import stripe_account
from api.edge.session import read_session
from api.rest.common import CSV_DOC, Blueprint, csv_response, documents_problems, wants_csv
from ledger.access.policy import Need
from ledger.core.errors import InvalidState
from ledger.reconciliation import payouts

blp = Blueprint("payouts", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Reconciliation: processor payouts tied to donations")


class PayoutTieRowSchema(Schema):
    transaction_id = fields.String(required=True, metadata={"description": "Stripe's balance transaction"})
    type = fields.String(required=True, metadata={"description": "Stripe's: charge, refund, adjustment, …"})
    source_id = fields.String(required=True, allow_none=True)
    intent_id = fields.String(required=True, allow_none=True, metadata={"description": "the payment it concerns"})
    currency = fields.String(required=True)
    stripe_gross_minor = fields.Integer(required=True)
    stripe_fee_minor = fields.Integer(required=True)
    stripe_net_minor = fields.Integer(required=True)
    donation_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "the donation it ties to; null: none of this organisation's"})
    fund_id = fields.Integer(required=True, allow_none=True)
    entry_ids = fields.List(fields.Integer(), required=True, metadata={"description": "the ledger's entries for it"})
    ledger_gross_minor = fields.Integer(required=True, allow_none=True)
    ledger_fee_minor = fields.Integer(required=True, allow_none=True)
    ledger_net_minor = fields.Integer(required=True, allow_none=True, metadata={
        "description": "null: the ledger explains none of it"})
    difference_minor = fields.Integer(required=True, metadata={"description": "Stripe's net less the ledger's"})


class PayoutDifferenceSchema(Schema):
    kind = fields.String(required=True, metadata={
        "description": "no_gift, currency_differs, amount_differs, fee_differs, refund_not_recorded, "
                       "transactions_differ, payout_not_posted, posted_differs"})
    amount_minor = fields.Integer(required=True, metadata={"description": "what Stripe's side holds more"})
    transaction_id = fields.String(required=True, allow_none=True)
    donation_id = fields.Integer(required=True, allow_none=True)


class PayoutTieSchema(Schema):
    payout_id = fields.String(required=True, attribute="payout.id")
    amount_minor = fields.Integer(required=True, attribute="payout.amount_minor", metadata={
        "description": "Stripe's payout"})
    currency = fields.String(required=True, attribute="payout.currency")
    arrival_date = fields.Date(required=True, attribute="payout.arrival_date")
    status = fields.String(required=True, attribute="payout.status")
    transactions_net_minor = fields.Integer(required=True, metadata={"description": "the sum of Stripe's nets"})
    tied_net_minor = fields.Integer(required=True, metadata={"description": "the nets the ledger recorded"})
    posted_minor = fields.Integer(required=True, metadata={"description": "the ledger's payout entries"})
    posted_entry_ids = fields.List(fields.Integer(), required=True)
    rows = fields.List(fields.Nested(PayoutTieRowSchema), required=True)
    differences = fields.List(fields.Nested(PayoutDifferenceSchema), required=True)
    reconciled = fields.Boolean(required=True)


@blp.route("/reconciliation/payouts/<payout_id>")
class PayoutReconciliation(MethodView):
    @requires(Need.ORG_READ)
    @blp.response(200, PayoutTieSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 409)
    def get(self, organisation_id: int, payout_id: str):
        """A Stripe payout tied to the books: each balance transaction to its donation (Stripe's gross, fee and
        net beside the ledger's), the payout's amount to its entries, and every difference (none: reconciled).
        Read from Stripe as it is now: 503 when Stripe cannot be reached, 409 when no Stripe account is configured.
        ``Accept: text/csv``: the same as one table (``section`` summary, transaction or difference)."""
        account = stripe_account()
        if account is None:
            raise InvalidState("no Stripe account is configured: set STRIPE_SECRET_KEY", field="STRIPE_SECRET_KEY")
        found = payouts.payout_tie(read_session(), account, organisation_id, payout_id)
        if wants_csv():
            return csv_response(_rows(found), COLUMNS, f"payout-{found.payout.id}")
        return found


COLUMNS = ["section", "item", "transaction_id", "type", "donation_id", "fund_id", "stripe_gross_minor",
           "stripe_fee_minor", "stripe_net_minor", "ledger_gross_minor", "ledger_fee_minor", "ledger_net_minor",
           "amount_minor"]


def _rows(found: payouts.PayoutTie) -> list[dict]:
    summary = [("amount_minor", found.payout.amount_minor), ("transactions_net_minor", found.transactions_net_minor),
               ("tied_net_minor", found.tied_net_minor), ("posted_minor", found.posted_minor),
               ("reconciled", found.reconciled)]
    rows = [{"section": "summary", "item": name, "amount_minor": value} for name, value in summary]
    rows += [{"section": "transaction", "item": row.source_id or "", **_fields(row),
              "amount_minor": row.difference_minor} for row in found.rows]
    rows += [{"section": "difference", "item": difference.kind, "transaction_id": difference.transaction_id,
              "donation_id": difference.donation_id, "amount_minor": difference.amount_minor}
             for difference in found.differences]
    return rows


def _fields(row: payouts.Row) -> dict:
    return {column: getattr(row, column) for column in COLUMNS[2:-1]}
