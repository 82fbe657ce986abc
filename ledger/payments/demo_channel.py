"""The demo's stand-in for a payment processor, used when no processor is configured (``make run`` with no
Stripe keys): the donor "pays" on a page of this site that says plainly it is a test, and no money moves.

It works as a processor does: paying makes a **signed event** (``demo.payment.succeeded``: an HMAC-SHA256 of its
timestamp and body with the deployment's demo secret, in Stripe's ``t=…,v1=…`` form), which is verified, stored
once by its id (``processor_events``, channel ``demo``) and applied from the stored row, like a Stripe event: the
gift is recorded with the fee the event states. The fee is a flat 3 % (rounded half up to the minor unit), a figure
of the size card processors charge, so that the demo shows how a fee is booked: a fundraising cost, the net left in
the processor's clearing account until a payout.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid

from sqlalchemy.orm import Session

from ledger.core.errors import EventMalformed, SignatureInvalid
from ledger.core.vocabulary import EventStatus, GiftStatus, PaymentChannelName
from ledger.db.models import OnlineGift, ProcessorEvent
from ledger.payments.events import ArrivedEvent, store_event
from ledger.payments.gifts import Payment, gift_by_token, gift_ended, gift_paid

CHANNEL = PaymentChannelName.DEMO
FEE_BASIS_POINTS = 300
RECORDED_BY = "demo checkout (no money moved)"
PAID = "demo.payment.succeeded"
HANDLED = frozenset({PAID})
TOLERANCE_SECONDS = 300


def demo_fee(amount_minor: int) -> int:
    return (amount_minor * FEE_BASIS_POINTS + 5_000) // 10_000


def signed_payment(gift: OnlineGift, paid_at: dt.datetime, secret: bytes) -> tuple[str, str]:
    """The event the demo's processor sends when the donor pays: its body and its signature header."""
    body = json.dumps({"id": f"evt_demo_{uuid.uuid4().hex}", "type": PAID, "created": int(paid_at.timestamp()),
                       "livemode": False, "data": {"object": {
                           "gift": gift.token, "payment": f"demo_{gift.id}", "amount_minor": gift.amount_minor,
                           "currency": gift.currency, "fee_minor": demo_fee(gift.amount_minor),
                           "paid_on": paid_at.date().isoformat()}}}, sort_keys=True)
    stamp = int(paid_at.timestamp())
    return body, f"t={stamp},v1={_signature(secret, stamp, body)}"


def _signature(secret: bytes, stamp: int, body: str) -> str:
    return hmac.new(secret, f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()


def verified_event(body: str, header: str, secret: bytes, now: dt.datetime) -> ArrivedEvent:
    """The event, once its signature proves this deployment's demo processor made it, lately."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp = parts.get("t", "")
    if not stamp.isdigit() or abs(now.timestamp() - int(stamp)) > TOLERANCE_SECONDS:
        raise SignatureInvalid("has no timestamp within 300 s of now", field="signature")
    if not hmac.compare_digest(parts.get("v1", ""), _signature(secret, int(stamp), body)):
        raise SignatureInvalid("does not prove the body", field="signature")
    try:
        event = json.loads(body)
        return ArrivedEvent(CHANNEL, event["id"], event["type"], False,
                            dt.datetime.fromtimestamp(event["created"], dt.UTC), body)
    except (ValueError, KeyError, TypeError):
        raise EventMalformed("is not a demo event", field="body") from None


def apply_event(session: Session, stored: ProcessorEvent) -> str:
    """A stored demo payment, applied: the gift recorded with the event's fee (once, however often)."""
    found = json.loads(stored.payload)["data"]["object"]
    payment = Payment(found["payment"], found["amount_minor"], found["currency"], found["fee_minor"],
                      dt.date.fromisoformat(found["paid_on"]))
    gift_paid(session, found["gift"], payment, RECORDED_BY)
    return EventStatus.APPLIED


def pay(session: Session, token: str, today: dt.date) -> OnlineGift:
    """The gift paid at once, with the demo's fee, without an event (the ledger's own tests of ``gift_paid``)."""
    gift = gift_by_token(session, token)
    payment = Payment(f"demo_{gift.id}", gift.amount_minor, gift.currency, demo_fee(gift.amount_minor), today)
    return gift_paid(session, token, payment, RECORDED_BY)


def leave(session: Session, token: str) -> OnlineGift:
    """The donor left the demo's checkout without paying."""
    return gift_ended(session, token, GiftStatus.EXPIRED)


def receive(database, body: str, header: str, secret: bytes, now: dt.datetime) -> str:
    """What a webhook does with a demo event: verified, stored once (its own commit), then applied from the stored
    row in a transaction of its own (its row locked: two deliveries apply it once). The event's status."""
    event = verified_event(body, header, secret, now)
    stored, _ = database.write(lambda session: store_event(session, event, HANDLED))

    def apply(session: Session) -> str:
        row = session.get(ProcessorEvent, stored.id, with_for_update=True, populate_existing=True)
        if row.status in (EventStatus.RECEIVED, EventStatus.FAILED):
            row.status = apply_event(session, row)
        return row.status

    return database.write(apply)
