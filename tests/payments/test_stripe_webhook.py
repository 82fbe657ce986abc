"""Stripe's webhook: an event is stored once when its signature proves it came from Stripe lately, acknowledged
either way; a bad, stale or future signature or a malformed body is refused with 400, naming what, and nothing is
written. Events are built from Stripe's own object samples (stripe_objects.json, from Stripe's OpenAPI fixtures)
and signed with stripe-python's own helper."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path

import pytest
import stripe
from sqlalchemy import func, select

from ledger.db.models import ProcessorEvent
from tests.api.support import make_app

SECRET = "whsec_test_" + "s3cr3t" * 4
SAMPLES = json.loads((Path(__file__).parent / "stripe_objects.json").read_text())


def stripe_event(event_type: str = "payment_intent.succeeded", **changes) -> dict:
    """A Stripe event (a fresh id) around a sample payment intent."""
    event = copy.deepcopy(SAMPLES["event"])
    intent = copy.deepcopy(SAMPLES["payment_intent"])
    intent.update(amount=10_000, amount_received=10_000, currency="cny", status="succeeded",
                  metadata={"fundledger_gift": "1"})
    event.update({"id": f"evt_{uuid.uuid4().hex[:24]}", "type": event_type, "created": int(time.time()),
                  "data": {"object": intent}, **changes})
    return event


def signed(body: str, secret: str = SECRET, timestamp: int | None = None) -> dict:
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp),
            "Content-Type": "application/json"}


@pytest.fixture
def client(db):
    app = make_app(db, STRIPE_WEBHOOK_SECRET=SECRET)
    yield app.test_client()
    app.extensions["ledger_db"].dispose()


def stored(db) -> list[tuple]:
    with db.read() as session:
        return [tuple(row) for row in session.execute(select(
            ProcessorEvent.event_id, ProcessorEvent.event_type, ProcessorEvent.status, ProcessorEvent.payload))]


def test_a_signed_event_is_stored_once_and_each_delivery_acknowledged(client, db):
    body = json.dumps(stripe_event())
    event_id = json.loads(body)["id"]

    first = client.post("/webhooks/stripe", data=body, headers=signed(body))
    again = client.post("/webhooks/stripe", data=body, headers=signed(body))

    assert first.status_code == again.status_code == 200
    assert first.json == {"received": True, "event_id": event_id, "duplicate": False, "status": "received"}
    assert again.json["duplicate"] is True
    rows = [row for row in stored(db) if row[0] == event_id]
    assert rows == [(event_id, "payment_intent.succeeded", "received", body)]  # the body exactly as signed


def test_an_event_of_a_type_the_ledger_does_not_act_on_is_acknowledged_and_kept_as_ignored(client, db):
    body = json.dumps(stripe_event("customer.created"))

    answer = client.post("/webhooks/stripe", data=body, headers=signed(body))

    assert answer.status_code == 200 and answer.json["status"] == "ignored"


def test_the_same_delivery_sent_by_eight_threads_at_once_is_stored_once(client, db):
    from concurrent.futures import ThreadPoolExecutor

    body = json.dumps(stripe_event())
    headers = signed(body)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/webhooks/stripe", data=body, headers=headers), range(8)))

    assert [answer.status_code for answer in answers] == [200] * 8
    assert sorted(answer.json["duplicate"] for answer in answers) == [False] + [True] * 7
    assert sum(row[0] == json.loads(body)["id"] for row in stored(db)) == 1


REFUSALS = {
    "no signature": lambda body: {"Content-Type": "application/json"},
    "another secret": lambda body: signed(body, secret="whsec_someone_else"),
    "another body": lambda body: signed(body.replace("succeeded", "failed")),
    "stale, 6 minutes old": lambda body: signed(body, timestamp=int(time.time()) - 360),
    "future, 6 minutes ahead": lambda body: signed(body, timestamp=int(time.time()) + 360),
    "no timestamp": lambda body: {"Stripe-Signature": "v1=" + "0" * 64},
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_delivery_whose_signature_does_not_prove_it_is_refused_and_nothing_is_written(client, db, case):
    body = json.dumps(stripe_event())
    before = stored(db)

    answer = client.post("/webhooks/stripe", data=body, headers=REFUSALS[case](body))

    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    assert answer.json["code"] == "signature_invalid" and list(answer.json["errors"]) == ["Stripe-Signature"]
    assert stored(db) == before


MALFORMED = {
    "not JSON": ("{not json", "body"),
    "a list": ("[]", "body"),
    "no id": (json.dumps({k: v for k, v in stripe_event().items() if k != "id"}), "body.id"),
    "not an event id": (json.dumps(stripe_event(id="ch_123")), "body.id"),
    "created as text": (json.dumps(stripe_event(created="yesterday")), "body.created"),
    "no object": (json.dumps(stripe_event(data={})), "body.data.object"),
    "not UTF-8": ("{\"id\": \"evt_\xff\"}", "body"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_signed_body_that_is_not_a_stripe_event_is_refused_naming_what(client, db, case):
    body, field = MALFORMED[case]
    raw = body.encode("latin-1") if case == "not UTF-8" else body.encode()
    headers = signed(body) if case != "not UTF-8" else signed("x")
    before = stored(db)

    answer = client.post("/webhooks/stripe", data=raw, headers=headers)

    assert answer.status_code == 400 and answer.json["code"] == "event_malformed"
    assert list(answer.json["errors"]) == [field]
    assert stored(db) == before


def test_without_a_webhook_secret_the_endpoint_is_not_there(db):
    app = make_app(db, STRIPE_WEBHOOK_SECRET=None)
    body = json.dumps(stripe_event())

    answer = app.test_client().post("/webhooks/stripe", data=body, headers=signed(body))

    assert answer.status_code == 404 and "STRIPE_WEBHOOK_SECRET" in answer.json["detail"]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ProcessorEvent).where(
            ProcessorEvent.event_id == json.loads(body)["id"])) == 0
    app.extensions["ledger_db"].dispose()


def test_a_burst_of_events_from_one_address_is_never_throttled(db):
    """Stripe sends from a few addresses: the API's per-address limit does not apply to its webhook."""
    app = make_app(db, STRIPE_WEBHOOK_SECRET=SECRET, RATELIMIT_DEFAULT="3 per minute")
    client = app.test_client()

    answers = []
    for _ in range(6):
        body = json.dumps(stripe_event())
        answers.append(client.post("/webhooks/stripe", data=body, headers=signed(body)).status_code)

    assert answers == [200] * 6
    assert client.get("/api/v1/me").status_code in (401, 429)  # (the API itself stays limited)
    app.extensions["ledger_db"].dispose()
