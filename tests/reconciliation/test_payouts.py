"""A Stripe payout reconciled with the books: the tie on hand-made and random cases (its differences and the nets it
ties always add up to the payout), and against the Stripe stand-in through the API, its CSV and the console: charges,
refunds and disputes tie to their donations; what no gift explains, a fee recorded otherwise, a refund not recorded
and a payout not posted are each listed, in minor units."""

from __future__ import annotations

import csv
import datetime as dt
import io
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.db.models import OnlineGift
from ledger.payments.stripe_channel import BalanceTransaction, Payout
from ledger.reconciliation.payouts import POSTING_KINDS, PostedEntry, Recorded, RecordedGift, tie
from tests.api.support import make_app, snapshot
from tests.payments.checkout import SECRET, deliver, give
from tests.payments.conftest import shop, stand_in  # noqa: F401 (the Stripe stand-in's fixtures)

DAY = dt.date(2026, 10, 1)


def payout(amount: int, status: str = "paid") -> Payout:
    return Payout("po_1", amount, "CNY", DAY, status)


def charge(txn: str, intent: str, amount: int, fee: int, currency: str = "CNY") -> BalanceTransaction:
    return BalanceTransaction(txn, "charge", amount, fee, amount - fee, currency, f"ch_{txn}", "charge", intent)


def gift(intent: str, amount: int, fee: int, donation_id: int = 1) -> RecordedGift:
    return RecordedGift(intent, donation_id, 7, "CNY", amount, fee, 100 + donation_id)


def test_charges_and_a_refund_recorded_as_stripe_holds_them_tie():
    refund = BalanceTransaction("txn_r", "refund", -1_000, 0, -1_000, "CNY", "re_1", "refund", "pi_1")
    charges = [charge("txn_1", "pi_1", 10_000, 362), charge("txn_2", "pi_2", 5_000, 205)]
    found = tie(payout(9_638 + 4_795 - 1_000), [*charges, refund],
                {"pi_1": gift("pi_1", 10_000, 362, 1), "pi_2": gift("pi_2", 5_000, 205, 2)},
                {"txn_r": Recorded(-1_000, 0, (55,))}, [PostedEntry(90, 7, 13_433)])

    assert found.reconciled and found.differences == []
    assert [(row.donation_id, row.ledger_net_minor, row.difference_minor) for row in found.rows] == [
        (1, 9_638, 0), (2, 4_795, 0), (1, -1_000, 0)]
    assert found.transactions_net_minor == found.tied_net_minor == found.posted_minor == 13_433


def test_each_kind_of_difference_in_minor_units():
    transactions = [charge("txn_1", "pi_1", 10_000, 400),  # Stripe took 4.00; the ledger recorded 3.62
                    charge("txn_2", "pi_2", 5_000, 205),  # 50.00 recorded as 49.00
                    charge("txn_3", "pi_3", 2_000, 100, currency="USD"),
                    BalanceTransaction("txn_r", "refund", -1_000, 0, -1_000, "CNY", "re_1", "refund", "pi_1"),
                    BalanceTransaction("txn_x", "adjustment", 77, 0, 77, "CNY", None, None, None)]
    gifts = {"pi_1": gift("pi_1", 10_000, 362, 1), "pi_2": gift("pi_2", 4_900, 205, 2),
             "pi_3": gift("pi_3", 2_000, 100, 3)}

    found = tie(payout(9_600 + 4_795 + 1_900 - 1_000 + 77 + 5), transactions, gifts, {}, [])

    assert {(d.kind, d.amount_minor, d.transaction_id) for d in found.differences} == {
        ("fee_differs", -38, "txn_1"), ("amount_differs", 100, "txn_2"), ("currency_differs", 1_900, "txn_3"),
        ("refund_not_recorded", -1_000, "txn_r"), ("no_gift", 77, "txn_x"), ("transactions_differ", 5, None),
        ("payout_not_posted", 15_377, None)}
    assert not found.reconciled


def test_a_payout_not_paid_should_have_no_entries():
    transactions = [charge("txn_1", "pi_1", 10_000, 362)]
    gifts = {"pi_1": gift("pi_1", 10_000, 362)}

    assert tie(payout(9_638, "in_transit"), transactions, gifts, {}, []).reconciled
    failed = tie(payout(9_638, "failed"), transactions, gifts, {}, [PostedEntry(90, 7, 9_638)])
    assert [(d.kind, d.amount_minor) for d in failed.differences] == [("posted_differs", -9_638)]


amounts = st.integers(min_value=-50_000, max_value=50_000)


@st.composite
def payouts(draw):
    """A payout of random transactions, some explained by gifts recorded (or recorded otherwise), some not."""
    transactions, gifts, recorded = [], {}, {}
    for index in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["charge", "refund", "dispute", None]))
        amount, fee = draw(amounts), draw(st.integers(0, 2_000))
        intent = draw(st.sampled_from([f"pi_{index}", None]))
        transactions.append(BalanceTransaction(f"txn_{index}", kind or "adjustment", amount, fee, amount - fee,
                                               draw(st.sampled_from(["CNY", "CNY", "USD"])), f"src_{index}", kind,
                                               intent))
        if intent and draw(st.booleans()):
            gifts[intent] = gift(intent, draw(st.sampled_from([amount, abs(amount) + 1])), fee, index)
        if draw(st.booleans()):
            recorded[f"txn_{index}"] = Recorded(draw(st.one_of(st.none(), amounts)), draw(st.integers(-500, 2_000)))
    posted = [PostedEntry(index, 7, draw(amounts)) for index in range(draw(st.integers(0, 2)))]
    return payout(draw(amounts)), transactions, gifts, recorded, posted


@given(payouts())
def test_the_differences_and_the_nets_tied_always_add_up_to_the_payout(drawn):
    found = tie(*drawn)

    transaction_differences = sum(d.amount_minor for d in found.differences if d.kind not in POSTING_KINDS)
    assert found.tied_net_minor + transaction_differences == found.payout.amount_minor
    assert all(row.stripe_net_minor - (row.ledger_net_minor or 0) == row.difference_minor for row in found.rows)
    assert sum(row.difference_minor for row in found.rows) == sum(
        d.amount_minor for d in found.differences if d.transaction_id is not None)
    assert found.reconciled == (not found.differences) and all(d.amount_minor for d in found.differences)


# Against the stand-in, through the API and the console.


def paid(world, shop, stand_in, amount: str = "100.00", fee: int = 362, *, recorded: bool = True) -> str:  # noqa: F811
    client, url = shop
    known = set(stand_in.sessions)
    give(client, url, amount)
    [session_id] = set(stand_in.sessions) - known
    stand_in.pay(session_id, fee=fee)
    if recorded:
        deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    return session_id


def donation_of(world, stand_in, session_id: str) -> int | None:  # noqa: F811
    with world.db.read() as session:
        return session.scalar(select(OnlineGift.donation_id).where(
            OnlineGift.payment_id == stand_in.sessions[session_id]["payment_intent"]))


def reconcile(world, shop, payout_id: str, role: str | None = "org_admin", **headers):  # noqa: F811
    if role is not None:
        headers["Authorization"] = f"Bearer {world.tokens[role]}"
    return shop[0].get(world.url(f"/reconciliation/payouts/{payout_id}"), headers=headers, buffered=True)


def test_a_payout_of_charges_and_a_refund_ties_each_to_its_donation(world, shop, stand_in):  # noqa: F811
    client, _ = shop
    first, second = paid(world, shop, stand_in), paid(world, shop, stand_in, "50.00", fee=205)
    deliver(client, "charge.refunded", stand_in.refund(first, 1_000))
    payout_paid = stand_in.payout([first, second])
    deliver(client, "payout.paid", payout_paid)

    found = reconcile(world, shop, payout_paid["id"]).json

    assert found["reconciled"] and found["differences"] == [] and found["status"] == "paid"
    donations = {donation_of(world, stand_in, first): [9_638, -1_000], donation_of(world, stand_in, second): [4_795]}
    assert {row["donation_id"]: [] for row in found["rows"]}.keys() == donations.keys()
    assert sorted((row["donation_id"], row["ledger_net_minor"]) for row in found["rows"]) == sorted(
        (donation, net) for donation, nets in donations.items() for net in nets)
    assert all(row["difference_minor"] == 0 and row["entry_ids"] for row in found["rows"])
    assert found["amount_minor"] == found["transactions_net_minor"] == found["tied_net_minor"] == \
        found["posted_minor"] == 9_638 - 1_000 + 4_795 and len(found["posted_entry_ids"]) == 1


def test_a_transaction_no_gift_explains_is_listed_by_its_amount(world, shop, stand_in):  # noqa: F811
    client, _ = shop
    session_id = paid(world, shop, stand_in)
    payout_paid = stand_in.payout([session_id], extra=77)
    deliver(client, "payout.paid", payout_paid)

    found = reconcile(world, shop, payout_paid["id"]).json

    [extra] = [row for row in found["rows"] if row["donation_id"] is None]
    assert not found["reconciled"] and extra["difference_minor"] == 77 and extra["ledger_net_minor"] is None
    assert [(d["kind"], d["amount_minor"]) for d in found["differences"]] == [("no_gift", 77), ("posted_differs", 77)]
    assert found["differences"][0]["transaction_id"] == extra["transaction_id"]
    assert found["tied_net_minor"] + 77 == found["amount_minor"] == found["posted_minor"] + 77


def test_a_fee_stripe_holds_otherwise_than_the_ledger_recorded_is_listed(world, shop, stand_in):  # noqa: F811
    client, _ = shop
    session_id = paid(world, shop, stand_in)
    charge_txn = stand_in.balance_transactions[stand_in.charges[stand_in.intents[
        stand_in.sessions[session_id]["payment_intent"]]["latest_charge"]]["balance_transaction"]]
    charge_txn.update(fee=400, net=10_000 - 400)  # (Stripe corrected its fee after the gift was recorded)
    payout_paid = stand_in.payout([session_id])
    deliver(client, "payout.paid", payout_paid)

    found = reconcile(world, shop, payout_paid["id"]).json

    assert [(d["kind"], d["amount_minor"], d["donation_id"]) for d in found["differences"]] == [
        ("fee_differs", 362 - 400, donation_of(world, stand_in, session_id))]
    assert found["posted_minor"] == found["amount_minor"] == 9_600 and found["tied_net_minor"] == 9_638


@pytest.mark.parametrize("won", [True, False])
def test_a_disputes_transactions_tie_to_the_donation(world, shop, stand_in, won):  # noqa: F811
    client, _ = shop
    session_id = paid(world, shop, stand_in)
    deliver(client, "charge.dispute.created", stand_in.dispute(session_id, fee=1_500))
    dispute_id = next(iter(stand_in.disputes))
    deliver(client, "charge.dispute.closed", stand_in.close_dispute(dispute_id, won=won, fee_returned=1_500))
    other = paid(world, shop, stand_in, "200.00", fee=700)  # (a payout is never below zero)
    payout_paid = stand_in.payout([session_id, other])
    deliver(client, "payout.paid", payout_paid)

    found = reconcile(world, shop, payout_paid["id"]).json

    assert found["reconciled"], found["differences"]
    disputed = [row for row in found["rows"] if row["donation_id"] == donation_of(world, stand_in, session_id)]
    assert [row["type"] for row in disputed].count("adjustment") == (2 if won else 1) and len(found["rows"]) == \
        len(disputed) + 1
    assert found["amount_minor"] == (9_638 if won else 9_638 - 10_000 - 1_500) + 19_300 == found["posted_minor"]


def test_a_refund_and_a_payout_the_ledger_has_not_recorded_and_reading_writes_nothing(world, shop, stand_in):  # noqa: F811
    """Stripe refunded and paid out, but neither event came (nor the second gift's): each is listed, and the tie,
    a read, records none of them (the webhook's events do that)."""
    first, second = paid(world, shop, stand_in), paid(world, shop, stand_in, "50.00", fee=205, recorded=False)
    stand_in.refund(first, 1_000)
    payout_paid = stand_in.payout([first, second])
    before = snapshot(world.db)

    found = reconcile(world, shop, payout_paid["id"]).json

    assert snapshot(world.db) == before and donation_of(world, stand_in, second) is None
    assert sorted((d["kind"], d["amount_minor"]) for d in found["differences"]) == [
        ("no_gift", 4_795), ("payout_not_posted", 9_638 - 1_000 + 4_795), ("refund_not_recorded", -1_000)]


def test_the_tie_as_one_csv_table(world, shop, stand_in):  # noqa: F811
    client, _ = shop
    session_id = paid(world, shop, stand_in)
    payout_paid = stand_in.payout([session_id], extra=77)
    deliver(client, "payout.paid", payout_paid)

    answer = reconcile(world, shop, payout_paid["id"], Accept="text/csv")

    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert answer.mimetype == "text/csv" and f"payout-{payout_paid['id']}.csv" in answer.headers["Content-Disposition"]
    assert {row["item"]: row["amount_minor"] for row in rows if row["section"] == "summary"} == {
        "amount_minor": "9715", "transactions_net_minor": "9715", "tied_net_minor": "9638", "posted_minor": "9638",
        "reconciled": "False"}
    assert sorted((row["type"], row["stripe_net_minor"], row["ledger_net_minor"], row["amount_minor"])
                  for row in rows if row["section"] == "transaction") == [
        ("adjustment", "77", "", "77"), ("charge", "9638", "9638", "0")]
    assert [(row["item"], row["amount_minor"]) for row in rows if row["section"] == "difference"] == [
        ("no_gift", "77"), ("posted_differs", "77")]


def test_who_may_read_a_payouts_tie(world, shop, stand_in):  # noqa: F811
    session_id = paid(world, shop, stand_in)
    payout_id = stand_in.payout([session_id])["id"]

    answers = {role: reconcile(world, shop, payout_id, role).status_code
               for role in ("org_admin", "auditor", "fund_manager", "no_role", "other_admin", None)}

    assert answers == {"org_admin": 200, "auditor": 200, "fund_manager": 403, "no_role": 403, "other_admin": 403,
                       None: 401}
    other = shop[0].get(world.url(f"/reconciliation/payouts/{payout_id}", org=world.other_org),
                        headers={"Authorization": f"Bearer {world.tokens['other_admin']}"})
    assert other.status_code == 404 and "payout_id" in other.json["errors"]  # none of its gifts: not its payout


def test_a_payout_unknown_to_the_stripe_account_is_not_found(world, shop, stand_in):  # noqa: F811
    answers = [reconcile(world, shop, payout_id) for payout_id in ("po_unknown", "po_x-y", "tr_123")]

    assert [(answer.status_code, list(answer.json["errors"])) for answer in answers] == [(404, ["payout_id"])] * 3
    assert [request["path"] for request in stand_in.requests] == ["/v1/payouts/po_unknown"]  # (the others: not ids)


def test_stripe_unreachable_is_a_503_and_no_stripe_configured_a_409_naming_the_setting(world):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    app = make_app(world.db, STRIPE_SECRET_KEY="sk_test_standin", STRIPE_API_BASE=f"http://127.0.0.1:{closed}",
                   STRIPE_WEBHOOK_SECRET=SECRET)
    unreachable = app.test_client().get(world.url("/reconciliation/payouts/po_1"),
                                        headers={"Authorization": f"Bearer {world.tokens['auditor']}"})
    app.extensions["ledger_db"].dispose()

    unconfigured = world.call("auditor", "GET", world.url("/reconciliation/payouts/po_1"))

    assert unreachable.status_code == 503 and unreachable.json["code"] == "channel_unavailable"
    assert unconfigured.status_code == 409 and list(unconfigured.json["errors"]) == ["STRIPE_SECRET_KEY"]


def test_the_console_prints_the_tie_and_exits_1_when_it_does_not_reconcile(world, shop, stand_in):  # noqa: F811
    client, _ = shop
    runner = client.application.test_cli_runner()
    first, second = paid(world, shop, stand_in), paid(world, shop, stand_in, "50.00", fee=205)
    tied, untied = stand_in.payout([first]), stand_in.payout([second], extra=77)
    deliver(client, "payout.paid", tied)
    deliver(client, "payout.paid", untied)

    def run(payout_id: str):
        return runner.invoke(args=["reconcile", "payout", payout_id, "--organisation", str(world.org)])

    good, bad, unknown = run(tied["id"]), run(untied["id"]), run("po_unknown")

    assert good.exit_code == 0 and good.output.rstrip().endswith("reconciled") and "9638" in good.output
    assert bad.exit_code == 1 and "difference: no_gift 77" in bad.output and "does not reconcile" in bad.output
    assert unknown.exit_code == 2 and "payout_id" in unknown.output
