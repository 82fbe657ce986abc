"""Matching statement lines to the books: the rules on hand-made cases, properties over random ones (nothing matched
for more than it is, each line and entry once), and the kept matches through the API: automatic, manual, undone,
and the report that balances once every difference is explained."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.reconciliation.matching import Item, Line, automatic, propose
from tests.api.support import snapshot
from tests.reconciliation.test_imports import account, upload

DAY = dt.date(2026, 10, 1)


def test_one_to_one_by_amount_within_the_window_the_payers_name_tipping_it():
    lines = [Line(1, DAY, 10_000, "张伟 捐赠"), Line(2, DAY + dt.timedelta(days=9), 5_000, "")]
    items = [Item(10, DAY + dt.timedelta(days=1), 10_000, "gift of 张伟"), Item(11, DAY, 10_000, "gift"),
             Item(12, DAY, 5_000, "gift")]

    proposals = propose(lines, items)
    taken = automatic(proposals)

    assert [(p.line_ids, p.item_ids, p.score) for p in proposals] == [((1,), (11,), 100), ((1,), (10,), 110)][::-1]
    assert [(p.line_ids, p.item_ids) for p in taken] == [((1,), (10,))]  # line 2 is nine days from any 5,000


def test_a_deposit_of_several_gifts_and_a_gift_paid_in_two_transfers():
    lines = [Line(1, DAY, 30_000, "cash deposit"), Line(2, DAY, 4_000, ""), Line(3, DAY, 6_000, "")]
    items = [Item(10, DAY, 12_000, ""), Item(11, DAY, 18_000, ""), Item(12, DAY, 10_000, "pledge")]

    taken = automatic(propose(lines, items))

    assert {(p.line_ids, p.item_ids, p.rule) for p in taken} == {
        ((1,), (10, 11), "one_line_many_items"), ((2, 3), (12,), "many_lines_one_item")}


def test_two_ways_to_make_a_sum_are_left_for_a_person():
    lines = [Line(1, DAY, 30_000, "")]
    items = [Item(10, DAY, 10_000, ""), Item(11, DAY, 20_000, ""), Item(12, DAY, 10_000, "")]

    assert len(propose(lines, items)) == 2 and automatic(propose(lines, items)) == []


def test_twins_are_left_for_a_person():
    lines = [Line(1, DAY, 500, ""), Line(2, DAY, 500, "")]
    items = [Item(10, DAY, 500, ""), Item(11, DAY, 500, "")]

    assert len(propose(lines, items)) == 4 and automatic(propose(lines, items)) == []


amounts = st.sampled_from([100, 250, 500, 1_000, -300, -1_000, 2_500])


@given(st.lists(st.tuples(amounts, st.integers(0, 6)), max_size=12),
       st.lists(st.tuples(amounts, st.integers(0, 6)), max_size=12))
def test_automatic_matches_are_exact_and_never_share_a_line_or_an_entry(raw_lines, raw_items):
    lines = [Line(n, DAY + dt.timedelta(days=d), a, "") for n, (a, d) in enumerate(raw_lines)]
    items = [Item(100 + n, DAY + dt.timedelta(days=d), a, "") for n, (a, d) in enumerate(raw_items)]
    by_line = {line.id: line.amount_minor for line in lines}
    by_item = {item.id: item.amount_minor for item in items}

    taken = automatic(propose(lines, items))

    used_lines = [line_id for p in taken for line_id in p.line_ids]
    used_items = [item_id for p in taken for item_id in p.item_ids]
    assert len(used_lines) == len(set(used_lines)) and len(used_items) == len(set(used_items))
    for proposal in taken:
        assert sum(by_line[i] for i in proposal.line_ids) == sum(by_item[i] for i in proposal.item_ids)


STATEMENT = """date,amount,reference,counterparty,id,balance
2026-10-03,1000.00,gift,张伟,B1,1000.00
2026-10-08,8800.00,gift,成都锦城科技有限公司,B2,9800.00
2026-10-10,-15.00,fee,Bank,B3,9785.00
2026-10-20,2450.30,payout po_1,STRIPE,B4,12235.30
"""


def gift(world, amount: int, day: str) -> int:
    answer = world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": amount, "currency": "CNY", "channel": "bank", "received_on": day},
        key=uuid.uuid4().hex)
    assert answer.status_code == 201, answer.json
    return answer.json["entry_id"]


def first_match(session, bank: int) -> dict:
    from ledger.db.models import ReconciliationMatch

    first = session.scalars(select(ReconciliationMatch).where(ReconciliationMatch.account_id == bank)
                            .order_by(ReconciliationMatch.id)).first()
    return {"id": first.id, "line_ids": json.loads(first.line_ids), "entry_ids": json.loads(first.entry_ids)}


def reconcile(world, bank: int) -> dict:
    return world.call("auditor", "GET", world.url(
        f"/reconciliation/report?account_id={bank}&start=2026-10-01&end=2026-10-31")).json


def test_the_books_and_the_bank_matched_undone_and_the_report_balancing(world):
    bank = account(world, "1002")
    entries = [gift(world, amount, day) for amount, day in (
        (100_000, "2026-10-03"), (880_000, "2026-10-07"), (145_030, "2026-10-20"), (100_000, "2026-10-20"),
        (50_000, "2026-10-25"))]
    content = STATEMENT.encode()
    world.call("org_admin", "PUT", world.url("/statement-mappings/plain"), {
        "date": "date", "amount": "amount", "reference": "reference", "counterparty": "counterparty",
        "bank_id": "id", "balance": "balance"})
    assert upload(world, "org_admin", content, "oct.csv", account_id=bank, format="csv",
                  mapping="plain").status_code == 201

    auto = world.call("org_admin", "POST", world.url("/reconciliation/auto-match"), {"account_id": bank})
    report = reconcile(world, bank)

    assert auto.status_code == 201 and auto.json == {
        "matches": 3, "by_rule": {"one_to_one": 2, "one_line_many_items": 1}, "lines": 3, "entries": 4}
    assert [line["amount_minor"] for line in report["unmatched_lines"]] == [-1_500]
    assert [entry["id"] for entry in report["unmatched_entries"]] == [entries[4]]
    assert report["bank_closing_minor"] == 1_223_530 and report["books_closing_minor"] == 1_275_030
    # 12,235.30 − (−15.00) + 500.00 − 12,750.30 = 0: the fee and the gift not yet banked explain it all
    assert report["unexplained_minor"] == 0 and report["reconciled"] is True

    matched = world.db.write(lambda session: first_match(session, bank))
    before = snapshot(world.db)
    wrong = world.call("org_admin", "POST", world.url("/reconciliation/matches"), {
        "account_id": bank, "line_ids": [report["unmatched_lines"][0]["id"]], "entry_ids": [entries[4]]})
    assert wrong.status_code == 422 and "a match must be exact" in wrong.json["detail"]
    assert snapshot(world.db) == before

    undone = world.call("org_admin", "POST", world.url(f"/reconciliation/matches/{matched['id']}/unmatch"), {})
    again = world.call("org_admin", "POST", world.url(f"/reconciliation/matches/{matched['id']}/unmatch"), {})
    after = reconcile(world, bank)
    redone = world.call("org_admin", "POST", world.url("/reconciliation/matches"), {
        "account_id": bank, "line_ids": matched["line_ids"], "entry_ids": matched["entry_ids"]})

    assert undone.status_code == 200 and undone.json["unmatched_at"] and again.status_code == 409
    assert len(after["unmatched_lines"]) == 1 + len(matched["line_ids"]) and after["unexplained_minor"] == 0
    assert redone.status_code == 201 and reconcile(world, bank)["unmatched_lines"] == report["unmatched_lines"]


def test_what_the_books_lack_is_recorded_from_its_line_once_and_the_account_reconciles(world):
    bank = account(world, "1002")
    fees = account(world, "5201")
    world.call("org_admin", "PUT", world.url("/statement-mappings/plain"), {
        "date": "date", "amount": "amount", "reference": "reference", "counterparty": "counterparty",
        "bank_id": "id", "balance": "balance"})
    upload(world, "org_admin", STATEMENT.encode(), "oct.csv", account_id=bank, format="csv", mapping="plain")
    lines = {line["amount_minor"]: line["id"] for line in world.call(
        "auditor", "GET", world.url(f"/statement-lines?account_id={bank}")).json["items"]}

    def made(line_id, key, **body):
        return world.call("org_admin", "POST", world.url(f"/reconciliation/lines/{line_id}/entry"),
                          {"fund_id": world.fund, **body}, key=key)

    early = made(lines[-1_500], "too-early", kind="entry", account_id=fees)  # the fund's bank holds nothing yet
    gifts = [made(lines[amount], f"gift-{amount}", kind="gift") for amount in (100_000, 880_000, 245_030)]
    fee = made(lines[-1_500], "fee", kind="entry", account_id=fees, description="账户管理费 bank charge")
    again = made(lines[-1_500], "fee-again", kind="entry", account_id=fees)
    outward_gift = made(lines[-1_500], "wrong", kind="gift")
    report = reconcile(world, bank)

    assert early.status_code == 422 and early.json["code"] == "account_limit_exceeded"  # the books' rules hold
    assert fee.status_code == 201, fee.json
    assert fee.json["rule"] == "created" and again.status_code == 409
    assert outward_gift.status_code == 409  # (matched already: nothing is recorded twice)
    assert [gift.status_code for gift in gifts] == [201, 201, 201]
    assert report["unmatched_lines"] == [] and report["unmatched_entries"] == [] and report["reconciled"] is True
    assert report["books_closing_minor"] == report["bank_closing_minor"] == 1_223_530


def test_the_report_as_one_csv_table(world):
    bank = account(world, "1002")
    gift(world, 100_000, "2026-10-03")
    world.call("org_admin", "PUT", world.url("/statement-mappings/plain"), {
        "date": "date", "amount": "amount", "reference": "reference", "counterparty": "counterparty",
        "bank_id": "id", "balance": "balance"})
    upload(world, "org_admin", STATEMENT.encode(), "oct.csv", account_id=bank, format="csv", mapping="plain")
    world.call("org_admin", "POST", world.url("/reconciliation/auto-match"), {"account_id": bank})

    answer = world.call("auditor", "GET", world.url(
        f"/reconciliation/report?account_id={bank}&start=2026-10-01&end=2026-10-31"), headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    summary = {row["item"]: row["amount_minor"] for row in rows if row["section"] == "summary"}

    assert answer.mimetype == "text/csv" and summary["books_closing_minor"] == "100000"
    assert summary["bank_closing_minor"] == "1223530" and summary["unexplained_minor"] == "0"
    assert sorted(int(row["amount_minor"]) for row in rows if row["section"] == "bank_only") == [
        -1_500, 245_030, 880_000]
    assert [row for row in rows if row["section"] == "books_only"] == []
