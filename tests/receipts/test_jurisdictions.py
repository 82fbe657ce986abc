"""What each jurisdiction adds: a fiscal year for annual receipts, Canada's issuer address and signatory, the UK's
Gift Aid declarations recorded with the donor and stated on the receipt."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.receipts.test_pdf_and_verification import pdf_of, text_of
from tests.receipts.test_register import donor, key, receipts_of

TODAY = dt.date.today()


def settings(world, **changes) -> dict:
    body = {"prefix": f"J{uuid.uuid4().hex[:6].upper()}", "timing": "per_donation", "jurisdiction": "CN",
            "language": "en", **changes}
    answer = world.call("org_admin", "PUT", world.url("/receipt-settings"), body, key=key())
    assert answer.status_code == 200, answer.json
    return answer.json


def gift_on(world, day: dt.date, donor_id: int, amount: int = 1_000) -> dict:
    answer = world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": amount, "currency": "CNY", "channel": "bank",
        "received_on": day.isoformat(), "donor_id": donor_id}, key=key())
    assert answer.status_code == 201, answer.json
    return answer.json


def test_annual_receipts_cover_the_organisations_year(world):
    """A year starting in the month before this one: a gift of last month is in this year's receipt, a gift of two
    months ago (before the year began) is not."""
    start = (TODAY.replace(day=1) - dt.timedelta(days=1)).replace(day=1)  # the first of last month
    settings(world, timing="annual", fiscal_year_start_month=start.month)
    who = donor(world)
    inside, before = gift_on(world, start, who), gift_on(world, start - dt.timedelta(days=1), who)

    result = world.app.test_cli_runner().invoke(args=["receipts", "issue-annual", "--organisation", str(world.org),
                                                      "--year", str(start.year)])

    assert result.exit_code == 0, result.output
    assert receipts_of(world, inside["id"])[0]["kind"] == "annual" and receipts_of(world, before["id"]) == []


def test_a_month_that_is_no_month_is_refused_naming_the_field(world):
    answer = world.call("org_admin", "PUT", world.url("/receipt-settings"), {
        "prefix": "OK", "timing": "annual", "jurisdiction": "CN", "language": "en", "fiscal_year_start_month": 13},
        key=key())

    assert answer.status_code == 422 and "fiscal_year_start_month" in answer.json["errors"]


def test_a_canadian_receipt_names_where_it_was_issued_and_who_signs(world):
    settings(world, jurisdiction="CA", issuer_address="100 Main Street, Toronto ON", signatory="Jane Doe, Treasurer")
    [receipt] = receipts_of(world, gift_on(world, TODAY, donor(world))["id"])

    text = text_of(pdf_of(world, receipt["id"]))

    for field in ("Official receipt for income tax purposes", "Issued at", "100 Main Street, Toronto ON",
                  "Authorized signature", "Jane Doe, Treasurer", "Eligible amount of gift"):
        assert field in text, field


def test_a_uk_receipt_states_the_donors_gift_aid_declaration(world):
    settings(world, jurisdiction="UK")
    declared, undeclared = donor(world, "Alice"), donor(world, "Bob")
    made = world.call("org_admin", "POST", world.url(f"/donors/{declared}/gift-aid-declarations"), {
        "declared_on": TODAY.isoformat(), "effective_from": (TODAY - dt.timedelta(days=365)).isoformat()}, key=key())
    [covered] = receipts_of(world, gift_on(world, TODAY - dt.timedelta(days=30), declared)["id"])
    [not_covered] = receipts_of(world, gift_on(world, TODAY, undeclared)["id"])

    assert made.status_code == 201 and made.json["cancelled_on"] is None
    assert "the charity may claim 25p for every £1" in text_of(pdf_of(world, covered["id"]))
    assert "No Gift Aid declaration covers these gifts" in text_of(pdf_of(world, not_covered["id"]))


def test_a_declaration_is_cancelled_once_and_reaches_back_four_years_at_most(world):
    who = donor(world)
    too_far = world.call("org_admin", "POST", world.url(f"/donors/{who}/gift-aid-declarations"), {
        "declared_on": TODAY.isoformat(), "effective_from": TODAY.replace(year=TODAY.year - 5).isoformat()},
        key=key())
    made = world.call("org_admin", "POST", world.url(f"/donors/{who}/gift-aid-declarations"),
                      {"declared_on": TODAY.isoformat()}, key=key()).json
    path = world.url(f"/donors/{who}/gift-aid-declarations/{made['id']}/cancellation")

    first = world.call("org_admin", "POST", path, {"cancelled_on": TODAY.isoformat()}, key=key())
    second = world.call("org_admin", "POST", path, {"cancelled_on": TODAY.isoformat()}, key=key())
    listed = world.call("auditor", "GET", world.url(f"/donors/{who}/gift-aid-declarations")).json

    assert too_far.status_code == 422 and "effective_from" in too_far.json["errors"]
    assert first.status_code == 200 and second.status_code == 409
    assert [item["cancelled_on"] for item in listed] == [TODAY.isoformat()]


def test_goods_given_in_return_are_deducted_on_us_and_canadian_receipts(world):
    who = donor(world)
    texts = {}
    for jurisdiction in ("US", "CA"):
        settings(world, jurisdiction=jurisdiction)
        answer = world.call("org_admin", "POST", world.url("/donations"), {
            "fund_id": world.fund, "amount_minor": 30_000, "currency": "CNY", "channel": "bank",
            "received_on": TODAY.isoformat(), "donor_id": who, "goods_value_minor": 8_000}, key=key())
        [receipt] = receipts_of(world, answer.json["id"])
        assert answer.json["goods_value_minor"] == 8_000 and receipt["advantage_minor"] == 8_000
        texts[jurisdiction] = " ".join(text_of(pdf_of(world, receipt["id"])).split())

    assert "good-faith value of CN¥80.00 were provided; the deductible amount is CN¥220.00." in texts["US"]
    assert "Eligible amount of gift CN¥220.00" in texts["CA"] and "Amount of advantage CN¥80.00" in texts["CA"]


def test_goods_worth_more_than_the_gift_are_refused_naming_the_field_and_nothing_is_written(world):
    from tests.api.support import snapshot

    before = snapshot(world.db)

    answer = world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": 1_000, "currency": "CNY", "channel": "bank",
        "received_on": TODAY.isoformat(), "goods_value_minor": 1_001}, key=key())

    assert answer.status_code == 422 and answer.json["errors"]["goods_value_minor"] and snapshot(world.db) == before
