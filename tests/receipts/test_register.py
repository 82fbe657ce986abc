"""The receipt register through the API: a gift recorded is receipted at once, numbered gap-free in the
organisation's series; a refund replaces its receipt (or voids it, when nothing is left) in the refund's
transaction, and cancelling the refund gives the gift its receipt back; managers void and replace with a reason;
the settings choose the prefix and when receipts are issued; a refusal writes nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.api.support import snapshot

YEAR = dt.datetime.now(dt.UTC).year


def key() -> str:
    return uuid.uuid4().hex


def donor(world, name: str = "张三") -> int:
    return world.call("org_admin", "POST", world.url("/donors"), {"name": name, "address": "成都市锦江区",
                                                                    "tax_id": "510104199001011234"}).json["id"]


def give(world, amount: int = 10_000, donor_id: int | None = None) -> dict:
    answer = world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": amount, "currency": "CNY", "channel": "bank",
        "received_on": dt.date.today().isoformat(), **({"donor_id": donor_id} if donor_id else {})}, key=key())
    assert answer.status_code == 201, answer.json
    return answer.json


def receipts_of(world, donation_id: int) -> list[dict]:
    return world.call("auditor", "GET", world.url(f"/receipts?donation_id={donation_id}")).json["items"]


def refund(world, donation_id: int, amount: int) -> dict:
    answer = world.call("org_admin", "POST", world.url(f"/donations/{donation_id}/refunds"),
                        {"amount_minor": amount, "refunded_on": dt.date.today().isoformat()}, key=key())
    assert answer.status_code == 201, answer.json
    return answer.json


def test_a_gift_recorded_is_receipted_at_once_numbered_in_the_series(world):
    who = donor(world)

    first, second = give(world, 10_000, who), give(world, 2_500, who)
    anonymous = give(world, 700)

    [one], [two] = receipts_of(world, first["id"]), receipts_of(world, second["id"])
    sequence = int(one["number"].rsplit("-", 1)[1])
    assert one["number"] == f"R{world.org}-{YEAR}-{sequence:06d}"
    assert two["number"] == f"R{world.org}-{YEAR}-{sequence + 1:06d}"
    assert (one["amount_minor"], one["currency"], one["status"], one["donor_name"]) == (10_000, "CNY", "issued",
                                                                                         "张三")
    assert one["donation_ids"] == [first["id"]] and one["verify_url"].startswith("http://127.0.0.1:8000/verify/")
    assert receipts_of(world, anonymous["id"]) == []  # (nobody to receipt)


def test_a_partial_refund_replaces_the_receipt_and_a_whole_one_voids_it(world):
    gift = give(world, 10_000, donor(world))
    [original] = receipts_of(world, gift["id"])

    refund(world, gift["id"], 3_000)
    after_part = {item["number"]: item for item in receipts_of(world, gift["id"])}
    refund(world, gift["id"], 7_000)
    after_all = {item["number"]: item for item in receipts_of(world, gift["id"])}

    replaced, replacement = after_part[original["number"]], next(
        item for item in after_part.values() if item["number"] != original["number"])
    assert replaced["status"] == "replaced" and replaced["replaced_by"] == replacement["number"]
    assert (replacement["amount_minor"], replacement["replaces"], replacement["status"]) == (
        7_000, original["number"], "issued")
    assert after_all[replacement["number"]]["status"] == "voided"
    assert "refund" in after_all[replacement["number"]]["void_reason"]
    assert [item for item in after_all.values() if item["status"] == "issued"] == []


def test_cancelling_a_refund_gives_the_gift_its_receipt_back(world):
    gift = give(world, 10_000, donor(world))
    made = refund(world, gift["id"], 10_000)

    answer = world.call("org_admin", "POST", world.url(f"/donations/{gift['id']}/refunds/{made['id']}/cancellation"),
                        {"reason": "recorded by mistake"}, key=key())

    assert answer.status_code == 200, answer.json
    issued = [item for item in receipts_of(world, gift["id"]) if item["status"] == "issued"]
    assert len(issued) == 1 and issued[0]["amount_minor"] == 10_000 and issued[0]["replaces"]


def test_a_manager_voids_once_with_a_reason_and_replaces_a_receipt(world):
    gift = give(world, 5_000, donor(world))
    first, second = (give(world, 5_000, donor(world, "李四")) for _ in range(2))
    [to_void] = receipts_of(world, gift["id"])
    [to_replace] = receipts_of(world, first["id"])

    voided = world.call("org_admin", "POST", world.url(f"/receipts/{to_void['id']}/void"),
                        {"reason": "issued to the wrong donor"}, key=key())
    again = world.call("org_admin", "POST", world.url(f"/receipts/{to_void['id']}/void"), {"reason": "twice"},
                       key=key())
    new = world.call("org_admin", "POST", world.url(f"/receipts/{to_replace['id']}/replacement"),
                     {"reason": "the donor asked for English", "language": "en"}, key=key())
    by_manager = world.call("fund_manager", "POST", world.url(f"/receipts/{to_replace['id']}/void"),
                            {"reason": "no"}, key=key())

    assert voided.status_code == 200 and voided.json["status"] == "voided"
    assert voided.json["void_reason"] == "issued to the wrong donor"
    assert again.status_code == 409 and again.json["code"] == "invalid_state"
    assert new.status_code == 201 and new.json["replaces"] == to_replace["number"]
    assert new.json["amount_minor"] == 5_000 and new.json["number"] != to_replace["number"]
    assert (to_replace["language"], new.json["language"]) == ("zh-CN", "en")
    assert by_manager.status_code == 403
    assert receipts_of(world, second["id"])[0]["status"] == "issued"


def test_a_receipt_on_request_covers_only_what_no_receipt_covers(world):
    gift = give(world, 5_000, donor(world))
    [receipt] = receipts_of(world, gift["id"])
    world.call("org_admin", "POST", world.url(f"/receipts/{receipt['id']}/void"), {"reason": "lost"}, key=key())

    issued = world.call("org_admin", "POST", world.url("/receipts"), {"donation_id": gift["id"]}, key=key())
    before = snapshot(world.db)
    twice = world.call("org_admin", "POST", world.url("/receipts"), {"donation_id": gift["id"]}, key=key())

    assert issued.status_code == 201 and issued.json["amount_minor"] == 5_000
    assert twice.status_code == 409 and snapshot(world.db) == before


def test_the_settings_choose_the_prefix_and_when_receipts_are_issued(world):
    prefix = f"T{uuid.uuid4().hex[:6].upper()}"
    put = world.call("org_admin", "PUT", world.url("/receipt-settings"), {
        "prefix": prefix, "timing": "on_request", "jurisdiction": "CN", "language": "en"}, key=key())
    quiet = give(world, 1_000, donor(world))
    world.call("org_admin", "PUT", world.url("/receipt-settings"), {
        "prefix": prefix, "timing": "per_donation", "jurisdiction": "CN", "language": "en"}, key=key())

    loud = give(world, 1_000, donor(world))

    assert put.status_code == 200 and put.json["prefix"] == prefix
    assert receipts_of(world, quiet["id"]) == []
    [receipt] = receipts_of(world, loud["id"])
    assert receipt["number"] == f"{prefix}-{YEAR}-000001" and receipt["language"] == "en"


@pytest.mark.parametrize(("body", "field"), [
    ({"prefix": "有 空格", "timing": "per_donation", "jurisdiction": "CN", "language": "zh-CN"}, "prefix"),
    ({"prefix": "OK", "timing": "weekly", "jurisdiction": "CN", "language": "zh-CN"}, "timing"),
    ({"prefix": "OK", "timing": "annual", "jurisdiction": "FR", "language": "zh-CN"}, "jurisdiction"),
])
def test_settings_that_break_a_rule_are_refused_naming_the_field_and_nothing_is_written(world, body, field):
    before = world.call("auditor", "GET", world.url("/receipt-settings")).json

    answer = world.call("org_admin", "PUT", world.url("/receipt-settings"), body, key=key())

    assert answer.status_code == 422 and field in str(answer.json)
    assert world.call("auditor", "GET", world.url("/receipt-settings")).json == before


def test_another_organisations_prefix_is_refused(world):
    prefix = f"X{uuid.uuid4().hex[:6].upper()}"
    body = {"prefix": prefix, "timing": "per_donation", "jurisdiction": "CN", "language": "zh-CN"}
    world.call("other_admin", "PUT", world.url("/receipt-settings", world.other_org), body, key=key())

    answer = world.call("org_admin", "PUT", world.url("/receipt-settings"), body, key=key())

    assert answer.status_code == 422 and answer.json["errors"]["prefix"]


def test_another_organisations_default_prefix_is_refused(world):
    body = {"timing": "per_donation", "jurisdiction": "CN", "language": "zh-CN"}

    theirs = world.call("org_admin", "PUT", world.url("/receipt-settings"), {"prefix": f"R{world.other_org}", **body},
                        key=key())
    mine = world.call("org_admin", "PUT", world.url("/receipt-settings"), {"prefix": f"R{world.org}", **body},
                      key=key())

    assert theirs.status_code == 422 and theirs.json["errors"]["prefix"] and mine.status_code == 200


def test_cancelling_the_first_of_two_refunds_receipts_what_is_left(world):
    """A 100 gift: refund 50 (receipt replaced by one for 50), refund 50 (that one voided), cancel the first refund:
    the newest receipt, which nothing replaces, is replaced by one for 50."""
    gift = give(world, 10_000, donor(world))
    first = refund(world, gift["id"], 5_000)
    refund(world, gift["id"], 5_000)

    answer = world.call("org_admin", "POST", world.url(f"/donations/{gift['id']}/refunds/{first['id']}/cancellation"),
                        {"reason": "recorded by mistake"}, key=key())

    receipts = receipts_of(world, gift["id"])
    [standing] = [item for item in receipts if item["status"] == "issued"]
    assert answer.status_code == 200 and standing["amount_minor"] == 5_000
    assert standing["replaces"] == max((item for item in receipts if item["status"] != "issued"),
                                       key=lambda item: item["id"])["number"]


def test_the_register_is_also_csv(world):
    give(world, 1_234, donor(world))

    answer = world.call("auditor", "GET", world.url("/receipts"), headers={"Accept": "text/csv"})

    lines = answer.get_data(as_text=True).splitlines()
    assert answer.mimetype == "text/csv" and lines[0].startswith("id,number,kind,status")
    assert any(",1234,CNY," in line for line in lines[1:])
