"""Monthly gifts through Stripe: the page starts a Checkout Session in subscription mode; the first invoice paid
records the plan's gift, each later invoice a gift of its own (once, whatever the order of the events); a month's
refund finds its gift by its payment; the subscription's end marks the plan cancelled; the donor cancels through
the signed link in their email."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from api.edge.mail import cancel_code
from ledger.db.models import Donation, Fund, OnlineGift
from tests.payments.checkout import CSRF, clearing, count, deliver

MONTHLY = 8_800


def give_monthly(client, url: str, amount: str = "88.00", email: str = "han.meimei@example.org"):
    token = CSRF.search(client.get(url).get_data(as_text=True))[1]
    return client.post(url, data={"csrf_token": token, "amount": "other", "other_amount": amount, "monthly": "y",
                                  "donor_name": "Han Meimei", "donor_email": email})


def gifts(world) -> list[OnlineGift]:
    with world.db.read() as session:
        return list(session.scalars(select(OnlineGift).order_by(OnlineGift.id)))


@pytest.fixture
def plan(world, shop, stand_in):
    """A monthly gift started and its first month paid at Stripe (no event delivered yet): (session id, plan)."""
    client, url = shop
    give_monthly(client, url)
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=330)
    return session_id, gifts(world)[-1]


def test_the_page_starts_a_monthly_subscription_naming_the_gift(world, shop, stand_in):
    client, url = shop
    assert "every month" in client.get(url).get_data(as_text=True)

    sent = give_monthly(client, url)

    [created] = [r for r in stand_in.requests if r["path"] == "/v1/checkout/sessions"]
    gift = gifts(world)[-1]
    form = created["form"]
    assert sent.status_code == 303 and gift.monthly and gift.status == "pending"
    assert form["mode"] == "subscription" and "submit_type" not in form and "payment_intent_data" not in form
    price = form["line_items"]["0"]["price_data"]
    assert (price["unit_amount"], price["currency"], price["recurring"]) == ("8800", "cny", {"interval": "month"})
    assert form["subscription_data"]["metadata"] == {"fundledger_gift": gift.token} == form["metadata"]
    assert created["idempotency_key"] == f"fundledger-gift-{gift.token}"


def test_each_month_is_recorded_once_with_its_fee_whatever_the_order_of_the_events(world, shop, stand_in, plan):
    client, _ = shop
    session_id, started = plan
    subscription_id = stand_in.sessions[session_id]["subscription"]
    first_invoice = stand_in.invoices[stand_in.sessions[session_id]["invoice"]]
    donations, clearing_before = count(world.db, Donation), clearing(world)
    second = stand_in.invoice(subscription_id, fee=310)  # a month later
    second_intent = stand_in.invoices[second["id"]]["_payments"]["data"][0]["payment"]["payment_intent"]

    answers = [deliver(client, "invoice.paid", second),  # the second month's events first
               deliver(client, "payment_intent.succeeded", stand_in.intents[second_intent]),
               deliver(client, "invoice.paid", second),
               deliver(client, "checkout.session.completed", stand_in.sessions[session_id]),
               deliver(client, "invoice.paid", stand_in._invoice(first_invoice["id"], expand=[]))]

    assert [answer.json["status"] for answer in answers] == ["applied"] * 5
    plan_gift, month = gifts(world)[-2:]
    assert (plan_gift.token, plan_gift.status, plan_gift.fee_minor) == (started.token, "succeeded", 330)
    assert plan_gift.subscription_id == subscription_id and plan_gift.invoice_id == first_invoice["id"]
    assert (month.plan_id, month.invoice_id, month.status, month.fee_minor) == (plan_gift.id, second["id"],
                                                                                "succeeded", 310)
    assert month.amount_minor == MONTHLY and month.donor_email == plan_gift.donor_email
    assert count(world.db, Donation) == donations + 2
    assert clearing(world) - clearing_before == 2 * MONTHLY - 330 - 310


def test_a_months_refund_is_recorded_against_that_months_gift(world, shop, stand_in, plan):
    client, _ = shop
    session_id, _ = plan
    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    second = stand_in.invoice(stand_in.sessions[session_id]["subscription"], fee=310)
    deliver(client, "invoice.paid", second)
    intent_id = stand_in.invoices[second["id"]]["_payments"]["data"][0]["payment"]["payment_intent"]
    charge = stand_in.charges[stand_in.intents[intent_id]["latest_charge"]]
    stand_in.refunds["re_month2"] = {"id": "re_month2", "object": "refund", "amount": 8_800, "charge": charge["id"],
                                     "payment_intent": intent_id, "currency": "cny", "status": "succeeded",
                                     "created": charge["created"]}
    charge.update(amount_refunded=8_800, refunded=True)

    answer = deliver(client, "charge.refunded", charge)

    month = gifts(world)[-1]
    with world.db.read() as session:
        refunded = {gift_id: session.get(Donation, gift.donation_id).refunded_minor
                    for gift_id, gift in ((gift.id, gift) for gift in gifts(world) if gift.donation_id)}
    assert answer.json["status"] == "applied" and refunded[month.id] == 8_800
    assert refunded[month.plan_id] == 0


def test_the_subscriptions_end_marks_the_plan_cancelled_and_keeps_what_it_paid(world, shop, stand_in, plan):
    client, _ = shop
    session_id, started = plan
    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    subscription = stand_in.subscriptions[stand_in.sessions[session_id]["subscription"]]

    for _ in range(2):
        answer = deliver(client, "customer.subscription.deleted", dict(subscription, status="canceled"))

    [plan_gift] = [gift for gift in gifts(world) if gift.token == started.token]
    assert answer.json["status"] == "applied" and plan_gift.cancelled_at is not None
    assert plan_gift.status == "succeeded" and plan_gift.donation_id is not None


def test_the_donor_cancels_through_the_signed_link_once(world, shop, stand_in, plan):
    client, _ = shop
    session_id, started = plan
    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    link = f"/give/monthly/{cancel_code(client.application, started.token)}?lang=en"
    page = client.get(link).get_data(as_text=True)
    assert "Cancel my monthly gift" in page and "CN¥88.00" in page

    for _ in range(2):
        token = CSRF.search(client.get(link).get_data(as_text=True))
        answer = client.post(link, data={"csrf_token": token[1] if token else ""})

    cancels = [r for r in stand_in.requests if r["method"] == "DELETE"]
    subscription_id = stand_in.sessions[session_id]["subscription"]
    assert [r["path"] for r in cancels] == [f"/v1/subscriptions/{subscription_id}"]
    assert stand_in.subscriptions[subscription_id]["status"] == "canceled"
    assert answer.status_code == 200 and "no later month is charged" in answer.get_data(as_text=True)
    assert gifts(world)[-1].cancelled_at is not None


@pytest.mark.parametrize("code", ["nonsense", "forged.signature"])
def test_a_link_this_site_did_not_sign_cancels_nothing(world, shop, stand_in, plan, code):
    client, _ = shop
    session_id, started = plan
    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    forged = code if code == "nonsense" else re.sub(r"\.[^.]+$", ".forged", cancel_code(client.application,
                                                                                          started.token))

    answers = [client.get(f"/give/monthly/{forged}"), client.post(f"/give/monthly/{forged}")]

    assert [answer.status_code for answer in answers] == [404, 404]
    assert not [r for r in stand_in.requests if r["method"] == "DELETE"]
    assert gifts(world)[-1].cancelled_at is None


def test_without_stripe_the_page_offers_no_monthly_gift_and_refuses_one_naming_the_field(world):
    from tests.api.support import make_app

    app = make_app(world.db)  # (the demo's checkout: no processor)
    client = app.test_client()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en"
        before = session.scalar(select(func.count()).select_from(OnlineGift))

    answer = give_monthly(client, url)

    with world.db.read() as session:
        after = session.scalar(select(func.count()).select_from(OnlineGift))
    assert "every month" not in client.get(url).get_data(as_text=True)
    assert answer.status_code == 422 and "please give once" in answer.get_data(as_text=True) and after == before
    app.extensions["ledger_db"].dispose()
