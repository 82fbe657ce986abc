"""The Stripe channel. Outbound: a Checkout Session for a gift (``start_checkout``). Inbound: a webhook event,
verified against its ``Stripe-Signature`` header (``verified_event``), then applied from its stored row
(``apply_event``).

Applying fetches the payment's current state from Stripe (its intent, with the charge and the balance transaction
expanded) rather than trusting the event's copy, so events may arrive in any order and any number of times: a
gift is recorded once its payment has succeeded, whichever event says so first, with the fee the balance
transaction holds (never computed here).

The signature is an HMAC of the timestamp and the raw body with the endpoint's secret (stripe-python's
``WebhookSignature`` checks it, and refuses a timestamp older than the tolerance: a replayed delivery). A timestamp
as far in the future is refused here too: no honest clock is five minutes ahead, and a signature made for later
would otherwise stay good for longer. Only a verified body is parsed.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import post_entry, reverse_entry
from ledger.core.errors import ChannelUnavailable, EventMalformed, SignatureInvalid
from ledger.core.money import Money
from ledger.core.recipes import Particulars, payout
from ledger.core.vocabulary import EventStatus, GiftStatus
from ledger.db.models import Entry, OnlineGift, ProcessorEvent
from ledger.giving.refunds import refund_donation
from ledger.payments.events import ArrivedEvent, store_event
from ledger.payments.gifts import Payment, gift_by_token, gift_ended, gift_paid

log = logging.getLogger(__name__)

CHANNEL = "stripe"
GIFT_KEY = "fundledger_gift"  # the metadata key that names a gift (its token) on a session and its payment
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


@dataclass(frozen=True, slots=True)
class StripeAccount:
    """The organisation's Stripe account: its secret key, and (for a stand-in in tests) the API's address."""

    secret_key: str
    api_base: str | None = None

    def client(self) -> stripe.StripeClient:
        return _client(self.secret_key, self.api_base)


@functools.lru_cache(maxsize=16)
def _client(secret_key: str, api_base: str | None) -> stripe.StripeClient:
    """One client per account and process: it keeps its HTTP connections open (a new client per event cost a
    connection per call). stripe-python keeps its HTTP session per thread."""
    addresses = {"base_addresses": {"api": api_base}} if api_base else {}
    return stripe.StripeClient(secret_key, max_network_retries=2, **addresses)


def start_checkout(account: StripeAccount, gift: OnlineGift, fund_name: str, success_url: str,
                   cancel_url: str) -> str:
    """A Stripe Checkout Session for the gift (``submit_type=donate``), naming the gift in its metadata and its
    payment's; the address to send the donor to. The idempotency key is the gift's own, so a retry (a double
    click, a timeout) gets the same session back rather than a second payment."""
    try:
        return _checkout_session(account, gift, fund_name, success_url, cancel_url).url
    except stripe.StripeError as error:
        log.warning("stripe refused or could not take the checkout of gift %s: %s", gift.id, error)
        raise ChannelUnavailable("Stripe could not start the payment; nothing was charged") from None


def _checkout_session(account: StripeAccount, gift: OnlineGift, fund_name: str, success_url: str,
                      cancel_url: str):
    return account.client().v1.checkout.sessions.create(params={
        "mode": "payment", "submit_type": "donate", "customer_email": gift.donor_email,
        "client_reference_id": gift.token,
        "line_items": [{"quantity": 1, "price_data": {
            "currency": gift.currency.lower(), "unit_amount": gift.amount_minor, "product_data": {"name": fund_name}}}],
        "metadata": {GIFT_KEY: gift.token}, "payment_intent_data": {"metadata": {GIFT_KEY: gift.token}},
        "success_url": success_url, "cancel_url": cancel_url,
    }, options={"idempotency_key": f"fundledger-gift-{gift.token}"})


def apply_event(session: Session, account: StripeAccount, stored: ProcessorEvent) -> str:
    """Applies a stored event to the books, idempotently; its new status. Every event about a payment (Checkout's,
    the intent's, a refund) leads to the same step, which reads the payment's current state at Stripe and brings
    the books to it (``_settle_payment``): so events may come in any order. Kinds whose handling is not built yet
    stay ``received``, for a replay."""
    event = json.loads(stored.payload)
    found, kind = event["data"]["object"], event["type"]
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                "payment_intent.succeeded"):
        if _recorded_already(session, found):  # (its refunds come with charge.refunded: nothing to ask Stripe)
            return EventStatus.APPLIED
        intent_id = found["id"] if kind == "payment_intent.succeeded" else found.get("payment_intent")
        return _settle_payment(session, account, intent_id)
    if kind == "charge.refunded":
        return _settle_payment(session, account, found.get("payment_intent"))
    if kind in ("payout.paid", "payout.failed"):
        return _settle_payout(session, account, found, failed=kind == "payout.failed")
    if kind in ("checkout.session.async_payment_failed", "checkout.session.expired"):
        token = (found.get("metadata") or {}).get(GIFT_KEY)
        if token is None:
            return EventStatus.IGNORED
        gift_ended(session, token, GiftStatus.FAILED if kind.endswith("failed") else GiftStatus.EXPIRED)
        return EventStatus.APPLIED
    return EventStatus.RECEIVED


def _recorded_already(session: Session, found: dict) -> bool:
    """Whether the gift the event's (signed) metadata names is already recorded: a payment's second event."""
    token = (found.get("metadata") or {}).get(GIFT_KEY)
    gift = session.scalars(select(OnlineGift).where(OnlineGift.token == token)).first() if token else None
    return gift is not None and gift.status == GiftStatus.SUCCEEDED


def _settle_payment(session: Session, account: StripeAccount, intent_id: str | None) -> str:
    """Brings the books to the payment's state at Stripe: the gift recorded once the payment has succeeded, with
    the fee its balance transaction holds; then each refund Stripe has made of it, once."""
    if not intent_id:
        return EventStatus.IGNORED  # (a session not yet paid has no payment)
    intent = account.client().v1.payment_intents.retrieve(
        intent_id, params={"expand": ["latest_charge.balance_transaction"]})
    token = intent.metadata.to_dict().get(GIFT_KEY) if intent.metadata else None
    if token is None:  # a payment not started from a donation page of this ledger
        return EventStatus.IGNORED
    gift_by_token(session, token)  # (a token of no gift here: NotFound, and the event is kept as failed)
    if intent.status != "succeeded" or intent.latest_charge is None:
        return EventStatus.APPLIED  # not paid yet: a later event says when
    charge = intent.latest_charge
    gift = gift_paid(session, token, _payment(intent, charge), recorded_by="stripe")
    if gift.status == GiftStatus.SUCCEEDED and charge.amount_refunded:
        _record_refunds(session, account, gift, charge.id)
    return EventStatus.APPLIED


def _payment(intent, charge) -> Payment:
    transaction = charge.balance_transaction
    paid_on = dt.datetime.fromtimestamp(charge.created, dt.UTC).date()
    problem = "" if transaction.currency == intent.currency else (
        f"settled in {transaction.currency.upper()}: its fee in {intent.currency.upper()} needs the balance "
        "transaction's exchange rate, which the ledger does not apply yet")
    return Payment(intent.id, intent.amount_received, intent.currency.upper(), 0 if problem else transaction.fee,
                   paid_on, problem)


def _record_refunds(session: Session, account: StripeAccount, gift: OnlineGift, charge_id: str) -> None:
    """Each succeeded refund of the charge, recorded once (its Stripe id is the refund's idempotency key)."""
    for found in account.client().v1.refunds.list(params={"charge": charge_id, "limit": 100}).auto_paging_iter():
        if found.status == "succeeded":
            refund_donation(session, gift.organisation_id, gift.donation_id, amount_minor=found.amount,
                            refunded_on=dt.datetime.fromtimestamp(found.created, dt.UTC).date(),
                            reason=f"Stripe refund {found.id}", idempotency_key=f"stripe-refund-{found.id}",
                            recorded_by="stripe")


def _settle_payout(session: Session, account: StripeAccount, found: dict, *, failed: bool) -> str:
    """A payout paid: each fund's share of it (the net of its gifts' charges and refunds among the payout's balance
    transactions, each gift recorded first if its own events have not come yet) moves from the processor clearing
    account to the bank, one entry per fund, once. A payout that failed after it was paid: those entries reversed."""
    payout_id = found["id"]
    arrived = dt.datetime.fromtimestamp(found["arrival_date"], dt.UTC).date()
    shares, unexplained = _payout_shares(session, account, payout_id)
    if unexplained:
        log.warning("stripe payout %s: %s minor units of its balance transactions belong to no gift of this ledger",
                    payout_id, unexplained)
    for (organisation_id, fund_id, currency), net in sorted(shares.items()):
        key = f"stripe-payout-{payout_id}-{fund_id}"
        if failed:
            _reverse_if_posted(session, organisation_id, key)
        elif net > 0:
            post_entry(session, payout(load_chart(session, organisation_id), fund_id, Money(net, currency),
                                       Particulars(arrived, key, "stripe", f"Stripe payout {payout_id}")))
    return EventStatus.APPLIED


def _payout_shares(session: Session, account: StripeAccount, payout_id: str) -> tuple[dict, int]:
    shares: dict[tuple, int] = {}
    unexplained = 0
    listing = account.client().v1.balance_transactions.list(
        params={"payout": payout_id, "limit": 100, "expand": ["data.source"]})
    for transaction in listing.auto_paging_iter():
        if transaction.type == "payout":
            continue
        source = transaction.source
        intent_id = getattr(source, "payment_intent", None) if source is not None else None
        if intent_id and not isinstance(intent_id, str):
            intent_id = intent_id.id
        gift = _recorded_gift(session, account, intent_id) if intent_id else None
        if gift is None or transaction.currency.upper() != gift.currency:
            unexplained += transaction.net
            continue
        key = (gift.organisation_id, gift.fund_id, gift.currency)
        shares[key] = shares.get(key, 0) + transaction.net
    return shares, unexplained


def _recorded_gift(session: Session, account: StripeAccount, intent_id: str) -> OnlineGift | None:
    """The gift a payment paid, recorded first if its own events have not come yet (any order)."""
    _settle_payment(session, account, intent_id)
    return session.scalars(select(OnlineGift).where(OnlineGift.payment_id == intent_id,
                                                    OnlineGift.donation_id.is_not(None))).first()


def _reverse_if_posted(session: Session, organisation_id: int, key: str) -> None:
    entry_id = session.scalar(select(Entry.id).where(Entry.organisation_id == organisation_id,
                                                     Entry.idempotency_key == key))
    if entry_id is not None:
        reverse_entry(session, organisation_id, entry_id, idempotency_key=f"{key}-failed", recorded_by="stripe",
                      description="Stripe payout failed: the money is back at Stripe")


def events_since(account: StripeAccount, since: dt.datetime) -> list[ArrivedEvent]:
    """Stripe's events of the kinds the ledger acts on, created since ``since`` (Stripe keeps 30 days of them), as
    its API lists them (newest first: the order does not matter, see ``apply_event``)."""
    listing = account.client().v1.events.list(params={
        "created": {"gte": int(since.timestamp())}, "types": sorted(HANDLED), "limit": 100})
    return [ArrivedEvent(CHANNEL, event.id, event.type, bool(event.livemode),
                         # (stripe-python reads Stripe's decimal strings as Decimal: written back as the same text)
                         dt.datetime.fromtimestamp(event.created, dt.UTC), json.dumps(event.to_dict(), default=str))
            for event in listing.auto_paging_iter()]


def replay(database, account: StripeAccount, events: Iterable[ArrivedEvent]) -> Counter:
    """Feeds events fetched from Stripe through the same steps as a delivery: stored once (an event the webhook
    already stored is known), then applied if it has not been. Counts what happened."""
    counts: Counter = Counter()
    for event in events:
        stored, fresh = database.write(lambda session, event=event: store_event(session, event, HANDLED))
        counts["stored" if fresh else "known"] += 1
        status = stored.status
        if status in (EventStatus.RECEIVED, EventStatus.FAILED):
            status = apply_stored(database, account, stored.id)
        counts[status] += 1
    return counts


def apply_stored(database, account: StripeAccount, event_row_id: int) -> str:
    """Applies a stored event in a transaction of its own (its row locked: two deliveries apply it once), and
    keeps its outcome on the row; a failure (Stripe unreachable, a gift unknown) is kept as ``failed``, to be
    applied again by a later delivery or a replay."""
    def apply(session: Session) -> str:
        stored = session.get(ProcessorEvent, event_row_id, with_for_update=True, populate_existing=True)
        if stored.status in (EventStatus.RECEIVED, EventStatus.FAILED):
            stored.status = apply_event(session, account, stored)
        return stored.status

    try:
        return database.write(apply)
    except Exception:
        log.exception("stripe event %s could not be applied; kept as failed", event_row_id)
        database.write(lambda session: _mark_failed(session, event_row_id))
        return EventStatus.FAILED


def _mark_failed(session: Session, event_row_id: int) -> None:
    stored = session.get(ProcessorEvent, event_row_id, with_for_update=True)
    if stored.status == EventStatus.RECEIVED:
        stored.status = EventStatus.FAILED
