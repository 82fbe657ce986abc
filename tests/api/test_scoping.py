"""What each caller's answers hold: a fund manager's lists show their own funds' records and nothing of the
organisation's other funds; a switched-off user's token stops working at once."""

from __future__ import annotations

import uuid

from tests.api.support import PASSWORD

DAY = "2026-11-20"


def _record_in(world, fund: int, amount: int) -> dict:
    """A gift and a grant in the fund, and a transfer out of it into the general fund, made by the org admin."""
    gift = world.call("org_admin", "POST", world.url("/donations"), key=uuid.uuid4().hex, json={
        "fund_id": fund, "amount_minor": amount, "currency": "CNY", "channel": "bank", "received_on": DAY})
    grant = world.call("org_admin", "POST", world.url("/grants"), json={
        "fund_id": fund, "amount_minor": amount // 10, "currency": "CNY", "payee": "payee", "purpose": "purpose",
        "category": "charitable_activities"})
    assert gift.status_code == 201 and grant.status_code == 201, (gift.json, grant.json)
    return {"donation": gift.json["id"], "entry": gift.json["entry_id"], "grant": grant.json["id"]}


def _listed(world, caller: str) -> dict[str, set[int]]:
    lists = {name: world.call(caller, "GET", world.url(path)) for name, path in
             (("donations", "/donations"), ("grants", "/grants"), ("entries", "/entries"))}
    assert all(response.status_code == 200 for response in lists.values())
    return {name: {item["id"] for item in response.json["items"]} for name, response in lists.items()}


def test_a_fund_managers_lists_hold_their_funds_records_and_none_of_the_other_funds(world):
    theirs = _record_in(world, world.fund, 50_000)
    not_theirs = _record_in(world, world.other_fund, 70_000)

    managers = _listed(world, "fund_manager")
    auditors = _listed(world, "auditor")

    assert theirs["donation"] in managers["donations"] and not_theirs["donation"] not in managers["donations"]
    assert theirs["grant"] in managers["grants"] and not_theirs["grant"] not in managers["grants"]
    assert theirs["entry"] in managers["entries"] and not_theirs["entry"] not in managers["entries"]
    assert {not_theirs["donation"], theirs["donation"]} <= auditors["donations"]
    assert {not_theirs["grant"], theirs["grant"]} <= auditors["grants"]
    assert {not_theirs["entry"], theirs["entry"]} <= auditors["entries"]


def test_a_fund_managers_transfers_list_holds_only_transfers_touching_their_funds(world):
    third = world.call("org_admin", "POST", world.url("/funds"), json={
        "code": f"T{uuid.uuid4().hex[:6]}", "name": "third", "kind": "project", "restricted": False}).json["id"]
    _record_in(world, world.other_fund, 70_000)
    between_others = world.call("org_admin", "POST", world.url("/transfers"), key=uuid.uuid4().hex, json={
        "from_fund_id": world.other_fund, "to_fund_id": third, "amount_minor": 100, "currency": "CNY",
        "effective_date": DAY})
    into_theirs = world.call("org_admin", "POST", world.url("/transfers"), key=uuid.uuid4().hex, json={
        "from_fund_id": world.other_fund, "to_fund_id": world.fund, "amount_minor": 100, "currency": "CNY",
        "effective_date": DAY})
    assert between_others.status_code == into_theirs.status_code == 201

    managers = [item["id"] for item in world.call("fund_manager", "GET", world.url("/transfers")).json["items"]]
    auditors = [item["id"] for item in world.call("auditor", "GET", world.url("/transfers")).json["items"]]

    assert managers == [into_theirs.json["id"]]
    assert auditors == [between_others.json["id"], into_theirs.json["id"]]


def test_a_switched_off_users_token_stops_working_at_once(world):
    assert world.call("fund_manager", "GET", "/api/v1/me").status_code == 200
    email = world.call("fund_manager", "GET", "/api/v1/me").json["email"]

    disabled = world.app.test_cli_runner().invoke(args=["users", "disable", "--email", email])

    assert disabled.exit_code == 0, disabled.output
    refused = world.call("fund_manager", "GET", "/api/v1/me")
    assert refused.status_code == 401 and refused.json["code"] == "unauthenticated"
    signing_in = world.app.test_client().post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    assert signing_in.status_code == 401
