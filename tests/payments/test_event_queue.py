"""With REDIS_URL set, Stripe's events are applied by `flask worker` from an RQ queue in Redis: the webhook only
stores the event and puts a job on the queue (the acknowledgement waits for neither Stripe nor the books); the
worker applies it, in any number, once each."""

from __future__ import annotations

import uuid

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from api.edge.jobs import QUEUE, work
from ledger.db.models import Donation, Fund, ProcessorEvent
from tests.api.support import make_app
from tests.payments.checkout import SECRET, count, deliver, give, the_gift


@pytest.fixture
def queued(world, stand_in, redis_url):
    """The world's app with Stripe at the stand-in and Redis set (STRIPE_APPLY: its default, the queue), and a
    gift given and paid at Stripe whose events have not come yet: (app, client, queue, its session)."""
    app = make_app(world.db, STRIPE_SECRET_KEY="sk_test_standin", STRIPE_API_BASE=stand_in.url,
                   STRIPE_WEBHOOK_SECRET=SECRET, REDIS_URL=redis_url, STRIPE_APPLY=None)
    queue = Queue(QUEUE, connection=redis.Redis.from_url(redis_url))
    queue.empty()
    client = app.test_client()
    with world.db.read() as session:
        give(client, f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en")
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=362)
    yield app, client, queue, stand_in.sessions[session_id]
    queue.empty()
    app.extensions["ledger_db"].dispose()


def test_the_webhook_queues_the_event_and_the_worker_applies_it_once(world, stand_in, queued):
    app, client, queue, paid = queued
    donations = count(world.db, Donation)
    intent = stand_in.intents[paid["payment_intent"]]

    answers = [deliver(client, "checkout.session.completed", paid),
               deliver(client, "payment_intent.succeeded", intent),
               deliver(client, "payment_intent.succeeded", intent)]

    assert [answer.json["status"] for answer in answers] == ["received"] * 3
    assert queue.count == 3 and the_gift(world.db).status == "pending"
    work(app, burst=True)
    assert queue.count == 0 and the_gift(world.db).status == "succeeded"
    assert (the_gift(world.db).fee_minor, count(world.db, Donation)) == (362, donations + 1)


def test_an_event_the_worker_cannot_apply_is_kept_as_failed_for_its_next_delivery(world, queued, stand_in):
    app, client, _, paid = queued
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # Stripe unreachable while the worker runs

    first = deliver(client, "checkout.session.completed", paid)
    work(app, burst=True)
    kept = event_status(world, first.json["event_id"])
    app.config["STRIPE_API_BASE"] = stand_in.url
    again = deliver(client, "checkout.session.completed", paid, event_id=first.json["event_id"])  # Stripe retries
    work(app, burst=True)

    assert (kept, the_gift(world.db).status) == ("failed", "succeeded")
    assert again.json["duplicate"] is True and event_status(world, first.json["event_id"]) == "applied"


def test_an_event_that_cannot_be_queued_is_a_503_and_its_next_delivery_queues_it(world, queued):
    app, client, queue, paid = queued
    event_id, reachable = f"evt_{uuid.uuid4().hex}", app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # Redis down while the event arrives

    refused = deliver(client, "checkout.session.completed", paid, event_id=event_id)
    kept = event_status(world, event_id)
    app.config["REDIS_URL"] = reachable
    again = deliver(client, "checkout.session.completed", paid, event_id=event_id)  # Stripe delivers it again
    queued_then = queue.count
    work(app, burst=True)

    assert (refused.status_code, refused.json["code"]) == (503, "service_unavailable")
    assert "Redis" in refused.json["detail"] and kept == "received"
    assert (again.status_code, again.json["duplicate"], queued_then) == (200, True, 1)
    assert event_status(world, event_id) == "applied" and the_gift(world.db).status == "succeeded"


def event_status(world, event_id: str) -> str:
    with world.db.read() as session:
        return session.scalar(select(ProcessorEvent.status).where(ProcessorEvent.event_id == event_id))


def test_the_worker_needs_redis(world):
    app = make_app(world.db)

    result = app.test_cli_runner().invoke(args=["worker", "--burst"])

    assert result.exit_code != 0 and "REDIS_URL is not set" in result.output
    app.extensions["ledger_db"].dispose()
