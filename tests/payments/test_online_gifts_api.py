"""Managers see the gifts given online, with the channel's payment ids, and decide those set aside for review:
accepted, a donation of what was paid; rejected, nothing posted. Fund managers see and decide their funds' only."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select

from ledger.db.models import Donation, Entry, Fund
from ledger.payments.gifts import GiftForm, Payment, donation_page, gift_paid, start_gift


def in_review(world, fund_id: int, asked: int = 5_000, paid: int = 4_000) -> int:
    """A gift of ``asked`` whose payment reported ``paid``: set aside for review."""
    def build(session):
        page = donation_page(session, world.org, session.get(Fund, fund_id).code)
        gift = start_gift(session, page, GiftForm(asked, "赵六", "zhao@example.org"), "stripe")
        return gift_paid(session, gift.token, Payment("pi_review", paid, "CNY", 120, dt.date(2026, 11, 20)),
                         "stripe").id
    return world.db.write(build)


def count(world, model) -> int:
    with world.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_the_review_queue_shows_what_was_asked_and_what_was_paid(world):
    mine, other = in_review(world, world.fund), in_review(world, world.other_fund)

    admin = world.call("org_admin", "GET", world.url("/online-gifts?status=review"))
    manager = world.call("fund_manager", "GET", world.url("/online-gifts?status=review"))

    assert admin.status_code == 200 and {mine, other} <= {gift["id"] for gift in admin.json["items"]}
    [seen] = [gift for gift in admin.json["items"] if gift["id"] == mine]
    assert (seen["amount_minor"], seen["paid_minor"], seen["fee_minor"], seen["payment_id"]) == (5_000, 4_000, 120,
                                                                                                  "pi_review")
    assert seen["review_reason"] == "paid 40.00 CNY, asked 50.00 CNY" and seen["channel"] == "stripe"
    assert {gift["id"] for gift in manager.json["items"]} == {mine}  # not the fund they do not manage


def test_an_accepted_gift_is_a_donation_of_what_was_paid_once_however_often_it_is_sent(world):
    gift_id = in_review(world, world.fund)
    donations, key = count(world, Donation), uuid.uuid4().hex
    body = {"decision": "accept", "note": "the donor changed the amount at checkout"}

    first = world.call("fund_manager", "POST", world.url(f"/online-gifts/{gift_id}/resolution"), json=body, key=key)
    again = world.call("fund_manager", "POST", world.url(f"/online-gifts/{gift_id}/resolution"), json=body, key=key)

    assert first.status_code == 200 and first.json["status"] == "succeeded" and again.json == first.json
    assert "accepted by" in first.json["review_reason"] and "changed the amount" in first.json["review_reason"]
    assert count(world, Donation) == donations + 1
    with world.db.read() as session:
        donation = session.get(Donation, first.json["donation_id"])
    assert (donation.amount_minor, donation.channel, donation.reference) == (4_000, "online", "pi_review")


def test_a_rejected_gift_fails_and_nothing_is_posted(world):
    gift_id = in_review(world, world.fund)
    entries = count(world, Entry)

    answer = world.call("org_admin", "POST", world.url(f"/online-gifts/{gift_id}/resolution"),
                        json={"decision": "reject", "note": "not a gift: a test payment"}, key=uuid.uuid4().hex)

    assert answer.status_code == 200 and answer.json["status"] == "failed" and answer.json["donation_id"] is None
    assert count(world, Entry) == entries


def test_only_a_gift_under_review_is_decided_and_a_decision_names_its_reason(world):
    gift_id = in_review(world, world.fund)
    path = world.url(f"/online-gifts/{gift_id}/resolution")

    no_note = world.call("org_admin", "POST", path, json={"decision": "accept"}, key=uuid.uuid4().hex)
    world.call("org_admin", "POST", path, json={"decision": "reject", "note": "no"}, key=uuid.uuid4().hex)
    twice = world.call("org_admin", "POST", path, json={"decision": "accept", "note": "yes"}, key=uuid.uuid4().hex)
    others = world.call("fund_manager", "POST", world.url(f"/online-gifts/{in_review(world, world.other_fund)}"
                                                          "/resolution"),
                        json={"decision": "accept", "note": "yes"}, key=uuid.uuid4().hex)

    assert no_note.status_code == 422 and "note" in no_note.json["errors"]
    assert twice.status_code == 409 and twice.json["code"] == "invalid_state"
    assert others.status_code == 403
