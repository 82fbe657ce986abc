"""`flask stripe replay --since <date>`: the events Stripe recorded that the webhook never received are fetched and
go through the same steps (stored once, applied once); a second replay, or a late delivery, changes nothing."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from ledger.db.models import Donation, Fund, OnlineGift, ProcessorEvent
from tests.api.support import make_app
from tests.payments.checkout import SECRET, deliver, give


def test_events_the_webhook_missed_are_fetched_and_applied_once(world, stand_in):
    app = make_app(world.db, STRIPE_SECRET_KEY="sk_test_standin", STRIPE_API_BASE=stand_in.url,
                   STRIPE_WEBHOOK_SECRET=SECRET)
    client, runner = app.test_client(), app.test_cli_runner()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en"
    give(client, url, "20.00")
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=70)
    stand_in.event("checkout.session.completed", stand_in.sessions[session_id])
    stand_in.event("customer.created", {"id": "cus_1", "object": "customer"})  # a kind not asked for
    stand_in.event("payment_intent.succeeded", stand_in.intents[stand_in.sessions[session_id]["payment_intent"]],
                   created=int(time.time()) - 40 * 86_400)  # before --since
    donations = _count(world, Donation)

    first = runner.invoke(args=["stripe", "replay", "--since", time.strftime("%Y-%m-%d")])
    again = runner.invoke(args=["stripe", "replay", "--since", time.strftime("%Y-%m-%d")])
    late = deliver(client, "checkout.session.completed", stand_in.events[0]["data"]["object"])

    assert first.exit_code == 0, first.output
    assert "1 event(s) at Stripe" in first.output and "stored 1, known 0, applied 1" in first.output
    assert again.exit_code == 0 and "stored 0, known 1" in again.output
    assert late.status_code == 200 and late.json["status"] == "applied"  # (a new event id: applied, to no effect)
    with world.db.read() as session:
        gift = session.scalars(select(OnlineGift).order_by(OnlineGift.id.desc())).first()
        replayed = session.scalar(select(func.count()).select_from(ProcessorEvent).where(
            ProcessorEvent.event_id == stand_in.events[0]["id"]))
    assert (gift.status, gift.fee_minor) == ("succeeded", 70) and replayed == 1
    assert _count(world, Donation) == donations + 1
    app.extensions["ledger_db"].dispose()


def test_without_a_stripe_account_replay_says_what_is_missing(world):
    app = make_app(world.db, STRIPE_SECRET_KEY=None)

    result = app.test_cli_runner().invoke(args=["stripe", "replay", "--since", "2026-11-01"])

    assert result.exit_code != 0 and "STRIPE_SECRET_KEY" in result.output
    app.extensions["ledger_db"].dispose()


def _count(world, model) -> int:
    with world.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))
