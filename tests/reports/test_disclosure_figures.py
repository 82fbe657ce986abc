"""The disclosure tests read from an organisation's books, through the public API, on a hand-made year: last
year's income ¥10,000,000 (a bank gift of 2025); this year (2026) ¥7,500,000 on charitable activities and ¥900,000
on management (above the ¥200,000 under which it is not judged), paid from the bank. Worked out here: net assets at
the end of 2025 are the ¥10,000,000 in the bank; charitable spending is 75 % of last year's income; management is
900,000 / 8,400,000 = 10.71 % of the year's spending.
"""

from __future__ import annotations

import uuid

YEAR = 2026


def accounts(world) -> dict[str, int]:
    rows = world.call("auditor", "GET", world.url("/accounts")).json
    return {row["code"]: row["id"] for row in rows}


def spend(world, code: str, amount: int, chart: dict[str, int]) -> None:
    answer = world.call("org_admin", "POST", world.url("/entries"), {
        "effective_date": f"{YEAR}-03-01", "description": f"spent on {code}", "lines": [
            {"account_id": chart[code], "fund_id": world.fund, "side": "debit", "amount_minor": amount,
             "currency": "CNY"},
            {"account_id": chart["1002"], "fund_id": world.fund, "side": "credit", "amount_minor": amount,
             "currency": "CNY"}]}, key=uuid.uuid4().hex)
    assert answer.status_code == 201, answer.json


def year_of(world) -> None:
    gift = world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": 1_000_000_000, "currency": "CNY", "channel": "bank",
        "received_on": f"{YEAR - 1}-06-01"}, key=uuid.uuid4().hex)
    assert gift.status_code == 201, gift.json
    chart = accounts(world)
    spend(world, "5101", 750_000_000, chart)
    spend(world, "5201", 90_000_000, chart)


def test_a_public_fundraising_foundations_year_read_from_its_books(world):
    year_of(world)
    world.call("org_admin", "PATCH", world.url(""), {"public_fundraising": True}, key=uuid.uuid4().hex)

    answer = world.call(None, "GET", world.url(f"/disclosure?year={YEAR}"))

    body = answer.json
    assert answer.status_code == 200 and body["public_fundraising"] is True and body["form"] == "foundation"
    assert body["figures"] == {
        "last_year_income_minor": 1_000_000_000, "last_year_end_net_assets_minor": 1_000_000_000,
        "charitable_spending_minor": 750_000_000, "management_minor": 90_000_000, "total_spending_minor": 840_000_000}
    spending, management = body["tests"]
    assert (spending["required_percent"], spending["actual_percent"], spending["met"]) == ("70.00", "75.00", True)
    assert (management["required_percent"], management["actual_percent"], management["met"]) == (
        "10.00", "10.71", False)


def test_without_public_fundraising_the_same_year_is_judged_by_its_net_assets(world):
    year_of(world)

    body = world.call(None, "GET", world.url(f"/disclosure?year={YEAR}")).json

    spending, management = body["tests"]  # (net assets ¥10,000,000: the ¥8M–¥60M tier, so 6 % and 13 %)
    assert body["public_fundraising"] is False
    assert (spending["required_percent"], spending["actual_percent"], spending["met"]) == ("6.00", "75.00", True)
    assert (management["required_percent"], management["actual_percent"], management["met"]) == (
        "13.00", "10.71", True)


def test_a_year_is_required_and_an_organisation_that_is_not_there_is_404(world):
    assert world.call(None, "GET", world.url("/disclosure")).status_code == 422
    assert world.call(None, "GET", world.url(f"/disclosure?year={YEAR}", org=999_999)).status_code == 404
