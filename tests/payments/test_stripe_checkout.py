"""The Stripe channel end to end, against a stand-in for Stripe's API (stripe_standin.py) reached by stripe-python's
own client: the donation page starts a Checkout Session (amount, currency, metadata, a deterministic idempotency
key), and signed events, in any order and any number of times, record the gift once, with the fee Stripe's
balance transaction holds."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.db.models import Donation, Fund, OnlineGift
from tests.api.support import make_app
from tests.payments.checkout import SECRET, bank, clearing, count, deliver, give, the_gift


def test_the_page_starts_a_checkout_session_for_the_gift_and_sends_the_donor_there(world, shop, stand_in):
    client, url = shop

    sent = give(client, url, "88.80")

    [created] = [r for r in stand_in.requests if r["path"] == "/v1/checkout/sessions"]
    gift = the_gift(world.db)
    assert sent.status_code == 303 and sent.headers["Location"].startswith(f"{stand_in.url}/pay/cs_test_")
    form = created["form"]
    assert (form["mode"], form["submit_type"], form["customer_email"]) == ("payment", "donate", "li.lei@example.org")
    price = form["line_items"]["0"]["price_data"]
    assert (price["unit_amount"], price["currency"], price["product_data"]["name"]) == ("8880", "cny", "MINE")
    assert form["metadata"] == {"fundledger_gift": gift.token} == form["payment_intent_data"]["metadata"]
    assert created["idempotency_key"] == f"fundledger-gift-{gift.token}"
    assert form["success_url"].endswith(f"/give/gifts/{gift.token}?lang=en")
    assert (gift.channel, gift.status) == ("stripe", "pending")
    # The demo's checkout does not take a gift that Stripe is to take.
    assert client.get(f"/give/checkout/{gift.token}").status_code == 404


ORDERS = list(itertools.permutations(["checkout.session.completed", "payment_intent.succeeded",
                                      "checkout.session.completed"]))


@pytest.mark.parametrize("order", sorted(set(ORDERS)))
def test_events_in_any_order_and_number_record_the_gift_once_with_stripes_fee(world, shop, stand_in, order):
    client, url = shop
    give(client, url, "100.00")
    gift = the_gift(world.db)
    session_id = next(iter(stand_in.sessions))
    donations = count(world.db, Donation)
    stand_in.pay(session_id, fee=362)  # Stripe's fee, as its balance transaction holds it
    objects = {"checkout.session.completed": stand_in.sessions[session_id],
               "payment_intent.succeeded": stand_in.intents[stand_in.sessions[session_id]["payment_intent"]]}

    answers = [deliver(client, kind, objects[kind]) for kind in order]

    assert all(answer.status_code == 200 for answer in answers) and answers[0].json["status"] == "applied"
    gift = the_gift(world.db)
    assert (gift.status, gift.fee_minor) == ("succeeded", 362) and count(world.db, Donation) == donations + 1
    status = client.get(f"/give/gifts/{gift.token}?lang=en").get_data(as_text=True)
    assert "Your gift of CN¥100.00 to MINE is recorded in its books." in status and "CN¥3.62" in status


def test_a_completed_event_before_the_payment_succeeded_records_nothing_until_it_does(world, shop, stand_in):
    client, url = shop
    give(client, url)
    session_id = next(iter(stand_in.sessions))
    early = dict(stand_in.sessions[session_id], payment_status="paid")  # an event whose copy runs ahead of Stripe

    deliver(client, "checkout.session.completed", early)
    pending = the_gift(world.db).status
    stand_in.pay(session_id, fee=362)
    deliver(client, "payment_intent.succeeded", stand_in.intents[early["payment_intent"]])

    assert pending == "pending" and the_gift(world.db).status == "succeeded"


def test_a_payment_settled_in_another_currency_is_set_aside_for_review(world, shop, stand_in):
    client, url = shop
    give(client, url)
    session_id = next(iter(stand_in.sessions))
    donations = count(world.db, Donation)
    stand_in.pay(session_id, fee=50, settled_in="usd")

    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])

    gift = the_gift(world.db)
    assert gift.status == "review" and "settled in USD" in gift.review_reason
    assert count(world.db, Donation) == donations


def test_an_expired_session_ends_the_gift_and_nothing_is_recorded(world, shop, stand_in):
    client, url = shop
    give(client, url)
    session_id = next(iter(stand_in.sessions))
    donations = count(world.db, Donation)

    deliver(client, "checkout.session.expired", stand_in.expire(session_id))

    assert the_gift(world.db).status == "expired" and count(world.db, Donation) == donations


def test_when_stripe_cannot_be_reached_the_donor_is_told_and_nothing_is_charged(world):
    app = make_app(world.db, STRIPE_SECRET_KEY="sk_test_unreachable", STRIPE_API_BASE="http://127.0.0.1:9")
    client = app.test_client()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en"

    answer = give(client, url)

    assert answer.status_code == 503 and "nothing was charged" in answer.get_data(as_text=True)
    app.extensions["ledger_db"].dispose()


GIFTS = st.lists(st.tuples(st.integers(100, 500_000), st.integers(0, 100)), min_size=1, max_size=3)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gifts=GIFTS, data=st.data())
def test_any_order_of_each_gifts_events_delivered_once_to_three_times_some_at_once_ends_in_the_same_books(
        world, shop, stand_in, gifts, data):
    """Each gift's events (the session completed, the payment succeeded), each sent one to three times, all of them
    shuffled together and part of them sent at once: the same books as one delivery of each in order."""
    client, url = shop
    clearing_before, donations_before = clearing(world), count(world.db, Donation)
    deliveries, expected = [], []
    for amount, fee_percent in gifts:
        known = set(stand_in.sessions)
        give(client, url, f"{amount // 100}.{amount % 100:02d}")
        [session_id] = set(stand_in.sessions) - known
        fee = amount * fee_percent // 1_000
        stand_in.pay(session_id, fee=fee)
        session = stand_in.sessions[session_id]
        for kind, found in (("checkout.session.completed", session),
                            ("payment_intent.succeeded", stand_in.intents[session["payment_intent"]])):
            deliveries += [(kind, found)] * data.draw(st.integers(1, 3))
        expected.append((session["metadata"]["fundledger_gift"], amount, fee))
    order = data.draw(st.permutations(deliveries))
    together = data.draw(st.integers(0, len(order)))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda delivery: deliver(client, *delivery), order[:together]))
    answers += [deliver(client, *delivery) for delivery in order[together:]]

    assert all(answer.status_code == 200 for answer in answers)
    with world.db.read() as session:
        for token, amount, fee in expected:
            gift = session.scalars(select(OnlineGift).where(OnlineGift.token == token)).one()
            assert (gift.status, gift.amount_minor, gift.fee_minor) == ("succeeded", amount, fee)
    assert count(world.db, Donation) == donations_before + len(expected)
    assert clearing(world) - clearing_before == sum(amount - fee for _, amount, fee in expected)


def test_refunds_made_at_stripe_are_recorded_once_each_whatever_the_order(world, shop, stand_in):
    client, url = shop
    give(client, url, "100.00")
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=362)
    clearing_before = clearing(world)

    partly = stand_in.refund(session_id, 3_000)
    deliver(client, "charge.refunded", partly)  # before any event of the payment: the gift is recorded first
    deliver(client, "charge.refunded", partly)
    after_one = clearing(world)
    more = stand_in.refund(session_id, 6_000)
    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])  # (any payment event settles)
    deliver(client, "charge.refunded", more)

    gift = the_gift(world.db)
    with world.db.read() as session:
        donation = session.get(Donation, gift.donation_id)
    assert gift.status == "succeeded" and donation.refunded_minor == 9_000
    assert after_one - clearing_before == 9_638 - 3_000  # the gift recorded (net of its fee), then 30.00 given back
    assert clearing(world) - clearing_before == 9_638 - 9_000


def test_a_whole_refund_after_the_payout_leaves_the_fund_owing_stripe_its_kept_fee(world, shop, stand_in):
    """Stripe keeps its fee when it refunds, and takes a refund made after the payout from its balance: the fund's
    share of the clearing account goes below zero by what it owes Stripe (the kept fee), as Stripe's own balance
    does, and the bank keeps what was paid out."""
    client, url = shop
    give(client, url, "100.00")
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=362)
    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    clearing_before, bank_before = clearing(world), bank(world)
    deliver(client, "payout.paid", stand_in.payout([session_id]))

    answer = deliver(client, "charge.refunded", stand_in.refund(session_id, 10_000))

    with world.db.read() as session:
        donation = session.get(Donation, the_gift(world.db).donation_id)
    assert answer.status_code == 200 and answer.json["status"] == "applied" and donation.refunded_minor == 10_000
    assert clearing(world) - clearing_before == -9_638 - 10_000 and bank(world) - bank_before == 9_638
    # In all, the fund is 3.62 poorer than before the gift: the fee Stripe kept.
    assert (clearing(world) - clearing_before + 9_638) + (bank(world) - bank_before) == -362


def test_a_payout_moves_each_funds_share_from_clearing_to_the_bank_once_and_a_failed_one_moves_it_back(
        world, shop, stand_in):
    client, url = shop
    give(client, url, "100.00")
    give(client, url, "50.00")
    first, second = list(stand_in.sessions)[-2:]
    stand_in.pay(first, fee=362)
    stand_in.pay(second, fee=205)
    deliver(client, "checkout.session.completed", stand_in.sessions[first])  # the second's events never come
    stand_in.refund(first, 1_000)
    clearing_before, bank_before = clearing(world), bank(world)

    paid = stand_in.payout([first, second], extra=77)  # 77: no gift of this ledger's (listed, not posted)
    deliver(client, "payout.paid", paid)
    deliver(client, "payout.paid", paid)

    share = (10_000 - 362) + (5_000 - 205) - 1_000
    assert bank(world) - bank_before == share
    assert clearing(world) - clearing_before == -share + (5_000 - 205) - 1_000  # (the second gift recorded on the way)
    assert the_gift(world.db).status == "succeeded"

    deliver(client, "payout.failed", dict(paid, status="failed"))

    assert bank(world) == bank_before


def test_by_default_an_event_is_applied_after_the_acknowledgement_is_sent(world, stand_in):
    """STRIPE_APPLY=after (the default): the 200 goes out once the event is stored, so it never waits for Stripe;
    the event is applied when the server has sent it (the response's close)."""
    app = make_app(world.db, STRIPE_SECRET_KEY="sk_test_standin", STRIPE_API_BASE=stand_in.url,
                   STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_APPLY="after")
    client = app.test_client()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en"
    give(client, url)
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=362)

    answer = deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    before_close = the_gift(world.db).status
    answer.close()

    assert answer.status_code == 200 and answer.json["status"] == "received" and before_close == "pending"
    assert the_gift(world.db).status == "succeeded"
    app.extensions["ledger_db"].dispose()
