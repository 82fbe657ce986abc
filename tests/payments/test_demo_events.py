"""The demo's test checkout works as a processor does: paying makes a signed event, stored once by its id and
applied from the stored row; a body or signature that does not match, or a stale one, is refused and nothing is
written; the same event delivered twice records the gift once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ledger.core.errors import SignatureInvalid
from ledger.db.models import Donation, ProcessorEvent
from ledger.db.types import utc_now
from ledger.payments import demo_channel
from ledger.payments.gifts import GiftForm, donation_page, start_gift
from tests.payments.checkout import CSRF, count, the_gift

SECRET = b"demo secret for tests"


def started(world):
    return world.db.write(lambda session: start_gift(
        session, donation_page(session, world.org, "MINE"), GiftForm(10_000, "Li Lei", "li@example.org"), "demo"))


def test_paying_on_the_demo_checkout_stores_a_signed_event_and_applies_it(world):
    client = world.app.test_client()
    gift = started(world)
    page = client.get(f"/give/checkout/{gift.token}?lang=en")
    events = count(world.db, ProcessorEvent)

    answer = client.post(f"/give/checkout/{gift.token}?lang=en",
                         data={"csrf_token": CSRF.search(page.get_data(as_text=True))[1], "pay": "1"})

    with world.db.read() as session:
        stored = session.scalars(select(ProcessorEvent).order_by(ProcessorEvent.id.desc())).first()
    assert answer.status_code == 303 and count(world.db, ProcessorEvent) == events + 1
    assert (stored.channel, stored.event_type, stored.status) == ("demo", "demo.payment.succeeded", "applied")
    assert (the_gift(world.db).status, the_gift(world.db).fee_minor) == ("succeeded", 300)


def test_the_same_event_twice_records_the_gift_once(world):
    gift = started(world)
    body, header = demo_channel.signed_payment(gift, utc_now(), SECRET)
    donations = count(world.db, Donation)

    statuses = [demo_channel.receive(world.db, body, header, SECRET, utc_now()) for _ in range(2)]

    assert statuses == ["applied", "applied"] and count(world.db, Donation) == donations + 1


@pytest.mark.parametrize("spoil", ["body", "signature", "stale", "secret"])
def test_an_event_its_signature_does_not_prove_is_refused_and_nothing_is_written(world, spoil):
    gift = started(world)
    paid_at = utc_now() - (dt.timedelta(minutes=10) if spoil == "stale" else dt.timedelta(0))
    body, header = demo_channel.signed_payment(gift, paid_at, SECRET)
    body = body.replace('"amount_minor": 10000', '"amount_minor": 1') if spoil == "body" else body
    header = header[:-4] + "0000" if spoil == "signature" else header
    with world.db.read() as session:
        before = session.scalar(select(func.count()).select_from(ProcessorEvent))

    with pytest.raises(SignatureInvalid):
        demo_channel.receive(world.db, body, header, b"another" if spoil == "secret" else SECRET, utc_now())

    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ProcessorEvent)) == before
    assert the_gift(world.db).status == "pending"
