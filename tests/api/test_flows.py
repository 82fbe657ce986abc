"""The API end to end, on SQLite and PostgreSQL: gifts and refunds, grants with separation of duties,
transfers, reversals, periods, idempotent retries (also racing), the audit log, tokens, pages, CSV, limits
and headers. Every money answer is checked against the books."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import uuid

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from api.edge.tables import AuditRecord, KeptAnswer
from ledger.books.charts import load_chart
from ledger.books.entries import post_entries
from ledger.core.chart import Role
from ledger.core.money import Money
from ledger.core.recipes import Particulars, offline_donation
from ledger.db.models import ApiToken, Donation, GrantApproval
from tests.api.support import PASSWORD, make_app, make_world, snapshot

DAY = "2026-11-20"


def gift(world, amount=10_000, fund=None, key=None, role="fund_manager", **extra):
    body = {"fund_id": fund or world.fund, "amount_minor": amount, "currency": "CNY", "channel": "bank",
            "received_on": DAY, **extra}
    return world.call(role, "POST", world.url("/donations"), json=body, key=key or uuid.uuid4().hex)


def fund_balance(world, role: Role, fund: int, caller="org_admin") -> int:
    account = world.db.write(lambda session: load_chart(session, world.org).account(role))
    lines = world.call(caller, "GET", world.url(f"/funds/{fund}/balances")).json
    return next((line["balance_minor"] for line in lines if line["account_id"] == account), 0)


def test_a_recorded_bank_gift_reaches_the_fund_and_reads_back(world):
    before = fund_balance(world, Role.BANK, world.fund)

    response = gift(world, 12_345, reference="ICBC-778899")

    assert response.status_code == 201, response.json
    donation = response.json
    assert (donation["amount_minor"], donation["channel"], donation["refunded_minor"]) == (12_345, "bank", 0)
    assert fund_balance(world, Role.BANK, world.fund) == before + 12_345
    assert world.call("auditor", "GET", world.url(f"/donations/{donation['id']}")).json == donation
    entry = world.call("auditor", "GET", world.url(f"/entries/{donation['entry_id']}")).json
    assert entry["postings"][0]["amount_minor"] == 12_345 and entry["kind"] == "donation"
    trial = world.call("auditor", "GET", world.url("/trial-balance")).json
    assert trial["balanced"] is True


def test_a_retry_with_the_same_key_gets_the_first_answer_and_writes_nothing(world):
    key = uuid.uuid4().hex
    first = gift(world, 5_000, key=key)
    before = snapshot(world.db)

    again = gift(world, 5_000, key=key)

    assert again.status_code == first.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(world.db) == before


def test_a_key_reused_for_another_request_is_refused_and_writes_nothing(world):
    key = uuid.uuid4().hex
    gift(world, 5_000, key=key)
    before = snapshot(world.db)

    other = gift(world, 5_001, key=key)

    assert other.status_code == 409
    assert other.json["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in other.json["errors"]
    assert snapshot(world.db) == before


def test_a_money_write_without_a_key_is_refused(world):
    before = snapshot(world.db)
    response = world.call("fund_manager", "POST", world.url("/donations"), json={
        "fund_id": world.fund, "amount_minor": 100, "currency": "CNY", "channel": "bank", "received_on": DAY})

    assert response.status_code == 400
    assert response.json["code"] == "idempotency_key_missing"
    assert snapshot(world.db) == before


def test_racing_retries_with_one_key_record_one_gift(world):
    key, answers = uuid.uuid4().hex, []
    barrier = threading.Barrier(6)

    def send():
        barrier.wait()
        answers.append(gift(world, 7_700, key=key))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.get_data() for answer in answers}) == 1
    with world.db.read() as session:
        assert session.scalar(select(func.count()).where(Donation.organisation_id == world.org,
                                                         Donation.amount_minor == 7_700)) == 1


def test_refunds_go_back_the_way_the_gift_came_and_never_pass_it(world):
    donation = gift(world, 10_000).json
    bank = fund_balance(world, Role.BANK, world.fund)

    partial = world.call("fund_manager", "POST", world.url(f"/donations/{donation['id']}/refunds"),
                         json={"amount_minor": 4_000, "refunded_on": DAY, "reason": "donor asked"}, key="r1")
    before = snapshot(world.db)
    too_much = world.call("fund_manager", "POST", world.url(f"/donations/{donation['id']}/refunds"),
                          json={"amount_minor": 6_001, "refunded_on": DAY}, key="r2")

    assert partial.status_code == 201
    assert fund_balance(world, Role.BANK, world.fund) == bank - 4_000
    assert too_much.status_code == 422 and "amount_minor" in too_much.json["errors"]
    assert snapshot(world.db) == before
    detail = world.call("fund_manager", "GET", world.url(f"/donations/{donation['id']}")).json
    assert detail["refunded_minor"] == 4_000
    assert [refund["amount_minor"] for refund in detail["refunds"]] == [4_000]


def test_an_in_kind_gift_needs_its_description_and_valuation_and_is_not_refunded_in_money(world):
    missing = gift(world, 80_000, channel="in_kind", in_kind_description="书 books")
    given = gift(world, 80_000, channel="in_kind", in_kind_description="200 本图书 books",
                 valuation_basis="publisher's list price")
    refund = world.call("fund_manager", "POST", world.url(f"/donations/{given.json['id']}/refunds"),
                        json={"amount_minor": 100, "refunded_on": DAY}, key=uuid.uuid4().hex)

    assert missing.status_code == 422 and "valuation_basis" in missing.json["errors"]
    assert given.status_code == 201
    assert fund_balance(world, Role.INVENTORY, world.fund) == 80_000
    assert refund.status_code == 409 and refund.json["code"] == "invalid_state"


def _grant(world, amount=30_000, role="fund_manager"):
    return world.call(role, "POST", world.url("/grants"), json={
        "fund_id": world.fund, "amount_minor": amount, "currency": "CNY", "payee": "玉林长者食堂",
        "purpose": "meals for older residents", "category": "charitable_activities"})


def _step(world, role, grant_id, step):
    return world.call(role, "POST", world.url(f"/grants/{grant_id}/{step}"), json={}, key=uuid.uuid4().hex)


def test_a_grant_is_requested_approved_by_someone_else_and_paid(world):
    gift(world, 100_000)
    grant = _grant(world).json
    payable = fund_balance(world, Role.GRANTS_PAYABLE, world.fund)

    own = _step(world, "fund_manager", grant["id"], "approvals")
    approved = _step(world, "org_admin", grant["id"], "approvals")
    paid = _step(world, "org_admin", grant["id"], "payments")
    again = _step(world, "org_admin", grant["id"], "payments")

    assert grant["status"] == "requested" and grant["approved_entry_id"] is None
    assert own.status_code == 403 and own.json["code"] == "separation_of_duties"
    assert approved.json["status"] == "approved" and approved.json["approved_by"] == [world.users["org_admin"]]
    assert paid.json["status"] == "paid" and paid.json["paid_minor"] == 30_000
    assert [(payment["amount_minor"], payment["paid_by_user_id"]) for payment in paid.json["payments"]] == [
        (30_000, world.users["org_admin"])]
    assert again.status_code == 409 and again.json["code"] == "invalid_state"
    assert fund_balance(world, Role.GRANTS_PAYABLE, world.fund) == payable
    assert fund_balance(world, Role.PROGRAM_EXPENSE, world.fund) == 30_000


def _pay(world, role, grant_id, **body):
    return world.call(role, "POST", world.url(f"/grants/{grant_id}/payments"), json=body, key=uuid.uuid4().hex)


def test_a_grant_is_paid_in_parts_never_past_its_amount_and_never_by_its_requester(world):
    gift(world, 100_000)
    grant = _grant(world).json
    _step(world, "org_admin", grant["id"], "approvals")

    by_requester = _pay(world, "fund_manager", grant["id"], amount_minor=1_000)
    first = _pay(world, "org_admin", grant["id"], amount_minor=10_000)
    too_much = _pay(world, "org_admin", grant["id"], amount_minor=20_001)
    before = snapshot(world.db)
    refused_again = _pay(world, "org_admin", grant["id"], amount_minor=20_001)
    after_refusal = snapshot(world.db)
    rest = _pay(world, "org_admin", grant["id"])

    assert by_requester.status_code == 403 and by_requester.json["code"] == "separation_of_duties"
    assert (first.json["status"], first.json["paid_minor"]) == ("partly_paid", 10_000)
    assert too_much.status_code == 422 and too_much.json["errors"] == {
        "amount_minor": ["at most 20000 minor units of this grant remain to pay"]}
    assert refused_again.status_code == 422 and after_refusal == before
    assert (rest.json["status"], rest.json["paid_minor"]) == ("paid", 30_000)
    assert [payment["amount_minor"] for payment in rest.json["payments"]] == [10_000, 20_000]
    assert fund_balance(world, Role.GRANTS_PAYABLE, world.fund) == 0


def test_an_approved_grant_is_cancelled_and_its_unpaid_part_comes_back_to_the_fund(world):
    gift(world, 100_000)
    grant = _grant(world).json
    _step(world, "org_admin", grant["id"], "approvals")
    _pay(world, "org_admin", grant["id"], amount_minor=5_000)

    cancelled = world.call("org_admin", "POST", world.url(f"/grants/{grant['id']}/cancellation"),
                           json={"reason": "the kitchen closed"}, key=uuid.uuid4().hex)
    again = world.call("org_admin", "POST", world.url(f"/grants/{grant['id']}/cancellation"),
                       json={"reason": "the kitchen closed"}, key=uuid.uuid4().hex)
    without_reason = world.call("org_admin", "POST", world.url(f"/grants/{_grant(world).json['id']}/cancellation"),
                                json={}, key=uuid.uuid4().hex)

    assert cancelled.status_code == 200, cancelled.json
    assert (cancelled.json["status"], cancelled.json["paid_minor"], cancelled.json["cancelled_minor"]) == (
        "cancelled", 5_000, 25_000)
    assert cancelled.json["cancel_reason"] == "the kitchen closed"
    assert again.status_code == 409 and again.json["code"] == "invalid_state"
    assert without_reason.status_code == 422 and "reason" in without_reason.json["errors"]
    assert fund_balance(world, Role.GRANTS_PAYABLE, world.fund) == 0
    assert fund_balance(world, Role.PROGRAM_EXPENSE, world.fund) == 5_000
    entry = world.call("auditor", "GET", world.url(f"/entries/{cancelled.json['cancelled_entry_id']}")).json
    assert entry["kind"] == "grant_cancelled"


def test_a_refund_recorded_by_mistake_is_cancelled_through_the_refund_and_audited(world):
    donation = gift(world, 10_000).json
    bank = fund_balance(world, Role.BANK, world.fund)
    refund = world.call("fund_manager", "POST", world.url(f"/donations/{donation['id']}/refunds"),
                        json={"amount_minor": 4_000, "refunded_on": DAY}, key=uuid.uuid4().hex).json
    path = world.url(f"/donations/{donation['id']}/refunds/{refund['id']}/cancellation")

    cancelled = world.call("fund_manager", "POST", path, json={"reason": "typed the wrong gift"},
                           key=uuid.uuid4().hex)
    reversed_alone = world.call("fund_manager", "POST", world.url(f"/entries/{refund['entry_id']}/reversal"),
                                json={}, key=uuid.uuid4().hex)

    assert cancelled.status_code == 200, cancelled.json
    assert cancelled.json["cancelled_entry_id"] and cancelled.json["cancel_reason"] == "typed the wrong gift"
    detail = world.call("auditor", "GET", world.url(f"/donations/{donation['id']}")).json
    assert detail["refunded_minor"] == 0 and detail["refunds"][0]["cancelled_entry_id"]
    assert fund_balance(world, Role.BANK, world.fund) == bank
    assert reversed_alone.status_code == 409 and reversed_alone.json["code"] == "entry_kept_by_record"
    log = world.call("auditor", "GET", world.url("/audit-log")).json["items"]
    assert any(record["action"] == "donation.refund.cancel" and record["path"] == path for record in log)


def test_above_the_threshold_a_grant_needs_two_different_approvers(world):
    gift(world, 100_000)
    threshold = world.call("org_admin", "PATCH", world.url(""), json={"dual_approval_threshold_minor": 20_000})
    small, large = _grant(world, 20_000).json, _grant(world, 20_001).json

    first = _step(world, "org_admin", large["id"], "approvals")
    same_again = _step(world, "org_admin", large["id"], "approvals")
    second = _step(world, "second_admin", large["id"], "approvals")

    assert threshold.status_code == 200
    assert (small["approvals_required"], large["approvals_required"]) == (1, 2)
    assert first.json["status"] == "requested" and first.json["approved_entry_id"] is None
    assert same_again.status_code == 403 and same_again.json["code"] == "separation_of_duties"
    assert second.json["status"] == "approved"
    assert sorted(second.json["approved_by"]) == sorted([world.users["org_admin"], world.users["second_admin"]])
    listed = {g["id"]: g["approved_by"] for g in world.call("auditor", "GET", world.url("/grants")).json["items"]}
    assert listed == {small["id"]: [], large["id"]: second.json["approved_by"]}


def test_the_database_itself_refuses_the_requester_as_approver(world):
    grant = _grant(world).json
    with pytest.raises(DBAPIError) as refused, world.db.engine.begin() as connection:
        connection.execute(GrantApproval.__table__.insert().values(
            grant_id=grant["id"], user_id=world.users["fund_manager"],
            requested_by_user_id=world.users["fund_manager"], approved_at=func.now()))
    assert "not_the_requester" in str(refused.value)  # refused by that rule, not by some other one


def test_a_rejected_grant_posts_nothing_and_cannot_be_approved(world):
    grant = _grant(world).json
    before = snapshot(world.db)["balances"]

    rejected = _step(world, "org_admin", grant["id"], "rejection")
    late = _step(world, "second_admin", grant["id"], "approvals")

    assert rejected.json["status"] == "rejected"
    assert late.status_code == 409
    assert snapshot(world.db)["balances"] == before


def test_a_transfer_moves_money_between_two_funds_each_balanced(world):
    gift(world, 50_000)
    response = world.call("fund_manager", "POST", world.url("/transfers"), key=uuid.uuid4().hex, json={
        "from_fund_id": world.fund, "to_fund_id": world.general, "amount_minor": 20_000, "currency": "CNY",
        "effective_date": DAY, "description": "调拨 for the general fund"})

    assert response.status_code == 201
    assert fund_balance(world, Role.BANK, world.fund) == 30_000
    assert fund_balance(world, Role.BANK, world.general) == 20_000
    for fund in (world.fund, world.general):
        assert world.call("org_admin", "GET", world.url(f"/trial-balance?fund_id={fund}")).json["balanced"]
    listed = world.call("fund_manager", "GET", world.url("/transfers")).json["items"]
    assert [entry["id"] for entry in listed] == [response.json["id"]]


def test_an_entry_is_reversed_once(world):
    gift(world, 9_000)
    transfer = world.call("org_admin", "POST", world.url("/transfers"), key=uuid.uuid4().hex, json={
        "from_fund_id": world.fund, "to_fund_id": world.general, "amount_minor": 4_000, "currency": "CNY",
        "effective_date": DAY}).json
    path = world.url(f"/entries/{transfer['id']}/reversal")

    reversal = world.call("org_admin", "POST", path, json={}, key=uuid.uuid4().hex)
    twice = world.call("org_admin", "POST", path, json={}, key=uuid.uuid4().hex)

    assert reversal.status_code == 201 and reversal.json["reverses_entry_id"] == transfer["id"]
    assert twice.status_code == 409 and twice.json["code"] == "entry_already_reversed"
    assert fund_balance(world, Role.BANK, world.fund) == 9_000
    assert fund_balance(world, Role.BANK, world.general) == 0


def test_an_entry_that_records_a_gift_or_a_grant_is_not_reversed_on_its_own(world):
    donation = gift(world, 50_000).json
    grant = _grant(world, 1_000).json
    approved = _step(world, "org_admin", grant["id"], "approvals").json
    before = snapshot(world.db)

    answers = [world.call("org_admin", "POST", world.url(f"/entries/{entry}/reversal"), json={},
                          key=uuid.uuid4().hex) for entry in (donation["entry_id"], approved["approved_entry_id"])]

    assert [(a.status_code, a.json["code"]) for a in answers] == [(409, "entry_kept_by_record")] * 2
    assert snapshot(world.db) == before
    refund = world.call("org_admin", "POST", world.url(f"/donations/{donation['id']}/refunds"),
                        json={"amount_minor": 50_000, "refunded_on": DAY}, key=uuid.uuid4().hex)
    assert refund.status_code == 201  # the gift is undone through the gift


def test_a_statement_from_the_first_day_of_the_calendar_answers(world):
    gift(world, 1_234)
    account = world.db.write(lambda session: load_chart(session, world.org).account(Role.BANK))

    response = world.call("auditor", "GET", world.url(f"/accounts/{account}/statement?date_from=0001-01-01"))

    assert response.status_code == 200 and [line["debit_minor"] for line in response.json["lines"]] == [1_234]


def test_an_oversized_audit_record_stays_readable_json(world):
    created = world.call("org_admin", "POST", world.url("/funds"), json={
        "code": "\x01" * 40, "name": "\x01" * 200, "kind": "project", "restricted": False,
        "purpose": "\x01" * 2_000})

    log = world.call("auditor", "GET", world.url("/audit-log"))

    assert created.status_code == 201
    assert log.status_code == 200
    [record] = [r for r in log.json["items"] if r["action"] == "fund.create"]
    assert record["details"]["truncated"] is True and len(record["details"]["sha256"]) == 64


def test_csv_cells_that_a_spreadsheet_would_run_are_made_inert(world):
    world.call("fund_manager", "POST", world.url("/donors"), json={"name": '=HYPERLINK("http://x.example")'})

    donors = world.call("auditor", "GET", world.url("/donors"), headers={"Accept": "text/csv"})

    [donor] = list(csv.DictReader(io.StringIO(donors.get_data(as_text=True))))
    assert donor["name"] == "'=HYPERLINK(\"http://x.example\")"


def test_made_up_tokens_count_against_the_address(db):
    app = make_app(db, RATELIMIT_DEFAULT="3 per minute")
    try:
        answers = [app.test_client().get("/api/v1/me", headers={
            "Authorization": f"Bearer fl_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"}).status_code
            for _ in range(4)]
    finally:
        app.extensions["ledger_db"].dispose()

    assert answers == [401, 401, 401, 429]


def test_a_closed_month_refuses_gifts_dated_in_it_until_reopened(world):
    close = world.call("org_admin", "POST", world.url("/periods/2026/11/close"))
    before = snapshot(world.db)
    refused = gift(world, 1_000)
    after_refusal = snapshot(world.db)
    world.call("org_admin", "POST", world.url("/periods/2026/11/reopen"))
    accepted = gift(world, 1_000)

    assert close.status_code == 200 and close.json["status"] == "closed"
    assert refused.status_code == 422 and refused.json["code"] == "period_closed"
    assert "received_on" in refused.json["errors"]
    assert after_refusal == before
    assert accepted.status_code == 201


def test_every_write_is_in_the_append_only_audit_log(world):
    donation = gift(world, 3_000, reference="audit-me").json

    records = world.call("auditor", "GET", world.url("/audit-log")).json["items"]

    [record] = [r for r in records if r["action"] == "donation.record"]
    assert record["user_id"] == world.users["fund_manager"]
    assert record["remote_addr"] == "127.0.0.1" and record["method"] == "POST"
    assert record["details"]["body"]["reference"] == "audit-me"
    assert record["details"]["answer"]["id"] == donation["id"]
    for change in (update(AuditRecord).where(AuditRecord.id == record["id"]).values(action="nothing"),
                   text("DELETE FROM audit_log")):
        with pytest.raises(DBAPIError) as refused, world.db.engine.begin() as connection:
            connection.execute(change)
        assert "append-only" in str(refused.value)


def test_pages_follow_each_other_without_gaps_or_repeats(world):
    ids = sorted(gift(world, 100 + n).json["id"] for n in range(5))

    seen, after = [], None
    while True:
        query = f"?limit=2&fund_id={world.fund}" + (f"&after={after}" if after else "")
        page = world.call("auditor", "GET", world.url("/donations" + query)).json
        seen += [item["id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break

    assert seen == ids
    too_big = world.call("auditor", "GET", world.url("/donations?limit=501"))
    assert too_big.status_code == 422 and "limit" in too_big.json["errors"]


def test_lists_and_statements_answer_as_csv(world):
    gift(world, 4_321, reference="CSV-1")
    account = world.db.write(lambda session: load_chart(session, world.org).account(Role.BANK))

    donations = world.call("auditor", "GET", world.url("/donations"), headers={"Accept": "text/csv"})
    statement = world.call("auditor", "GET", world.url(f"/accounts/{account}/statement"),
                           headers={"Accept": "text/csv"})
    entries = world.call("auditor", "GET", world.url("/entries"), headers={"Accept": "text/csv"})

    assert donations.mimetype == statement.mimetype == entries.mimetype == "text/csv"
    [row] = list(csv.DictReader(io.StringIO(donations.get_data(as_text=True))))
    assert (row["amount_minor"], row["reference"]) == ("4321", "CSV-1")
    [line] = list(csv.DictReader(io.StringIO(statement.get_data(as_text=True))))
    assert (line["debit_minor"], line["balance_minor"]) == ("4321", "4321")
    assert "amount_minor" in entries.get_data(as_text=True).splitlines()[0]


def _csv(world, path: str) -> tuple[object, list[dict]]:
    response = world.call("auditor", "GET", world.url(path), headers={"Accept": "text/csv"})
    return response, list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_a_csv_export_is_whole_and_streamed_whatever_the_page_size(world):
    """More rows than a page of the largest size (500), and a `limit` that would cut them: every row comes, in id
    order, streamed rather than built in memory."""
    chart, run = world.db.write(lambda session: load_chart(session, world.org)), uuid.uuid4().hex
    drafts = [offline_donation(chart, world.general, Money(100 + n, "CNY"), "bank",
                               Particulars(dt.date(2026, 11, 1), f"bulk-{run}-{n:05d}", "import"))
              for n in range(1_203)]
    world.db.write(lambda session: post_entries(session, drafts))
    for amount in (11, 22, 33):
        gift(world, amount)
    account = chart.account(Role.BANK)

    entries, entry_rows = _csv(world, f"/entries?limit=2&fund_id={world.general}")
    _, donation_rows = _csv(world, "/donations?limit=1")
    _, statement_lines = _csv(world, f"/accounts/{account}/statement?limit=3&fund_id={world.general}")
    _, audit_rows = _csv(world, "/audit-log?limit=1")

    assert "Content-Length" not in entries.headers  # streamed: its length is not known when it starts
    assert len(entry_rows) == 1_203 and [row["amount_minor"] for row in entry_rows[:2]] == ["100", "101"]
    assert len({row["entry_id"] for row in entry_rows}) == 1_203
    assert [row["amount_minor"] for row in donation_rows][-3:] == ["11", "22", "33"]
    assert len(statement_lines) == 1_203 and statement_lines[-1]["balance_minor"] == str(sum(range(100, 1_303)))
    assert len(audit_rows) >= 3


def test_signing_in_gives_a_working_token_and_revoking_it_ends_it(world):
    with world.db.read() as session:
        email = session.execute(text("SELECT email FROM users WHERE id = :id"),
                                {"id": world.users["auditor"]}).scalar_one()
    wrong = world.app.test_client().post("/api/v1/tokens", json={"email": email, "password": "not it at all"})
    signed_in = world.app.test_client().post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    token = signed_in.json["token"]
    headers = {"Authorization": f"Bearer {token}"}

    me = world.app.test_client().get("/api/v1/me", headers=headers)
    revoked = world.app.test_client().delete("/api/v1/tokens/current", headers=headers)
    after = world.app.test_client().get("/api/v1/me", headers=headers)

    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
    assert signed_in.status_code == 201 and token.startswith("fl_")
    assert me.json["user_id"] == world.users["auditor"]
    assert revoked.status_code == 204
    assert after.status_code == 401 and after.json["code"] == "unauthenticated"


def test_an_expired_token_no_longer_works(world):
    prefix = world.tokens["auditor"].split("_")[1]
    with world.db.engine.begin() as connection:
        connection.execute(update(ApiToken).where(ApiToken.prefix == prefix)
                           .values(expires_at=func.now() - text("INTERVAL '1 day'")
                                   if world.db.dialect == "postgresql" else text("datetime('now', '-1 day')")))

    assert world.call("auditor", "GET", "/api/v1/me").status_code == 401


def test_an_org_admin_gives_a_fund_manager_a_fund_and_takes_it_away(world):
    email = world.db.write(lambda session: session.execute(
        text("SELECT email FROM users WHERE id = :id"), {"id": world.users["spare"]}).scalar_one())

    given = world.call("org_admin", "POST", world.url("/members"),
                       json={"email": email, "role": "fund_manager", "fund_ids": [world.other_fund]})
    allowed = gift(world, 100, fund=world.other_fund, role="spare")
    removed = world.call("org_admin", "DELETE", world.url(f"/members/{world.users['spare']}"))
    refused = gift(world, 100, fund=world.other_fund, role="spare")

    assert given.json["fund_ids"] == [world.other_fund]
    assert allowed.status_code == 201
    assert removed.status_code == 204
    assert refused.status_code == 403


def test_every_answer_carries_the_security_headers(world):
    for response in (world.call("auditor", "GET", "/api/v1/me"), world.call(None, "GET", "/api/v1/nowhere"),
                     world.call(None, "GET", "/api/v1/organisations")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
    docs = world.call(None, "GET", "/api/docs/")
    assert "script-src 'self' 'unsafe-inline'" in docs.headers["Content-Security-Policy"]


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_rate_limits_answer_429_per_token_and_per_address(db, storage, request):
    # Redis: the counters every worker shares (REDIS_URL); memory: one process's own.
    uri = request.getfixturevalue("redis_url") if storage == "redis" else "memory://"
    if storage == "redis":
        import redis

        redis.Redis.from_url(uri).flushdb()  # the other engine's run counted the same address
    app = make_app(db, RATELIMIT_DEFAULT="3 per minute", RATELIMIT_SIGN_IN="2 per minute",
                   RATELIMIT_STORAGE_URI=uri)
    world = make_world(app)
    try:
        # One allowance per caller over every route, not one per route; the health checks are never counted.
        responses = [world.call("auditor", "GET", path) for path in (
            "/api/v1/me", "/api/v1/organisations", world.url("/trial-balance"), "/api/v1/me")]
        probes = [app.test_client().get(path).status_code for path in ("/health/live", "/health") * 3]
        other_token = world.call("org_admin", "GET", "/api/v1/me")
        sign_ins = [app.test_client().post("/api/v1/tokens", json={"email": "x@example.org", "password": "p"})
                    for _ in range(3)]
    finally:
        app.extensions["ledger_db"].dispose()

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert probes == [200] * 6
    assert other_token.status_code == 200
    assert [r.status_code for r in sign_ins] == [401, 401, 429]
    assert sign_ins[-1].mimetype == "application/problem+json"
    # When to come back: within the minute the limits count, and never "now".
    for refused in (responses[-1], sign_ins[-1]):
        assert 1 <= int(refused.headers["Retry-After"]) <= 61, refused.headers.get("Retry-After")
    assert "Retry-After" not in responses[0].headers
    if storage == "redis":
        assert redis.Redis.from_url(uri).keys("*fundledger*"), "the counters are not in Redis"


def test_rate_limits_count_in_memory_while_redis_cannot_be_reached(db):
    """A Redis outage fails no request: the limiter counts in the process's memory until Redis is back, the health
    checks answer, and a refused write is still answered and recorded."""
    app = make_app(db, RATELIMIT_DEFAULT="4 per minute", RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    world = make_world(app)
    try:
        probes = [app.test_client().get(path).status_code for path in ("/health/live", "/health")]
        answers = [world.call("auditor", "GET", "/api/v1/me").status_code for _ in range(2)]
        refused = world.call("org_admin", "POST", world.url("/donations"), json={"amount_minor": 1})
        over = [world.call("auditor", "GET", "/api/v1/me").status_code for _ in range(3)]
        with world.db.read() as session:
            recorded = session.scalar(select(func.count()).select_from(AuditRecord).where(
                AuditRecord.status_code == 422, AuditRecord.path == world.url("/donations")))
    finally:
        app.extensions["ledger_db"].dispose()

    assert probes == [200, 200] and answers == [200, 200]
    assert refused.status_code == 422 and recorded == 1
    assert over == [200, 200, 429]  # counted still, per token: the auditor's fifth is refused


def test_secrets_never_reach_the_audit_log(world):
    created = world.call("platform_admin", "POST", "/api/v1/users",
                         json={"email": f"new-{uuid.uuid4().hex[:6]}@example.org", "password": "a secret passphrase"})
    email = created.json["email"]
    signed_in = world.app.test_client().post("/api/v1/tokens", json={"email": email,
                                                                     "password": "a secret passphrase"})

    with world.db.read() as session:
        details = session.scalars(select(AuditRecord.details).where(AuditRecord.details.contains(email))).all()
        issued = session.scalars(select(AuditRecord.details).where(
            AuditRecord.action == "token.issue", AuditRecord.user_id == created.json["id"])).all()
    assert created.status_code == 201 and signed_in.status_code == 201
    assert details and issued
    for text_ in (*details, *issued):
        assert "a secret passphrase" not in text_ and signed_in.json["token"] not in text_
    assert '"password": "[redacted]"' in details[0]


def test_donors_and_the_audit_log_answer_as_csv_too(world):
    world.call("org_admin", "POST", world.url("/donors"), json={"name": "赵六", "phone": "13700000000"})

    donors = world.call("auditor", "GET", world.url("/donors"), headers={"Accept": "text/csv"})
    log = world.call("auditor", "GET", world.url("/audit-log"), headers={"Accept": "text/csv"})

    [donor] = list(csv.DictReader(io.StringIO(donors.get_data(as_text=True))))
    assert (donor["name"], donor["phone"], donor["public_name"]) == ("赵六", "13700000000", "赵*")
    [record] = list(csv.DictReader(io.StringIO(log.get_data(as_text=True))))
    assert record["action"] == "donor.create" and "赵六" in record["details"]


def test_every_paged_list_documents_csv_and_answers_it(world):
    spec = world.app.test_client().get("/api/openapi.json").json
    paged = {path: operation["get"]["responses"]["200"]["content"] for path, operation in spec["paths"].items()
             if operation.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
             .get("application/json", {}).get("schema", {}).get("$ref", "").endswith("Page")}
    assert len(paged) >= 11 and [path for path, content in paged.items() if "text/csv" not in content] == []

    gift(world, 1_234)
    account = world.db.write(lambda session: load_chart(session, world.org).account(Role.BANK))
    answers = {path: _csv(world, path) for path in (
        "/online-gifts", f"/statement-lines?account_id={account}", "/statements")}
    funds = world.app.test_client().get(f"/api/v1/organisations/{world.org}/funds?limit=1",
                                        headers={"Accept": "text/csv"})
    fund_rows = list(csv.DictReader(io.StringIO(funds.get_data(as_text=True))))

    assert {path: answer[0].mimetype for path, answer in answers.items()} == dict.fromkeys(answers, "text/csv")
    listed = world.app.test_client().get(f"/api/v1/organisations/{world.org}/funds?limit=500").json["items"]
    assert funds.mimetype == "text/csv" and len(listed) > 1  # every fund, whatever the limit, to anyone
    assert [(row["id"], row["code"]) for row in fund_rows] == [(str(fund["id"]), fund["code"]) for fund in listed]


def test_a_key_reused_on_another_route_is_refused_and_its_work_undone(world):
    key = uuid.uuid4().hex
    gift(world, 2_000, key=key)
    before = snapshot(world.db)

    other = world.call("fund_manager", "POST", world.url("/donors"), json={"name": "钱七"}, key=key)

    assert other.status_code == 409 and other.json["code"] == "idempotency_key_reused"
    assert snapshot(world.db) == before


def test_replays_of_writes_that_cannot_happen_twice_get_the_first_answer(world):
    gift(world, 10_000)
    grant = _grant(world).json
    approve_key, fund_key = uuid.uuid4().hex, uuid.uuid4().hex
    path = world.url(f"/grants/{grant['id']}/approvals")
    fund = {"code": "ONCE", "name": "一次", "kind": "project", "restricted": False}

    approved = world.call("org_admin", "POST", path, json={}, key=approve_key)
    created = world.call("org_admin", "POST", world.url("/funds"), json=fund, key=fund_key)
    before = snapshot(world.db)
    approved_again = world.call("org_admin", "POST", path, json={}, key=approve_key)
    created_again = world.call("org_admin", "POST", world.url("/funds"), json=fund, key=fund_key)
    unkeyed = world.call("org_admin", "POST", world.url("/funds"), json=fund)

    assert (approved_again.status_code, approved_again.get_data()) == (200, approved.get_data())
    assert (created_again.status_code, created_again.get_data()) == (201, created.get_data())
    assert approved_again.headers["Idempotent-Replayed"] == created_again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(world.db) == before
    assert unkeyed.status_code == 409  # without a key, a second fund of one code is a conflict


def test_integrity_tells_what_is_sealed_and_what_waits(world):
    from ledger.books.integrity import seal_pending

    sealed_gift = gift(world, 1_000).json
    seal_pending(world.db)
    gift(world, 2_000)

    status = world.call("auditor", "GET", world.url("/integrity")).json

    assert status["verified"] is True and status["problems"] == []
    assert status["sealed_through"]["last_entry_id"] == sealed_gift["entry_id"]
    assert status["sealed_through"]["sequence_no"] >= 1 and len(status["sealed_through"]["batch_hash"]) == 64
    assert status["unsealed_entries"] == 1


def test_signing_in_never_keeps_its_answer_so_a_token_is_never_stored_or_given_twice(world):
    email = world.call("platform_admin", "POST", "/api/v1/users", json={
        "email": f"twice-{uuid.uuid4().hex[:6]}@example.org", "password": PASSWORD}).json["email"]
    key = uuid.uuid4().hex
    client = world.app.test_client()

    first = client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD}, headers={"Idempotency-Key": key})
    second = client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD},
                         headers={"Idempotency-Key": key})

    assert first.status_code == second.status_code == 201
    assert first.json["token"] != second.json["token"] and "Idempotent-Replayed" not in second.headers
    with world.db.read() as session:
        kept = session.scalars(select(KeptAnswer.response_body).where(KeptAnswer.idempotency_key == key)).all()
    assert kept == []


OTHER_REVENUE = "4901"  # 其他收入: bank interest, say; no record keeps it


def _line(world, account: Role | str, side: str, amount: int, fund=None) -> dict:
    chart = world.db.write(lambda session: load_chart(session, world.org))
    account_id = chart.account(account) if isinstance(account, Role) else chart.by_code[account]
    return {"account_id": account_id, "fund_id": fund or world.fund, "side": side, "amount_minor": amount,
            "currency": "CNY"}


def test_a_manual_journal_entry_is_posted_idempotently_and_corrected_by_reversal(world):
    body = {"effective_date": DAY, "description": "bank interest for November",
            "lines": [_line(world, Role.BANK, "debit", 321), _line(world, OTHER_REVENUE, "credit", 321)]}
    key = uuid.uuid4().hex
    bank = fund_balance(world, Role.BANK, world.fund)

    posted = world.call("org_admin", "POST", world.url("/entries"), json=body, key=key)
    replayed = world.call("org_admin", "POST", world.url("/entries"), json=body, key=key)
    reversed_ = world.call("fund_manager", "POST", world.url(f"/entries/{posted.json['id']}/reversal"), json={},
                           key=uuid.uuid4().hex)

    assert posted.status_code == 201, posted.json
    assert posted.json["kind"] == "journal" and posted.json["description"] == "bank interest for November"
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json == posted.json
    assert reversed_.status_code == 201 and reversed_.json["reverses_entry_id"] == posted.json["id"]
    assert fund_balance(world, Role.BANK, world.fund) == bank
    log = world.call("auditor", "GET", world.url("/audit-log")).json["items"]
    assert any(record["action"] == "entry.create" for record in log)


@pytest.mark.parametrize("lines, field", [
    ([("BANK", "debit", 300), (OTHER_REVENUE, "credit", 200)], "lines"),
    ([("BANK", "debit", 300)], "lines"),
    ([("BANK", "sideways", 300), (OTHER_REVENUE, "credit", 300)], "lines"),
    ([("BANK", "credit", 10**9), (OTHER_REVENUE, "debit", 10**9)], "postings"),
    ([("GRANTS_PAYABLE", "debit", 300), ("BANK", "credit", 300)], "lines[0].account_id"),
    ([("BANK", "credit", 300), ("DONATION_REVENUE", "debit", 300)], "lines[1].account_id"),
])
def test_a_manual_entry_that_does_not_balance_overdraws_or_moves_a_record_s_money_is_refused(world, lines, field):
    body = {"effective_date": DAY, "description": "a mistake",
            "lines": [_line(world, account if account.isdigit() else Role[account], side, amount)
                      for account, side, amount in lines]}
    gift(world, 1_000)  # something in the bank: a payment out of it is refused for its account, not its limit
    before = snapshot(world.db)

    refused = world.call("org_admin", "POST", world.url("/entries"), json=body, key=uuid.uuid4().hex)

    assert refused.status_code in (409, 422), refused.json
    assert any(name.startswith(field) for name in refused.json["errors"]), refused.json
    assert snapshot(world.db) == before


def test_a_manual_entry_is_an_admin_s_and_names_an_unknown_fund_on_any_line(world):
    body = {"effective_date": DAY, "description": "from a fund manager",
            "lines": [_line(world, Role.BANK, "debit", 5), _line(world, OTHER_REVENUE, "credit", 5)]}
    elsewhere = {**body, "lines": [body["lines"][0], {**body["lines"][1], "fund_id": world.foreign_fund}]}

    by_manager = world.call("fund_manager", "POST", world.url("/entries"), json=body, key=uuid.uuid4().hex)
    unknown = world.call("org_admin", "POST", world.url("/entries"), json=elsewhere, key=uuid.uuid4().hex)

    assert by_manager.status_code == 403
    assert unknown.status_code == 404 and "fund_id" in unknown.json["errors"]


def test_a_restricted_fund_is_released_from_restriction_and_an_unrestricted_one_is_not(world):
    restricted = world.call("org_admin", "POST", world.url("/funds"), json={
        "code": f"R{uuid.uuid4().hex[:6]}", "name": "限定性基金", "kind": "project", "restricted": True}).json["id"]
    body = {"amount_minor": 7_000, "currency": "CNY", "effective_date": DAY, "description": "purpose met"}

    released = world.call("org_admin", "POST", world.url(f"/funds/{restricted}/releases"), json=body,
                          key=uuid.uuid4().hex)
    refused = world.call("org_admin", "POST", world.url(f"/funds/{world.fund}/releases"), json=body,
                         key=uuid.uuid4().hex)

    assert released.status_code == 201, released.json
    assert released.json["kind"] == "release_from_restriction"
    assert fund_balance(world, Role.UNRESTRICTED_NET_ASSETS, restricted) == 7_000
    assert refused.status_code == 409 and refused.json["code"] == "invalid_state"


def test_an_idempotency_key_is_the_callers_own_so_another_user_reusing_it_makes_a_write_of_their_own(world):
    key = uuid.uuid4().hex
    first = gift(world, 1_111, key=key, role="fund_manager")
    before = snapshot(world.db)

    other = gift(world, 2_222, key=key, role="org_admin")
    same_again = gift(world, 2_222, key=key, role="org_admin")

    assert first.status_code == other.status_code == 201
    assert other.json["id"] != first.json["id"] and other.json["amount_minor"] == 2_222
    assert "Idempotent-Replayed" not in other.headers
    assert same_again.headers["Idempotent-Replayed"] == "true" and same_again.json == other.json
    grown = snapshot(world.db)
    assert grown["donations"] == before["donations"] + 1 and grown["entries"] == before["entries"] + 1


def test_the_books_open_on_a_day_set_by_the_admin_and_nothing_is_dated_before_it(world):
    moved = world.call("org_admin", "PATCH", world.url(""), json={"books_opened_on": "2026-11-20"})
    before = snapshot(world.db)
    early = world.call("fund_manager", "POST", world.url("/donations"), json={
        "fund_id": world.fund, "amount_minor": 100, "currency": "CNY", "channel": "bank",
        "received_on": "2026-11-19"}, key=uuid.uuid4().hex)
    after_refusal = snapshot(world.db)
    on_the_day = gift(world, 100)
    too_late = world.call("org_admin", "PATCH", world.url(""), json={"books_opened_on": "2026-11-21"})
    nothing = world.call("org_admin", "PATCH", world.url(""), json={})

    assert moved.status_code == 200 and moved.json["books_opened_on"] == "2026-11-20"
    assert early.status_code == 422 and after_refusal == before
    assert early.json["detail"].startswith("received_on: is before the organisation's books opened")
    assert on_the_day.status_code == 201
    assert too_late.status_code == 409 and "books_opened_on" in too_late.json["errors"]
    assert nothing.status_code == 422
    assert world.call("auditor", "GET", world.url("/periods")).json == []


def test_a_future_date_and_a_future_month_are_refused_naming_the_field(world):
    far = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=40))
    before = snapshot(world.db)

    gift_ahead = world.call("fund_manager", "POST", world.url("/donations"), json={
        "fund_id": world.fund, "amount_minor": 100, "currency": "CNY", "channel": "bank",
        "received_on": far.isoformat()}, key=uuid.uuid4().hex)
    close_ahead = world.call("org_admin", "POST", world.url(f"/periods/{far.year}/{far.month}/close"))

    assert gift_ahead.status_code == 422 and "received_on" in gift_ahead.json["errors"]
    assert close_ahead.status_code == 422 and "month" in close_ahead.json["errors"]
    assert snapshot(world.db) == before


def test_a_transfer_dated_before_the_money_came_is_refused_and_september_stays_whole(world):
    received = gift(world, 1_000, fund=world.general, received_on="2026-11-05")
    before = snapshot(world.db)

    backdated = world.call("fund_manager", "POST", world.url("/transfers"), json={
        "from_fund_id": world.general, "to_fund_id": world.fund, "amount_minor": 1_000, "currency": "CNY",
        "effective_date": "2026-09-15"}, key=uuid.uuid4().hex)
    september = world.call("org_admin", "GET", world.url(f"/trial-balance?fund_id={world.general}&as_of=2026-09-30"))

    assert received.status_code == 201
    assert backdated.status_code == 422 and backdated.json["code"] == "account_limit_exceeded"
    assert "on 2026-09-15" in backdated.json["detail"] and snapshot(world.db) == before
    assert september.json["balanced"] is True
    assert all(line["balance_minor"] >= 0 for line in september.json["lines"] if line["code"].startswith("1002"))


def test_the_root_tells_no_demo_password_where_the_demo_is_not_loaded(world):
    root = world.app.test_client().get("/")

    assert root.status_code == 200 and root.json["demo"] is None and root.json["documentation"] == "/api/docs/"
