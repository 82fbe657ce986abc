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
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import post_entry, reverse_entry
from ledger.core.errors import ChannelUnavailable, EventMalformed, InvalidState, NotFound, SignatureInvalid
from ledger.core.money import Money
from ledger.core.recipes import Particulars, payout, payout_netted, processor_fee, processor_fee_returned
from ledger.core.vocabulary import EventStatus, GiftStatus
from ledger.db.models import Entry, OnlineGift, ProcessorEvent, Refund
from ledger.giving.refunds import cancel_refund, refund_donation
from ledger.payments.events import ArrivedEvent, store_event
from ledger.payments.gifts import Payment, gift_by_token, gift_ended, gift_paid, instalment, monthly_cancelled

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
    "charge.refunded", "charge.dispute.created", "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated", "charge.dispute.closed",
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
    price = {"currency": gift.currency.lower(), "unit_amount": gift.amount_minor, "product_data": {"name": fund_name}}
    named = {"metadata": {GIFT_KEY: gift.token}}
    if gift.monthly:  # a subscription: its invoices carry the plan's name (each month's payment a gift of its own)
        shape = {"mode": "subscription", "subscription_data": named,
                 "line_items": [{"quantity": 1, "price_data": {**price, "recurring": {"interval": "month"}}}]}
    else:
        shape = {"mode": "payment", "submit_type": "donate", "payment_intent_data": named,
                 "line_items": [{"quantity": 1, "price_data": price}]}
    return account.client().v1.checkout.sessions.create(params={
        **shape, "customer_email": gift.donor_email, "client_reference_id": gift.token, **named,
        "success_url": success_url, "cancel_url": cancel_url,
    }, options={"idempotency_key": f"fundledger-gift-{gift.token}"})


def apply_event(session: Session, account: StripeAccount, stored: ProcessorEvent) -> str:
    """Applies a stored event to the books, idempotently; its new status. Every event about a payment (Checkout's,
    the intent's, an invoice's, a refund, a dispute) leads to a step that reads the payment's current state at
    Stripe and brings the books to it: so events may come in any order."""
    event = json.loads(stored.payload)
    found, kind = event["data"]["object"], event["type"]
    if kind == "checkout.session.completed" and found.get("mode") == "subscription":
        return _settle_invoice(session, account, found.get("invoice"))
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                "payment_intent.succeeded"):
        if _recorded_already(session, found):  # (its refunds come with charge.refunded: nothing to ask Stripe)
            return EventStatus.APPLIED
        intent_id = found["id"] if kind == "payment_intent.succeeded" else found.get("payment_intent")
        return _settle_payment(session, account, intent_id)
    if kind == "charge.refunded":
        return _settle_payment(session, account, found.get("payment_intent"))
    if kind.startswith("charge.dispute."):
        return _settle_dispute(session, account, found["id"])
    if kind == "invoice.paid":
        return _settle_invoice(session, account, found["id"])
    if kind == "customer.subscription.deleted":
        return _plan_ended(session, found)
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


def _settle_payment(session: Session, account: StripeAccount, intent_id: str | None,
                    token: str | None = None) -> str:
    """Brings the books to the payment's state at Stripe: the gift (``token``, else the one the payment names or
    paid) recorded once the payment has succeeded, with the fee its balance transaction holds; then each refund
    Stripe has made of it, once."""
    if not intent_id:
        return EventStatus.IGNORED  # (a session not yet paid has no payment)
    intent = account.client().v1.payment_intents.retrieve(
        intent_id, params={"expand": ["latest_charge.balance_transaction"]})
    token = token or _gift_token_of(session, intent)
    if token is None:  # a payment not started from a donation page of this ledger (or a month not yet invoiced)
        return EventStatus.IGNORED
    gift_by_token(session, token)  # (a token of no gift here: NotFound, and the event is kept as failed)
    if intent.status != "succeeded" or intent.latest_charge is None:
        return EventStatus.APPLIED  # not paid yet: a later event says when
    charge = intent.latest_charge
    gift = gift_paid(session, token, _payment(intent, charge), recorded_by="stripe")
    if gift.status == GiftStatus.SUCCEEDED and charge.amount_refunded:
        _record_refunds(session, account, gift, charge.id)
    return EventStatus.APPLIED


def _gift_token_of(session: Session, intent) -> str | None:
    """The gift a payment is for: named in its metadata (a one-off gift), or the gift it already paid (a monthly
    gift's payment carries no metadata of ours: its invoice names the plan)."""
    token = intent.metadata.to_dict().get(GIFT_KEY) if intent.metadata else None
    return token or session.scalar(select(OnlineGift.token).where(OnlineGift.payment_id == intent.id))


def _settle_invoice(session: Session, account: StripeAccount, invoice_id: str | None) -> str:
    """A monthly gift's invoice, as Stripe holds it now: once paid, the month's gift is recorded from its payment
    (the first month's is the plan itself; each later one a gift of its own, once per invoice)."""
    if not invoice_id:
        return EventStatus.IGNORED
    invoice = account.client().v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]})
    subscription = _subscription_details(invoice)
    token = (subscription.get("metadata") or {}).get(GIFT_KEY)
    if token is None:
        return EventStatus.IGNORED  # an invoice of something else sold through this account
    plan = gift_by_token(session, token, for_update=True)
    if plan.subscription_id is None:
        plan.subscription_id = subscription.get("subscription")
    intent_id = _paid_intent(invoice)
    if invoice.status != "paid" or intent_id is None:
        return EventStatus.APPLIED  # not paid yet: invoice.paid says when
    if invoice.billing_reason == "subscription_create" or plan.invoice_id == invoice.id:
        plan.invoice_id = plan.invoice_id or invoice.id
        month = plan
    else:
        month = instalment(session, plan, invoice.id)
    return _settle_payment(session, account, intent_id, month.token)


def _subscription_details(invoice) -> dict:
    parent = invoice.parent.to_dict() if getattr(invoice, "parent", None) else {}
    return parent.get("subscription_details") or {}


def _paid_intent(invoice) -> str | None:
    """The payment intent that paid the invoice (the current API reaches it through the invoice's payments)."""
    payments = getattr(invoice, "payments", None)
    for found in (payments.data if payments else []):
        if found.status == "paid" and found.payment.type == "payment_intent":
            intent = found.payment.payment_intent
            return intent if isinstance(intent, str) else intent.id
    return None


def _plan_ended(session: Session, subscription: dict) -> str:
    """A monthly gift's subscription ended (cancelled by the donor, by the organisation at Stripe, or after failed
    payments): the plan is marked cancelled; what it paid stays recorded."""
    token = (subscription.get("metadata") or {}).get(GIFT_KEY) or session.scalar(
        select(OnlineGift.token).where(OnlineGift.subscription_id == subscription["id"], OnlineGift.plan_id.is_(None)))
    if token is None:
        return EventStatus.IGNORED
    monthly_cancelled(session, token)
    return EventStatus.APPLIED


def cancel_monthly(account: StripeAccount, plan: OnlineGift) -> None:
    """Asks Stripe to end the plan's subscription now (no later month is charged). Cancelling a subscription that
    has ended already is answered as done."""
    if plan.subscription_id is None:
        raise InvalidState("the first month's payment is not recorded yet: try again in a minute", field="gift")
    try:
        account.client().v1.subscriptions.cancel(plan.subscription_id)
    except stripe.InvalidRequestError as error:
        if "canceled" not in str(error):
            raise ChannelUnavailable("Stripe could not cancel the monthly gift; nothing changed") from None
    except stripe.StripeError:
        raise ChannelUnavailable("Stripe could not cancel the monthly gift; nothing changed") from None


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
                            reason=f"Stripe refund {found.id}", idempotency_key=refund_key(found.id),
                            recorded_by="stripe")


def _settle_dispute(session: Session, account: StripeAccount, dispute_id: str) -> str:
    """A dispute as Stripe holds it now, through its balance transactions (what was withdrawn, then reinstated,
    each with its fee): the disputed money is refunded from the gift when withdrawn (a refund record, so the gift's
    refunded total and its receipt show it), that refund cancelled when the dispute is won and the money comes back;
    the dispute fee a processing cost, and returned if Stripe returns it. A dispute lost leaves the refund."""
    dispute = account.client().v1.disputes.retrieve(dispute_id)
    intent_id = _intent_of(account, dispute)
    gift = _recorded_gift(session, account, intent_id) if intent_id else None
    if gift is None:  # a payment of something else, or a gift set aside for review: nothing of it is posted
        return EventStatus.IGNORED
    for transaction in sorted(dispute.balance_transactions or [], key=lambda found: found.created):
        _dispute_movement(session, gift, dispute.id, transaction)
    return EventStatus.APPLIED


def _intent_of(account: StripeAccount, found) -> str | None:
    """The payment intent a dispute (or a balance transaction's source) concerns, through its charge if need be."""
    intent = getattr(found, "payment_intent", None)
    charge = getattr(found, "charge", None)
    if intent is None and getattr(found, "object", None) == "dispute" and charge:
        intent = account.client().v1.charges.retrieve(charge if isinstance(charge, str) else charge.id).payment_intent
    return intent if intent is None or isinstance(intent, str) else intent.id


def _dispute_movement(session: Session, gift: OnlineGift, dispute_id: str, transaction) -> None:
    if transaction.currency.upper() != gift.currency:
        raise InvalidState(f"dispute {dispute_id} was settled in {transaction.currency.upper()}, the gift in "
                           f"{gift.currency}: a manager records it by hand", field="dispute")
    day = dt.datetime.fromtimestamp(transaction.created, dt.UTC).date()
    withdrawn = dispute_key(dispute_id)
    if transaction.amount < 0 and _refund_keyed(session, gift, withdrawn) is None:
        refund_donation(session, gift.organisation_id, gift.donation_id, amount_minor=-transaction.amount,
                        refunded_on=day, reason=f"Stripe dispute {dispute_id}: the donor's bank took the gift back",
                        idempotency_key=withdrawn, recorded_by="stripe")
    elif transaction.amount > 0:
        _reinstated(session, gift, withdrawn, day, dispute_id)
    if transaction.fee:
        recipe = processor_fee if transaction.fee > 0 else processor_fee_returned
        verb = "charged" if transaction.fee > 0 else "returned"
        post_entry(session, recipe(load_chart(session, gift.organisation_id), gift.fund_id,
                                   Money(abs(transaction.fee), gift.currency),
                                   Particulars(day, dispute_fee_key(transaction.id), "stripe",
                                               f"Stripe dispute fee {verb}, dispute {dispute_id}")))


def _refund_keyed(session: Session, gift: OnlineGift, key: str) -> Refund | None:
    return session.scalars(select(Refund).join(Entry, Entry.id == Refund.entry_id).where(
        Entry.organisation_id == gift.organisation_id, Entry.idempotency_key == key)).first()


def _reinstated(session: Session, gift: OnlineGift, withdrawn_key: str, day: dt.date, dispute_id: str) -> None:
    """The dispute is won: the refund its withdrawal recorded is cancelled (once), the gift whole again."""
    refund = _refund_keyed(session, gift, withdrawn_key)
    if refund is None:
        raise InvalidState(f"dispute {dispute_id} reinstates money whose withdrawal is not recorded", field="dispute")
    if refund.cancelled_entry_id is None:
        cancel_refund(session, gift.organisation_id, gift.donation_id, refund.id, cancelled_on=day,
                      reason=f"Stripe dispute {dispute_id} won: the money was reinstated",
                      idempotency_key=f"{withdrawn_key}-won", recorded_by="stripe")


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
        key = payout_key(payout_id, fund_id)
        if failed:
            _reverse_if_posted(session, organisation_id, key)
        elif net:  # (below zero: the fund owed Stripe more than its gifts brought, netted out of the payout)
            recipe = payout if net > 0 else payout_netted
            post_entry(session, recipe(load_chart(session, organisation_id), fund_id, Money(abs(net), currency),
                                       Particulars(arrived, key, "stripe", f"Stripe payout {payout_id}")))
    return EventStatus.APPLIED


def _payout_shares(session: Session, account: StripeAccount, payout_id: str) -> tuple[dict, int]:
    shares: dict[tuple, int] = {}
    unexplained = 0
    for transaction in payout_transactions(account, payout_id):
        gift = _recorded_gift(session, account, transaction.intent_id) if transaction.intent_id else None
        if gift is None or transaction.currency != gift.currency:
            unexplained += transaction.net_minor
            continue
        key = (gift.organisation_id, gift.fund_id, gift.currency)
        shares[key] = shares.get(key, 0) + transaction.net_minor
    return shares, unexplained


@dataclass(frozen=True, slots=True)
class Payout:
    """A payout as Stripe holds it (its currency upper-case, as the ledger writes currencies)."""

    id: str
    amount_minor: int
    currency: str
    arrival_date: dt.date
    status: str  # paid, pending, in_transit, canceled, failed


@dataclass(frozen=True, slots=True)
class BalanceTransaction:
    """One of a payout's balance transactions: what moved (``amount``), Stripe's fee, the net paid out, and what
    it came from (``source_kind``: charge, refund, dispute…; ``intent_id``: the payment it concerns, if any)."""

    id: str
    type: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    source_id: str | None
    source_kind: str | None
    intent_id: str | None


PAYOUT_ID = re.compile(r"po_[A-Za-z0-9]{1,250}")


def payout_of(account: StripeAccount, payout_id: str) -> Payout:
    """The payout, read from Stripe; unknown there (or of another account) is not found, naming ``payout_id``."""
    if not PAYOUT_ID.fullmatch(payout_id):
        raise NotFound("is not a Stripe payout's id (po_…)", field="payout_id")
    try:
        found = account.client().v1.payouts.retrieve(payout_id)
    except stripe.InvalidRequestError:
        raise NotFound("is no payout of this Stripe account", field="payout_id") from None
    except stripe.StripeError as error:
        log.warning("stripe could not answer for payout %s: %s", payout_id, error)
        raise ChannelUnavailable("Stripe could not be asked for the payout; try again later") from None
    return Payout(found.id, found.amount, found.currency.upper(),
                  dt.datetime.fromtimestamp(found.arrival_date, dt.UTC).date(), found.status)


def payout_transactions(account: StripeAccount, payout_id: str) -> list[BalanceTransaction]:
    """The balance transactions a payout paid out (its own, of type payout, left out), each with the payment its
    source concerns."""
    try:
        listing = account.client().v1.balance_transactions.list(
            params={"payout": payout_id, "limit": 100, "expand": ["data.source"]})
        return [_balance_transaction(account, found) for found in listing.auto_paging_iter() if found.type != "payout"]
    except stripe.StripeError as error:
        log.warning("stripe could not list the transactions of payout %s: %s", payout_id, error)
        raise ChannelUnavailable("Stripe could not list the payout's transactions; try again later") from None


def _balance_transaction(account: StripeAccount, found) -> BalanceTransaction:
    source = found.source if found.source is not None and not isinstance(found.source, str) else None
    return BalanceTransaction(
        found.id, found.type, found.amount, found.fee, found.net, found.currency.upper(),
        source.id if source is not None else found.source, getattr(source, "object", None),
        _intent_of(account, source) if source is not None else None)


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


def refund_key(refund_id: str) -> str:
    """The idempotency key of the ledger's refund for a refund made at Stripe."""
    return f"stripe-refund-{refund_id}"


def dispute_key(dispute_id: str) -> str:
    """The key of the refund a dispute's withdrawal recorded (``-won`` after it: its cancellation)."""
    return f"stripe-dispute-{dispute_id}"


def dispute_fee_key(transaction_id: str) -> str:
    return f"stripe-dispute-fee-{transaction_id}"


def payout_key(payout_id: str, fund_id: int | None = None) -> str:
    """The key of a fund's share of a payout (``-failed`` after it: its reversal); without a fund, the start of
    every fund's."""
    return f"stripe-payout-{payout_id}-{'' if fund_id is None else fund_id}"


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
