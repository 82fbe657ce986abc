"""A fund's and an organisation's public figures on a hand-made year, worked out here:

Fund MINE receives, in 2026: 李明 (consents to be named) ¥100.00 on 10 March and ¥50.00 on 2 April; 赵小红 (does
not consent) ¥300.00 on 5 April, of which ¥100.00 is refunded on 6 April; an anonymous ¥20.00 on 1 May. Two grants
are approved on 15 June: ¥200.00 to a person, 孙大伟 (paid on 20 June), and ¥50.00 to 玉林长者食堂 (unpaid).

So: raised 100 + 50 + 300 − 100 + 20 = ¥370.00; granted ¥250.00 (spent the same, as charitable activity costs);
in the bank 370 − 200 = ¥170.00, owed ¥50.00, so a balance (net assets) of ¥120.00; donors: two named and one
anonymous gift, 3; gifts 4. By month: March income ¥100.00; April 50 + 300 − 100 = ¥250.00; May ¥20.00; June
spending ¥250.00. The page names 李明 and masks the rest: 赵小红's gift is anonymous there, 孙大伟 is 孙*.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
import uuid

import pytest
from sqlalchemy import event

from tests.api.support import make_app

YEAR = 2026
PERSONAL = ("zhao@example.org", "+86 138 0000 1111", "锦城大道 1 号", "110101199003070011", "赵小红", "孙大伟",
            "li.ming@example.org")


def donor(world, name: str, consent: bool, **personal) -> int:
    answer = world.call("org_admin", "POST", world.url("/donors"), json={
        "name": name, "kind": "individual", "public_name_consent": consent, **personal})
    assert answer.status_code == 201, answer.json
    return answer.json["id"]


def give(world, amount: int, day: str, donor_id: int | None = None) -> dict:
    body = {"fund_id": world.fund, "amount_minor": amount, "currency": "CNY", "channel": "bank", "received_on": day}
    if donor_id is not None:
        body["donor_id"] = donor_id
    answer = world.call("org_admin", "POST", world.url("/donations"), body, key=uuid.uuid4().hex)
    assert answer.status_code == 201, answer.json
    return answer.json


def grant(world, amount: int, payee: str, kind: str, paid: bool) -> dict:
    asked = world.call("fund_manager", "POST", world.url("/grants"), json={
        "fund_id": world.fund, "amount_minor": amount, "currency": "CNY", "payee": payee, "payee_kind": kind,
        "purpose": "助老 help for older residents", "category": "charitable_activities"})
    assert asked.status_code == 201, asked.json
    step = world.call("org_admin", "POST", world.url(f"/grants/{asked.json['id']}/approvals"),
                      json={"effective_date": f"{YEAR}-06-15"}, key=uuid.uuid4().hex)
    assert step.status_code == 200, step.json
    if paid:
        step = world.call("org_admin", "POST", world.url(f"/grants/{asked.json['id']}/payments"),
                          json={"effective_date": f"{YEAR}-06-20"}, key=uuid.uuid4().hex)
        assert step.status_code == 200, step.json
    return step.json


def the_year(world) -> None:
    li = donor(world, "李明", True, email="li.ming@example.org")
    zhao = donor(world, "赵小红", False, email="zhao@example.org", phone="+86 138 0000 1111", address="锦城大道 1 号",
                 tax_id="110101199003070011")
    give(world, 10_000, f"{YEAR}-03-10", li)
    give(world, 5_000, f"{YEAR}-04-02", li)
    gift = give(world, 30_000, f"{YEAR}-04-05", zhao)
    refund = world.call("org_admin", "POST", world.url(f"/donations/{gift['id']}/refunds"),
                        json={"amount_minor": 10_000, "refunded_on": f"{YEAR}-04-06", "reason": "asked"},
                        key=uuid.uuid4().hex)
    assert refund.status_code == 201, refund.json
    give(world, 2_000, f"{YEAR}-05-01")
    grant(world, 20_000, "孙大伟", "individual", paid=True)
    grant(world, 5_000, "玉林长者食堂", "organisation", paid=False)


def data(world, path: str):
    return world.app.test_client().get(f"/data/o/{world.org}{path}")


def test_a_funds_figures_are_worked_out_from_the_aggregates(world):
    the_year(world)

    body = data(world, f"/f/{world.fund}.json").json

    fund = body["fund"]
    assert (fund["raised_minor"], fund["granted_minor"], fund["spent_minor"], fund["balance_minor"]) == (
        37_000, 25_000, 25_000, 12_000)
    assert (fund["gift_count"], fund["donor_count"], fund["anonymous_gift_count"], body["donors"]) == (4, 2, 1, 3)
    months = {month["month"][:7]: (month["income_minor"], month["spending_minor"]) for month in body["months"]}
    assert {month: figures for month, figures in months.items() if month.startswith(str(YEAR))
            and figures != (0, 0)} == {"2026-03": (10_000, 0), "2026-04": (25_000, 0), "2026-05": (2_000, 0),
                                       "2026-06": (0, 25_000)}
    assert [(gift["amount_minor"], gift["donor_name"]) for gift in body["recent_gifts"]] == [
        (2_000, None), (30_000, None), (5_000, "李明"), (10_000, "李明")]
    assert sorted((g["payee"], g["amount_minor"], g["paid_minor"]) for g in body["grants"]) == [
        ("孙*", 20_000, 20_000), ("玉林长者食堂", 5_000, 0)]
    with world.db.read() as session:
        from ledger.books.integrity import verify_gift_counts, verify_months
        assert verify_months(session, world.org) == [] and verify_gift_counts(session, world.org) == []


def figures_on(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="(\w+)">([^<]+)<', html))


def test_the_fund_page_shows_the_open_datas_figures_and_masks_who_did_not_consent(world):
    the_year(world)
    client = world.app.test_client()

    english = client.get(f"/o/{world.org}/f/{world.fund}?lang=en").get_data(as_text=True)
    chinese = client.get(f"/o/{world.org}/f/{world.fund}?lang=zh-CN").get_data(as_text=True)

    assert figures_on(english) == {"raised": "CN¥370.00", "granted": "CN¥250.00", "balance": "CN¥120.00",
                                   "donors": "3"}
    assert figures_on(chinese) == {"raised": "¥370.00", "granted": "¥250.00", "balance": "¥120.00", "donors": "3"}
    assert "李明" in english and "Anonymous" in english and "匿名" in chinese and "孙*" in chinese
    for page in (english, chinese):
        assert not [secret for secret in PERSONAL if secret in page]
    assert english.count("<rect") == 24 and "<script" not in english  # two bars a month, no script


def test_an_organisations_year_by_source_and_category_in_json_and_csv(world):
    the_year(world)

    body = data(world, f"/{YEAR}.json").json
    rows = list(csv.DictReader(io.StringIO(data(world, f"/{YEAR}.csv").get_data(as_text=True))))

    assert (body["income_minor"], body["spending_minor"]) == (37_000, 25_000)
    assert [(line["code"], line["amount_minor"]) for line in body["income"]] == [("4101", 37_000)]
    assert {line["category"]: line["amount_minor"] for line in body["spending"]} == {
        "charitable_activities": 25_000, "management": 0, "fundraising": 0, "other": 0}
    by_key = {(row["section"], row["key"]): row for row in rows}
    assert by_key[("total", "income")]["amount_minor"] == "37000"
    assert by_key[("spending", "charitable_activities")]["amount_minor"] == "25000"
    assert by_key[("fund", f"{world.fund}/balance")]["amount_minor"] == "12000"
    assert by_key[("fund", f"{world.fund}/donors")]["count"] == "3"
    page = world.app.test_client().get(f"/o/{world.org}?year={YEAR}&lang=en").get_data(as_text=True)
    assert figures_on(page) == {"income": "CN¥370.00", "spending": "CN¥250.00"}
    assert "孙*" in page and "孙大伟" not in page


def test_public_answers_carry_an_etag_and_last_modified_and_answer_304(world):
    the_year(world)
    client = world.app.test_client()

    for path in (f"/o/{world.org}/f/{world.fund}?lang=en", f"/data/o/{world.org}/f/{world.fund}.json",
                 f"/o/{world.org}?year={YEAR}&lang=en"):
        first = client.get(path)
        again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        since = client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]})
        assert first.status_code == 200 and first.headers["Last-Modified"] and "no-cache" in \
            first.headers["Cache-Control"]
        assert again.status_code == 304 and again.get_data() == b"" and since.status_code == 304
    before = client.get(f"/data/o/{world.org}/f/{world.fund}.json")
    give(world, 1_000, f"{YEAR}-07-01")
    after = client.get(f"/data/o/{world.org}/f/{world.fund}.json", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.json["fund"]["raised_minor"] == 38_000


def test_public_reads_go_to_the_replica_when_one_is_set(world):
    the_year(world)
    url = world.db.engine.url.render_as_string(hide_password=False)
    app = make_app(world.db, DATABASE_REPLICA_URL=url)  # a second connection pool to the same database
    primary, replica = app.extensions["ledger_db"], app.extensions["ledger_replica"]
    seen = {"primary": 0, "replica": 0}
    event.listen(primary.engine, "before_cursor_execute", lambda *_: seen.__setitem__("primary", seen["primary"] + 1))
    event.listen(replica.engine, "before_cursor_execute", lambda *_: seen.__setitem__("replica", seen["replica"] + 1))
    try:
        for path in (f"/o/{world.org}/f/{world.fund}", f"/data/o/{world.org}/f/{world.fund}.json",
                     f"/o/{world.org}?year={YEAR}", f"/data/o/{world.org}/{YEAR}.csv",
                     f"/api/v1/organisations/{world.org}/disclosure?year={YEAR}"):
            assert app.test_client().get(path).status_code == 200, path
        assert replica is not primary and seen["replica"] > 0 and seen["primary"] == 0
    finally:
        replica.dispose()
        primary.dispose()


@pytest.mark.parametrize("path", ["/data/o/999999/2026.json", "/data/o/999999/f/1.json", "/o/999999/f/1",
                                  "/data/o/999999/grants.csv"])
def test_what_is_not_there_is_a_404(world, path):
    assert world.app.test_client().get(path).status_code == 404


def test_the_home_page_finds_organisations_and_funds_by_name(world):
    client = world.app.test_client()
    html = {"Accept": "text/html"}

    found = client.get("/?lang=en&q=not_mine", headers=html).get_data(as_text=True)
    none = client.get("/?lang=en&q=zzz-no-such-fund", headers=html).get_data(as_text=True)

    assert f"/o/{world.org}/f/{world.other_fund}" in found and f"/o/{world.org}/f/{world.fund}?" not in found
    assert "Nothing matches “zzz-no-such-fund”." in none and "/f/" not in none


def statements_of(world, path: str) -> int:
    """How many statements the database ran to answer ``path`` (SQLite's BEGIN aside)."""
    seen = []

    def listener(_connection, _cursor, statement, *_):
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(world.db.engine, "before_cursor_execute", listener)
    try:
        assert world.app.test_client().get(path).status_code == 200
    finally:
        event.remove(world.db.engine, "before_cursor_execute", listener)
    return len(seen)


def test_a_kept_page_costs_one_read_and_is_made_again_when_anything_it_shows_changes(world):
    the_year(world)
    page = f"/o/{world.org}/f/{world.fund}?lang=en"
    client = world.app.test_client()
    first = statements_of(world, page)

    again = statements_of(world, page)
    open_before = client.get(page).get_data(as_text=True)
    closed = world.call("org_admin", "PATCH", world.url(f"/funds/{world.fund}"), {"status": "closed"},
                        key=uuid.uuid4().hex)
    after_closing = client.get(page).get_data(as_text=True)
    world.call("org_admin", "PATCH", world.url(""), {"public_fundraising": True}, key=uuid.uuid4().hex)
    organisation = client.get(f"/o/{world.org}?year={YEAR}&lang=en").get_data(as_text=True)
    world.call("org_admin", "POST", world.url("/reports"), key=uuid.uuid4().hex,
               json={"period_start": f"{YEAR}-03-01", "period_end": f"{YEAR}-03-31"})

    assert first > 5 and again == 1  # kept: only the organisation's version is read
    assert 'class="give"' in open_before and closed.status_code == 200 and 'class="give"' not in after_closing
    assert "Holds public-fundraising status" in organisation
    assert "data-report=" in client.get(f"/o/{world.org}?year={YEAR}&lang=en").get_data(as_text=True)


def test_two_first_gifts_of_one_donor_written_at_once_count_one_donor(world):
    """The second gift's transaction starts while the first is uncommitted: its count waits for the first, then
    sees its gift (on SQLite the second writer waits at BEGIN IMMEDIATE instead)."""
    from ledger.giving.donations import GiftRecord, record_donation

    donor_id = donor(world, "周同时", True)
    gift = GiftRecord(world.fund, 1_000, "CNY", "bank", dt.date(YEAR, 8, 1), donor_id)
    started, second_done = threading.Event(), threading.Event()

    def second() -> None:
        started.wait()
        world.db.write(lambda session: record_donation(session, world.org, gift, idempotency_key="second",
                                                       recorded_by="test"))
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with world.db.session() as session:
        record_donation(session, world.org, gift, idempotency_key="first", recorded_by="test")
        session.flush()
        started.set()
        assert not second_done.wait(0.5)  # the second writer waits for this one
        session.commit()
    thread.join(10)

    fund = data(world, f"/f/{world.fund}.json").json["fund"]
    assert second_done.is_set() and (fund["gift_count"], fund["donor_count"]) == (2, 1)
