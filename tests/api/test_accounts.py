"""A second bank account through the API: gifts go into it when named, refunds leave the account the gift went
into, grants are paid and transfers made from it, and it can become the bank role's default."""

from __future__ import annotations

import uuid

import pytest

from tests.api.support import snapshot

DAY = "2026-11-20"


def _add_bank(world, **extra) -> dict:
    response = world.call("org_admin", "POST", world.url("/accounts"), json={
        "code": f"1002.{uuid.uuid4().hex[:4]}", "name_zh": "银行存款—招商银行", "name_en": "Bank deposits, CMB",
        "type": "asset", "role": "bank", "balance_limit": "credits_must_not_exceed_debits", **extra})
    assert response.status_code == 201, response.json
    return response.json


def _balance(world, account_id: int, fund: int) -> int:
    lines = world.call("org_admin", "GET", world.url(f"/funds/{fund}/balances")).json
    return next((line["balance_minor"] for line in lines if line["account_id"] == account_id), 0)


def _default_bank(world) -> int:
    accounts = world.call("auditor", "GET", world.url("/accounts")).json
    return next(account["id"] for account in accounts if account["role"] == "bank" and account["role_default"])


def _gift(world, amount: int, **extra):
    return world.call("fund_manager", "POST", world.url("/donations"), key=uuid.uuid4().hex, json={
        "fund_id": world.fund, "amount_minor": amount, "currency": "CNY", "channel": "bank", "received_on": DAY,
        **extra})


def test_a_second_bank_account_joins_the_chart_beside_the_default(world):
    default = _default_bank(world)

    added = _add_bank(world)

    assert (added["role"], added["role_default"], added["normal_balance"]) == ("bank", False, "debit")
    assert _default_bank(world) == default


def test_money_goes_into_the_bank_account_named_and_leaves_it_again(world):
    second, default = _add_bank(world)["id"], _default_bank(world)
    gift = _gift(world, 90_000, account_id=second).json
    refund = world.call("fund_manager", "POST", world.url(f"/donations/{gift['id']}/refunds"), key=uuid.uuid4().hex,
                        json={"amount_minor": 10_000, "refunded_on": DAY})
    grant = world.call("fund_manager", "POST", world.url("/grants"), json={
        "fund_id": world.fund, "amount_minor": 30_000, "currency": "CNY", "payee": "p", "purpose": "p",
        "category": "charitable_activities"}).json
    world.call("org_admin", "POST", world.url(f"/grants/{grant['id']}/approvals"), key=uuid.uuid4().hex, json={})
    paid = world.call("org_admin", "POST", world.url(f"/grants/{grant['id']}/payments"), key=uuid.uuid4().hex,
                      json={"bank_account_id": second})
    moved = world.call("fund_manager", "POST", world.url("/transfers"), key=uuid.uuid4().hex, json={
        "from_fund_id": world.fund, "to_fund_id": world.general, "amount_minor": 5_000, "currency": "CNY",
        "effective_date": DAY, "from_account_id": second})

    assert (refund.status_code, paid.status_code, moved.status_code) == (201, 200, 201)
    assert _balance(world, second, world.fund) == 90_000 - 10_000 - 30_000 - 5_000
    assert _balance(world, default, world.fund) == 0
    assert _balance(world, default, world.general) == 5_000


def test_a_bank_account_made_the_default_takes_the_gifts_that_name_none(world):
    first, second = _default_bank(world), _add_bank(world)["id"]

    made = world.call("org_admin", "PATCH", world.url(f"/accounts/{second}"), json={"role_default": True})
    _gift(world, 4_000)

    assert made.status_code == 200 and made.json["role_default"] is True
    assert _default_bank(world) == second
    assert (_balance(world, second, world.fund), _balance(world, first, world.fund)) == (4_000, 0)


@pytest.mark.parametrize(("name", "extra", "field"), [
    ("a revenue account as the bank", "revenue", "account_id"),
    ("an account of another organisation", "foreign", "account_id"),
    ("cash into a bank account", "cash", "account_id"),
])
def test_a_gift_into_an_account_that_is_not_its_channels_is_refused_and_writes_nothing(world, name, extra, field):
    second = _add_bank(world)["id"]
    accounts = world.call("auditor", "GET", world.url("/accounts")).json
    revenue = next(account["id"] for account in accounts if account["role"] == "donation_revenue")
    foreign = world.call("other_admin", "GET", world.url("/accounts", org=world.other_org)).json[0]["id"]
    body = {"revenue": {"account_id": revenue}, "foreign": {"account_id": foreign},
            "cash": {"account_id": second, "channel": "cash"}}[extra]
    before = snapshot(world.db)

    refused = _gift(world, 1_000, **body)

    assert refused.status_code == 422, name
    assert field in refused.json["errors"]
    assert snapshot(world.db) == before
