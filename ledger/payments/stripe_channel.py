"""The Stripe channel. Inbound: a webhook event, verified against its ``Stripe-Signature`` header.

The signature is an HMAC of the timestamp and the raw body with the endpoint's secret (stripe-python's
``WebhookSignature`` checks it, and refuses a timestamp older than the tolerance: a replayed delivery). A timestamp
as far in the future is refused here too: no honest clock is five minutes ahead, and a signature made for later
would otherwise stay good for longer. Only a verified body is parsed.
"""

from __future__ import annotations

import datetime as dt
import json

import stripe

from ledger.core.errors import EventMalformed, SignatureInvalid
from ledger.payments.events import ArrivedEvent

CHANNEL = "stripe"
TOLERANCE_SECONDS = 300  # Stripe's own default, each way
SIGNATURE = "Stripe-Signature"
# What the ledger acts on (the rest is acknowledged and logged): Checkout's outcome, the payment's, refunds,
# disputes, monthly gifts and payouts.
HANDLED = frozenset({
    "checkout.session.completed", "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed", "checkout.session.expired",
    "payment_intent.succeeded", "payment_intent.payment_failed",
    "charge.refunded", "charge.dispute.created", "charge.dispute.closed",
    "invoice.paid", "customer.subscription.deleted",
    "payout.paid", "payout.failed",
})


def verified_event(body: bytes, signature: str | None, secret: str, now: dt.datetime) -> ArrivedEvent:
    """The event the body holds, once its signature proves that Stripe sent it, lately; else a refusal naming the
    header (``SignatureInvalid``) or the body (``EventMalformed``)."""
    if not signature:
        raise SignatureInvalid("is missing: a Stripe webhook event is signed", field=SIGNATURE)
    if _timestamp(signature) > now.timestamp() + TOLERANCE_SECONDS:
        raise SignatureInvalid(f"is dated more than {TOLERANCE_SECONDS} s in the future", field=SIGNATURE)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EventMalformed("is not UTF-8 text", field="body") from None
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as error:
        raise SignatureInvalid(f"does not prove the body: {error.user_message or error}", field=SIGNATURE) from None
    return _event(text)


def _timestamp(signature: str) -> int:
    stamps = [part[2:] for part in signature.split(",") if part.startswith("t=")]
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise SignatureInvalid("has no timestamp (t=…)", field=SIGNATURE)
    return int(stamps[0])


def _event(text: str) -> ArrivedEvent:
    try:
        event = json.loads(text)
    except ValueError:
        raise EventMalformed("is not JSON", field="body") from None
    if not isinstance(event, dict):
        raise EventMalformed("is not a JSON object", field="body")
    for name, kind in (("id", str), ("type", str), ("created", int), ("livemode", bool), ("data", dict)):
        if not isinstance(event.get(name), kind) or (kind is int and isinstance(event[name], bool)):
            raise EventMalformed(f"has no {name} of type {kind.__name__}", field=f"body.{name}")
    if not event["id"].startswith("evt_") or len(event["id"]) > 255 or not 0 < len(event["type"]) <= 100:
        raise EventMalformed("is not a Stripe event (its id starts with evt_)", field="body.id")
    if not isinstance(event["data"].get("object"), dict):
        raise EventMalformed("has no object", field="body.data.object")
    return ArrivedEvent(CHANNEL, event["id"], event["type"], event["livemode"],
                        dt.datetime.fromtimestamp(event["created"], dt.UTC), text)
