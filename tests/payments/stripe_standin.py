"""A stand-in for the few Stripe API calls the Stripe channel makes, for tests that cannot reach Stripe.

localstripe (a maintained, stateful fake on PyPI) has no Checkout Sessions and no fees, which are exactly what this
channel needs, so this serves them itself: Checkout Sessions created and read, and payment intents read with
their charge and balance transaction expanded, every object copied from Stripe's own samples
(``stripe_objects.json``, from Stripe's OpenAPI fixtures) and given this test's values. It keeps every request
(method, path, form, idempotency key) for tests to assert on, and lets a test play the donor: ``pay`` a session
(the payment intent succeeds, with a charge and a balance transaction holding Stripe's fee) or ``expire`` it.
stripe-python's own client talks to it over HTTP (``StripeClient(..., base_addresses=...)``).
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SAMPLES = json.loads((Path(__file__).parent / "stripe_objects.json").read_text())


def sample(kind: str, **values) -> dict:
    """A copy of Stripe's sample object of this kind, with a fresh id and these values."""
    prefix = {"checkout.session": "cs_test", "payment_intent": "pi", "charge": "ch", "balance_transaction": "txn",
              "event": "evt", "refund": "re", "payout": "po", "dispute": "dp", "invoice": "in",
              "subscription": "sub"}[kind]
    return {**copy.deepcopy(SAMPLES[kind]), "id": f"{prefix}_{uuid.uuid4().hex[:24]}", "created": int(time.time()),
            **values}


def _nested(form: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (``a[b][0][c]=…``) back into nested dicts (a list's items keyed "0", "1", …)."""
    tree: dict = {}
    for key, value in form:
        *path, last = key.replace("]", "").split("[")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


@dataclass
class StripeStandIn:
    sessions: dict[str, dict] = field(default_factory=dict)
    intents: dict[str, dict] = field(default_factory=dict)
    charges: dict[str, dict] = field(default_factory=dict)
    balance_transactions: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    disputes: dict[str, dict] = field(default_factory=dict)
    subscriptions: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    payouts: dict[str, dict] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    by_idempotency_key: dict[str, dict] = field(default_factory=dict)
    url: str = ""
    # Where to send signed events (Stripe sends them to the endpoint registered with it): the hosted page's.
    webhook_url: str = ""
    webhook_secret: str = ""
    fee_basis_points: int = 340

    def __call__(self, environ, start_response):
        request = Request(environ)
        form = _nested(parse_qsl(request.get_data(as_text=True))) if request.method == "POST" else {}
        key = request.headers.get("Idempotency-Key")
        self.requests.append({"method": request.method, "path": request.path, "form": form,
                              "idempotency_key": key, "args": request.args.to_dict(flat=False)})
        answer = self._answer(request, form, key)
        if isinstance(answer, Response):
            return answer(environ, start_response)
        status = 404 if answer is None else 200
        body = answer if answer is not None else {"error": {"type": "invalid_request_error", "message": "no such"}}
        return Response(json.dumps(body), status=status, mimetype="application/json")(environ, start_response)

    def _answer(self, request: Request, form: dict, key: str | None) -> dict | Response | None:
        parts = request.path.strip("/").split("/")
        if parts == ["favicon.ico"]:
            return Response(status=204)
        if parts[0] == "pay" and len(parts) == 2 and parts[1] in self.sessions:
            return self._hosted_page(request, parts[1])
        if request.method == "POST" and parts == ["v1", "checkout", "sessions"]:
            if key in self.by_idempotency_key:  # Stripe answers a retried key with the first answer
                return self.by_idempotency_key[key]
            self.by_idempotency_key[key] = self._create_session(form)
            return self.by_idempotency_key[key]
        if request.method == "GET" and parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 4:
            return self.sessions.get(parts[3])
        if request.method == "GET" and parts == ["v1", "events"]:
            since = int(request.args.get("created[gte]", 0))
            types = {value for key, value in request.args.items(multi=True) if key.startswith("types")}
            found = [event for event in reversed(self.events) if event["created"] >= since and event["type"] in types]
            return {"object": "list", "url": "/v1/events", "has_more": False, "data": found}
        if request.method == "GET" and parts == ["v1", "balance_transactions"]:
            payout = request.args.get("payout")
            found = [self._with_source(txn) for txn in self.balance_transactions.values()
                     if txn.get("payout") == payout]
            return {"object": "list", "url": "/v1/balance_transactions", "has_more": False, "data": found}
        if request.method == "GET" and parts == ["v1", "refunds"]:
            charge = request.args.get("charge")
            return {"object": "list", "url": "/v1/refunds", "has_more": False,
                    "data": [refund for refund in self.refunds.values() if refund["charge"] == charge]}
        if request.method == "GET" and parts[:2] == ["v1", "invoices"] and len(parts) == 3:
            return self._invoice(parts[2], expand=[value for key, value in request.args.items(multi=True)
                                                   if key.startswith("expand")])
        if request.method == "GET" and len(parts) == 3 and parts[1] in ("disputes", "charges", "payouts"):
            return copy.deepcopy(getattr(self, parts[1]).get(parts[2]))
        if request.method == "DELETE" and parts[:2] == ["v1", "subscriptions"] and len(parts) == 3:
            return self._cancel(parts[2])
        if request.method == "GET" and parts[:2] == ["v1", "payment_intents"] and len(parts) == 3:
            expand = [value for key, value in request.args.items(multi=True) if key.startswith("expand")]
            return self._expanded_intent(parts[2], expand)
        return None

    def _hosted_page(self, request: Request, session_id: str) -> Response:
        """Stripe's hosted checkout, as far as a test needs it: a page with a pay button; paying marks the
        session paid (with a fee of ``fee_basis_points``), sends the signed ``checkout.session.completed`` event to
        the webhook, as Stripe does, and sends the donor back to the success URL."""
        session = self.sessions[session_id]
        if request.method == "GET":
            page = (f"<!doctype html><title>Stand-in checkout</title><h1>Stand-in for Stripe Checkout</h1>"
                    f"<p>{session['amount_total']} {session['currency']}</p><form method=post>"
                    f"<button type=submit>Pay</button></form>")
            return Response(page, mimetype="text/html")
        fee = (session["amount_total"] * self.fee_basis_points + 5_000) // 10_000
        self.send(self.event("checkout.session.completed", self.pay(session_id, fee=fee)))
        return Response(status=303, headers={"Location": session["success_url"]})

    def send(self, event: dict) -> int:
        """Delivers a recorded event to the webhook, signed as Stripe signs it; the answer's status."""
        body = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(body, self.webhook_secret)
        request = urllib.request.Request(self.webhook_url, data=body.encode(), method="POST", headers={
            "Stripe-Signature": header, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status

    def _create_session(self, form: dict) -> dict:
        item = form["line_items"]["0"]
        amount, currency = int(item["price_data"]["unit_amount"]), item["price_data"]["currency"]
        intent_id = None
        if form["mode"] == "payment":
            intent = self._intent(amount, currency, form.get("payment_intent_data", {}).get("metadata", {}))
            intent_id = intent["id"]
        session = sample("checkout.session", mode=form["mode"], submit_type=form.get("submit_type"),
                         amount_total=amount, currency=currency, metadata=form.get("metadata", {}),
                         client_reference_id=form.get("client_reference_id"),
                         customer_email=form.get("customer_email"), payment_intent=intent_id,
                         subscription=None, invoice=None, payment_status="unpaid", status="open",
                         success_url=form["success_url"], cancel_url=form["cancel_url"])
        session["url"] = f"{self.url}/pay/{session['id']}"
        session["_subscription_data"] = form.get("subscription_data", {})  # (kept for ``pay``; not Stripe's)
        self.sessions[session["id"]] = session
        return session

    def _intent(self, amount: int, currency: str, metadata: dict) -> dict:
        intent = sample("payment_intent", amount=amount, amount_received=0, currency=currency,
                        status="requires_payment_method", latest_charge=None, metadata=metadata)
        self.intents[intent["id"]] = intent
        return intent

    def _expanded_intent(self, intent_id: str, expand: list[str]) -> dict | None:
        intent = copy.deepcopy(self.intents.get(intent_id))
        if intent and intent.get("latest_charge") and "latest_charge.balance_transaction" in expand:
            charge = copy.deepcopy(self.charges[intent["latest_charge"]])
            charge["balance_transaction"] = self.balance_transactions[charge["balance_transaction"]]
            intent["latest_charge"] = charge
        return intent

    def pay(self, session_id: str, fee: int, *, paid: int | None = None, settled_in: str | None = None) -> dict:
        """The donor pays: the intent succeeds with a charge whose balance transaction holds Stripe's fee. A
        subscription's session starts the subscription, whose first invoice that payment pays."""
        session = self.sessions[session_id]
        amount = session["amount_total"] if paid is None else paid
        if session["mode"] == "subscription":
            subscription = sample("subscription", status="active", customer="cus_standin",
                                  metadata=session["_subscription_data"].get("metadata", {}))
            self.subscriptions[subscription["id"]] = subscription
            invoice = self.invoice(subscription["id"], fee, amount=amount, first=True, currency=session["currency"])
            session.update(subscription=subscription["id"], invoice=invoice["id"], payment_status="paid",
                           status="complete")
            return session
        intent = self.intents[session["payment_intent"]]
        self._charge(intent, amount, fee, settled_in or session["currency"])
        session.update(payment_status="paid", status="complete")
        return session

    def _charge(self, intent: dict, amount: int, fee: int, settled_in: str) -> dict:
        transaction = sample("balance_transaction", amount=amount, fee=fee, net=amount - fee, currency=settled_in,
                             type="charge")
        charge = sample("charge", amount=amount, currency=intent["currency"], payment_intent=intent["id"],
                        balance_transaction=transaction["id"], paid=True, status="succeeded", amount_refunded=0,
                        refunded=False, disputed=False)
        transaction["source"] = charge["id"]
        self.balance_transactions[transaction["id"]] = transaction
        self.charges[charge["id"]] = charge
        intent.update(status="succeeded", amount_received=amount, latest_charge=charge["id"])
        return charge

    def invoice(self, subscription_id: str, fee: int, *, amount: int | None = None, first: bool = False,
                currency: str | None = None) -> dict:
        """A month of a subscription invoiced and paid (its own payment intent, which carries no metadata, as
        Stripe's invoice payments do not): the invoice, as ``invoice.paid`` carries it."""
        subscription = self.subscriptions[subscription_id]
        earlier = [found for found in self.invoices.values() if found["_subscription"] == subscription_id]
        amount = amount if amount is not None else earlier[0]["amount_paid"]
        currency = currency or earlier[0]["currency"]
        intent = self._intent(amount, currency, {})
        self._charge(intent, amount, fee, currency)
        invoice = sample("invoice", status="paid", amount_paid=amount, amount_due=amount, currency=currency,
                         billing_reason="subscription_create" if first else "subscription_cycle",
                         customer=subscription["customer"], subscription=None, lines={"object": "list", "data": []},
                         parent={"type": "subscription_details", "quote_details": None, "subscription_details": {
                             "subscription": subscription_id, "metadata": copy.deepcopy(subscription["metadata"])}})
        invoice["_subscription"] = subscription_id  # (kept for the stand-in; not Stripe's)
        invoice["_payments"] = {"object": "list", "has_more": False, "url": "/v1/invoice_payments", "data": [{
            "object": "invoice_payment", "id": f"inpay_{uuid.uuid4().hex[:24]}", "invoice": invoice["id"],
            "status": "paid", "amount_paid": amount, "currency": currency, "is_default": True,
            "payment": {"type": "payment_intent", "payment_intent": intent["id"]}}]}
        self.invoices[invoice["id"]] = invoice
        return self._invoice(invoice["id"], expand=[])

    def _invoice(self, invoice_id: str, expand: list[str]) -> dict | None:
        found = self.invoices.get(invoice_id)
        if found is None:
            return None
        shown = {key: copy.deepcopy(value) for key, value in found.items() if not key.startswith("_")}
        if "payments" in expand:  # (not in an invoice unless asked for, as at Stripe)
            shown["payments"] = copy.deepcopy(found["_payments"])
        return shown

    def _cancel(self, subscription_id: str) -> dict | Response | None:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return None
        if subscription["status"] == "canceled":
            return Response(json.dumps({"error": {"type": "invalid_request_error", "message":
                            "This subscription has already been canceled."}}), status=400,
                            mimetype="application/json")
        subscription.update(status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()))
        return copy.deepcopy(subscription)

    def dispute(self, session_id: str, fee: int = 1_500, *, invoice_id: str | None = None) -> dict:
        """The donor's bank disputes the charge: its amount and Stripe's dispute fee are withdrawn (a balance
        transaction on the dispute). The dispute, as ``charge.dispute.created`` carries it."""
        intent_id = self.invoices[invoice_id]["_payments"]["data"][0]["payment"]["payment_intent"] if invoice_id \
            else self.sessions[session_id]["payment_intent"]
        charge = self.charges[self.intents[intent_id]["latest_charge"]]
        amount = charge["amount"] - charge["amount_refunded"]
        dispute = sample("dispute", amount=amount, currency=charge["currency"], charge=charge["id"],
                         payment_intent=intent_id, status="needs_response", balance_transactions=[])
        dispute["balance_transactions"].append(self._dispute_transaction(dispute, -amount, fee, "dispute"))
        charge["disputed"] = True
        self.disputes[dispute["id"]] = dispute
        return copy.deepcopy(dispute)

    def close_dispute(self, dispute_id: str, *, won: bool, fee_returned: int = 0) -> dict:
        """The dispute closes: won (the amount reinstated, and the fee if ``fee_returned``) or lost."""
        dispute = self.disputes[dispute_id]
        dispute["status"] = "won" if won else "lost"
        if won:
            dispute["balance_transactions"].append(
                self._dispute_transaction(dispute, dispute["amount"], -fee_returned, "dispute_reversal"))
        return copy.deepcopy(dispute)

    def _dispute_transaction(self, dispute: dict, amount: int, fee: int, category: str) -> dict:
        transaction = sample("balance_transaction", amount=amount, fee=fee, net=amount - fee,
                             currency=dispute["currency"], type="adjustment", reporting_category=category,
                             source=dispute["id"], created=int(time.time()) + len(dispute["balance_transactions"]))
        self.balance_transactions[transaction["id"]] = transaction
        return transaction

    def _with_source(self, transaction: dict) -> dict:
        """A balance transaction with its source expanded (``expand[]=data.source``)."""
        source = self.charges.get(transaction["source"]) or self.refunds.get(transaction["source"] or "") or \
            self.disputes.get(transaction["source"] or "")
        return {**transaction, "source": copy.deepcopy(source) if source else transaction["source"]}

    def payout(self, session_ids: list[str], extra: int = 0) -> dict:
        """Stripe pays the balance out: the sessions' charges (and their refunds) and ``extra`` minor units of
        something that is no gift of the ledger's, each balance transaction marked with the payout."""
        payout = sample("payout", currency=self.sessions[session_ids[0]]["currency"], status="paid",
                        arrival_date=int(time.time()))
        total = 0
        for session_id in session_ids:
            intent = self.intents[self.sessions[session_id]["payment_intent"]]
            charge_txn = self.balance_transactions[self.charges[intent["latest_charge"]]["balance_transaction"]]
            charge_txn["payout"] = payout["id"]
            total += charge_txn["net"]
            for dispute in self.disputes.values():
                if dispute["payment_intent"] == intent["id"]:
                    for txn in dispute["balance_transactions"]:
                        self.balance_transactions[txn["id"]]["payout"] = payout["id"]
                        total += txn["net"]
            for refund in self.refunds.values():
                if refund["payment_intent"] == intent["id"]:
                    txn = sample("balance_transaction", amount=-refund["amount"], fee=0, net=-refund["amount"],
                                 currency=refund["currency"], type="refund", source=refund["id"], payout=payout["id"])
                    self.balance_transactions[txn["id"]] = txn
                    total += txn["net"]
        if extra:
            txn = sample("balance_transaction", amount=extra, fee=0, net=extra, currency=payout["currency"],
                         type="adjustment", source=None, payout=payout["id"])
            self.balance_transactions[txn["id"]] = txn
            total += extra
        payout["amount"] = total
        self.payouts[payout["id"]] = payout  # (the same object: a test's change to it is Stripe's)
        return payout

    def refund(self, session_id: str, amount: int) -> dict:
        """The organisation refunds part or all of a paid session's charge (at Stripe): the charge, as the
        ``charge.refunded`` event carries it."""
        intent = self.intents[self.sessions[session_id]["payment_intent"]]
        charge = self.charges[intent["latest_charge"]]
        refund = sample("refund", amount=amount, charge=charge["id"], payment_intent=intent["id"],
                        currency=charge["currency"], status="succeeded")
        self.refunds[refund["id"]] = refund
        charge.update(amount_refunded=charge["amount_refunded"] + amount,
                      refunded=charge["amount_refunded"] + amount == charge["amount"])
        return charge

    def event(self, event_type: str, found: dict, created: int | None = None) -> dict:
        """An event Stripe records (and would send to the webhook): kept for ``GET /v1/events``."""
        event = sample("event", type=event_type, livemode=False, data={"object": copy.deepcopy(found)})
        if created is not None:
            event["created"] = created
        self.events.append(event)
        return event

    def expire(self, session_id: str) -> dict:
        self.sessions[session_id].update(status="expired")
        return self.sessions[session_id]


def serve(stand_in: StripeStandIn):
    """Serves the stand-in on a free local port (a thread); returns the server, to ``shutdown()``."""
    server = make_server("127.0.0.1", 0, stand_in, threaded=True)
    stand_in.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
