"""Disputes (chargebacks) at Stripe, as their balance transactions move the money: the disputed amount withdrawn is
a refund of the gift (so its refunded total, and later its receipt, show it), cancelled when the dispute is won and
the money reinstated; the dispute fee a processing cost, given back when Stripe gives it back; a dispute lost leaves
the refund. Each in any order and any number of times."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from ledger.core.chart import Role
from ledger.db.models import Donation, Refund
from tests.payments.checkout import bank, clearing, deliver, give, held, the_gift

DISPUTE_FEE = 1_500


def paid_gift(world, shop, stand_in, amount: str = "100.00", fee: int = 362) -> str:
    client, url = shop
    known = set(stand_in.sessions)
    give(client, url, amount)
    [session_id] = set(stand_in.sessions) - known
    stand_in.pay(session_id, fee=fee)
    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    return session_id


def refunds_of(world) -> list[Refund]:
    with world.db.read() as session:
        return list(session.scalars(select(Refund).where(Refund.donation_id == the_gift(world.db).donation_id)))


def refunded(world) -> int:
    with world.db.read() as session:
        return session.get(Donation, the_gift(world.db).donation_id).refunded_minor


def test_a_dispute_opened_withdraws_the_gift_and_charges_the_fee_once(world, shop, stand_in):
    client, _ = shop
    session_id = paid_gift(world, shop, stand_in)
    clearing_before, fees_before = clearing(world), held(world, Role.PROCESSING_FEES)

    opened = stand_in.dispute(session_id, fee=DISPUTE_FEE)
    answers = [deliver(client, kind, opened) for kind in
               ("charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.created")]

    assert [answer.json["status"] for answer in answers] == ["applied"] * 3
    [refund] = refunds_of(world)
    assert refund.amount_minor == 10_000 and opened["id"] in refund.reason and refunded(world) == 10_000
    assert clearing(world) - clearing_before == -10_000 - DISPUTE_FEE
    assert held(world, Role.PROCESSING_FEES) - fees_before == DISPUTE_FEE


@pytest.mark.parametrize("fee_returned", [0, DISPUTE_FEE])
def test_a_dispute_won_gives_the_gift_back_to_the_fund_and_the_fee_if_stripe_returns_it(
        world, shop, stand_in, fee_returned):
    client, _ = shop
    session_id = paid_gift(world, shop, stand_in)
    clearing_before = clearing(world)
    opened = stand_in.dispute(session_id, fee=DISPUTE_FEE)
    deliver(client, "charge.dispute.created", opened)

    won = stand_in.close_dispute(opened["id"], won=True, fee_returned=fee_returned)
    deliver(client, "charge.dispute.closed", won)
    deliver(client, "charge.dispute.funds_reinstated", won)

    [refund] = refunds_of(world)
    assert refund.cancelled_entry_id is not None and "won" in refund.cancel_reason and refunded(world) == 0
    assert clearing(world) - clearing_before == -DISPUTE_FEE + fee_returned


def test_a_dispute_lost_leaves_the_gift_refunded_and_the_fee_paid(world, shop, stand_in):
    client, _ = shop
    session_id = paid_gift(world, shop, stand_in)
    clearing_before = clearing(world)
    opened = stand_in.dispute(session_id, fee=DISPUTE_FEE)
    deliver(client, "charge.dispute.created", opened)

    deliver(client, "charge.dispute.closed", stand_in.close_dispute(opened["id"], won=False))

    [refund] = refunds_of(world)
    assert refund.cancelled_entry_id is None and refunded(world) == 10_000
    assert clearing(world) - clearing_before == -10_000 - DISPUTE_FEE


def test_only_the_closing_event_of_a_won_dispute_arriving_does_the_same_as_all_of_them(world, shop, stand_in):
    """The events of a dispute opened and won, all lost but the last (and its gift's own events never came): the
    gift recorded, the withdrawal, the fee and the reinstatement all follow from Stripe's current state."""
    client, url = shop
    give(client, url, "50.00")
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=205)
    opened = stand_in.dispute(session_id, fee=DISPUTE_FEE)
    clearing_before = clearing(world)

    answer = deliver(client, "charge.dispute.closed", stand_in.close_dispute(opened["id"], won=True))

    assert answer.json["status"] == "applied" and the_gift(world.db).status == "succeeded"
    assert refunded(world) == 0 and len(refunds_of(world)) == 1
    assert clearing(world) - clearing_before == 5_000 - 205 - DISPUTE_FEE


def test_a_dispute_after_the_payout_takes_the_funds_clearing_below_zero_and_the_next_payout_nets_it(
        world, shop, stand_in):
    client, _ = shop
    first = paid_gift(world, shop, stand_in)
    deliver(client, "payout.paid", stand_in.payout([first]))
    clearing_before, bank_before = clearing(world), bank(world)

    deliver(client, "charge.dispute.created", stand_in.dispute(first, fee=DISPUTE_FEE))

    owed = clearing(world) - clearing_before
    assert owed == -10_000 - DISPUTE_FEE and bank(world) == bank_before
    second = paid_gift(world, shop, stand_in, "200.00", fee=700)
    paid = stand_in.payout([second])
    paid["amount"] += owed  # (Stripe nets what the fund owes against its next payout)
    for transaction in stand_in.disputes.values():
        for found in transaction["balance_transactions"]:
            stand_in.balance_transactions[found["id"]]["payout"] = paid["id"]
    deliver(client, "payout.paid", paid)

    assert bank(world) - bank_before == 20_000 - 700 + owed
    assert clearing(world) - clearing_before == owed + (20_000 - 700) - (20_000 - 700 + owed)


def test_a_payout_nets_one_funds_debt_against_another_funds_gifts(world, shop, stand_in):
    """Fund MINE's gift is paid out, then disputed (it owes Stripe 115.00); fund NOT_MINE's gift of 200.00 is in
    the next payout, which Stripe pays less MINE's debt. NOT_MINE's share goes to its bank; MINE's bank pays its
    clearing account back: the bank entries add up to what arrived."""
    client, url = shop
    world.call("org_admin", "POST", world.url("/donations"), {  # (MINE's bank holds enough to pay its debt)
        "fund_id": world.fund, "amount_minor": 50_000, "currency": "CNY", "channel": "bank",
        "received_on": dt.date.today().isoformat()}, key=uuid.uuid4().hex)
    first = paid_gift(world, shop, stand_in)
    deliver(client, "payout.paid", stand_in.payout([first]))
    deliver(client, "charge.dispute.created", stand_in.dispute(first, fee=DISPUTE_FEE))
    mine_bank = bank(world)
    other = paid_gift(world, (client, url.replace("/MINE", "/NOT_MINE")), stand_in, "200.00", fee=700)
    paid = stand_in.payout([other])
    for dispute in stand_in.disputes.values():
        for found in dispute["balance_transactions"]:
            stand_in.balance_transactions[found["id"]]["payout"] = paid["id"]
            paid["amount"] += found["net"]

    answer = deliver(client, "payout.paid", paid)

    with world.db.read() as session:
        from ledger.books.balances import balance
        from ledger.books.charts import load_chart

        other_bank = balance(session, load_chart(session, world.org).account(Role.BANK), world.other_fund, "CNY")
    assert answer.json["status"] == "applied" and paid["amount"] == 19_300 - 11_500
    assert bank(world) - mine_bank == -11_500 and other_bank.debits_minor - other_bank.credits_minor == 19_300


def test_a_dispute_of_a_payment_that_is_no_gift_here_is_ignored(world, shop, stand_in):
    client, url = shop
    give(client, url)
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=362)
    stand_in.intents[stand_in.sessions[session_id]["payment_intent"]]["metadata"] = {}  # (sold by another system)

    answer = deliver(client, "charge.dispute.created", stand_in.dispute(session_id))

    assert answer.json["status"] == "ignored" and the_gift(world.db).status == "pending"
