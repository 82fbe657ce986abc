"""Helpers for the Stripe channel's tests: a donor giving on the fund's page, Stripe delivering a signed event, and
what the books then hold."""

from __future__ import annotations

import json
import re
import time

import stripe
from sqlalchemy import func, select

from ledger.books.balances import balance
from ledger.books.charts import load_chart
from ledger.core.chart import Role
from ledger.db.models import OnlineGift
from tests.payments.stripe_standin import sample

SECRET = "whsec_test_checkout_" + "x" * 20
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def give(client, url: str, amount: str = "100.00"):
    token = CSRF.search(client.get(url).get_data(as_text=True))[1]
    return client.post(url, data={"csrf_token": token, "amount": "other", "other_amount": amount,
                                  "donor_name": "Li Lei", "donor_email": "li.lei@example.org"})


def deliver(client, event_type: str, found: dict, event_id: str | None = None):
    """Stripe delivers a signed event about ``found`` (``event_id``: a delivery again of an earlier event)."""
    event = sample("event", type=event_type, livemode=False, data={"object": found})
    event["id"] = event_id or event["id"]
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, timestamp=int(time.time()))
    return client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header,
                                                                "Content-Type": "application/json"})


def the_gift(db) -> OnlineGift:
    with db.read() as session:
        return session.scalars(select(OnlineGift).order_by(OnlineGift.id.desc())).first()


def count(db, model) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def held(world, role: Role) -> int:
    """What the world's fund holds in the role's account (debits less credits), in fen."""
    with world.db.read() as session:
        totals = balance(session, load_chart(session, world.org).account(role), world.fund, "CNY")
    return totals.debits_minor - totals.credits_minor


def clearing(world) -> int:
    return held(world, Role.PROCESSOR_CLEARING)


def bank(world) -> int:
    return held(world, Role.BANK)
