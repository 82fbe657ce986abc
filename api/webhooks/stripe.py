"""Stripe's webhook endpoint: ``POST /webhooks/stripe``.

The body is read raw (the signature covers its exact bytes) and verified before anything is parsed; the event is
stored in the transaction whose commit the 200 acknowledges. Stripe sends again what it did not see acknowledged,
and a second delivery of a stored event is acknowledged without a change. A refused delivery answers 400
(``signature_invalid``, ``event_malformed``) and writes nothing.
"""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api.edge.auth import requires
from api.edge.channels import stripe_account
from api.edge.documented import documents_problems
from api.edge.jobs import handle_stored_event
from api.edge.session import database
from ledger.access.policy import Need
from ledger.core.errors import NotFound
from ledger.core.vocabulary import EventStatus
from ledger.db.types import utc_now
from ledger.payments.events import store_event
from ledger.payments.stripe_channel import HANDLED, SIGNATURE, verified_event

blp = Blueprint("webhooks", __name__, url_prefix="/webhooks", description="Events from payment processors")


class AcknowledgementSchema(Schema):
    received = fields.Boolean(required=True, metadata={"example": True})
    event_id = fields.String(required=True, metadata={"example": "evt_1NG8Du2eZvKYlo2CUI79vXWy"})
    duplicate = fields.Boolean(required=True, metadata={
        "description": "true when an earlier delivery of the same event was stored: nothing changed"})
    status = fields.String(required=True, metadata={
        "description": "received (to be applied), applied, ignored (a type the ledger does not act on) or failed"})


@blp.route("/stripe")
class StripeEvents(MethodView):
    @requires(Need.PUBLIC)
    @blp.response(200, AcknowledgementSchema)
    @documents_problems(blp, 404)
    def post(self):
        """Stripe's webhook: an event signed with the endpoint's secret (``Stripe-Signature``), verified against the
        raw body and refused when its timestamp is more than 300 s old or ahead; stored once by its id. 404 when no
        webhook secret is configured (``STRIPE_WEBHOOK_SECRET``)."""
        secret = current_app.config["STRIPE_WEBHOOK_SECRET"]
        if not secret:
            raise NotFound("no Stripe webhook secret is configured here (STRIPE_WEBHOOK_SECRET)")
        event = verified_event(request.get_data(), request.headers.get(SIGNATURE), secret, utc_now())
        stored, fresh = database().write(lambda session: store_event(session, event, HANDLED))
        status = stored.status
        if status in (EventStatus.RECEIVED, EventStatus.FAILED) and stripe_account() is not None:
            # The event is stored (its own commit): a failure to apply it is kept on its row, for its next delivery
            # or a replay. Applied by a worker, after the answer, or before it (``api.edge.jobs``).
            status = handle_stored_event(stored.id, status)
        return {"received": True, "event_id": stored.event_id, "duplicate": not fresh, "status": status}
