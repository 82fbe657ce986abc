"""Donors' personal data never leaves through an answer to someone outside the organisation: every GET route
of the application, read off its route map, is called with the ids of real donors, gifts and entries,
anonymously and as another organisation's admin, and no answer may contain any of it."""

from __future__ import annotations

import re
import uuid

import pytest

from api.edge.mail import cancel_code
from ledger.payments.gifts import GiftForm, donation_page, start_gift
from tests.api.support import PASSWORD

SECRETS = {"email": "zhang.secret@example.cn", "phone": "13912345678", "address": "锦江区秘密路 88 号",
           "tax_id": "510104199001011234"}
NAME = "张秘密"  # gave without consent to publish the name


@pytest.fixture
def donors_world(world):
    donor = world.call("org_admin", "POST", world.url("/donors"), json={"name": NAME, **SECRETS}).json
    donation = world.call("org_admin", "POST", world.url("/donations"), key=uuid.uuid4().hex, json={
        "fund_id": world.fund, "donor_id": donor["id"], "amount_minor": 5_000, "currency": "CNY",
        "channel": "bank", "received_on": "2026-11-20", "description": f"gift of {NAME}"}).json
    # A gift given on the donation page by the same person: its pages (checkout, status) are open to anyone with
    # the token, and must not show who gave.
    gift = world.db.write(lambda session: start_gift(session, donation_page(session, world.org, "MINE"), GiftForm(
        10_000, NAME, SECRETS["email"], SECRETS.get("address", ""), name_public=False), "demo"))
    # And a monthly gift: its page (reached by the signed link in the donor's email) must not show who gives either.
    plan = world.db.write(lambda session: start_gift(session, donation_page(session, world.org, "MINE"), GiftForm(
        10_000, NAME, SECRETS["email"], SECRETS.get("address", ""), name_public=False, monthly=True), "stripe"))
    [receipt] = world.call("auditor", "GET", world.url(f"/receipts?donation_id={donation['id']}")).json["items"]
    world.ids = {"organisation_id": world.org, "fund_id": world.fund, "donor_id": donor["id"],
                 "fund_code": "MINE", "token": gift.token, "code": cancel_code(world.app, plan.token),
                 "receipt_id": receipt["id"], "number": receipt["number"],
                 "donation_id": donation["id"], "entry_id": donation["entry_id"], "grant_id": 1, "account_id": 1,
                 "user_id": world.users["org_admin"], "year": 2026, "month": 11, "path": "index.html",
                 "filename": "x"}
    return world


def _get_paths(world) -> list[str]:
    paths = []
    for rule in world.app.url_map.iter_rules():
        if "GET" in rule.methods:
            paths.append(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(world.ids[m.group(1)]), rule.rule))
    return paths


def _leaks(text: str) -> list[str]:
    return [value for value in (*SECRETS.values(), NAME) if value in text]


def test_the_organisation_itself_sees_the_donor(donors_world):
    answer = donors_world.call("auditor", "GET", donors_world.url(f"/donors/{donors_world.ids['donor_id']}"))

    assert answer.json["email"] == SECRETS["email"] and answer.json["public_name"] == "张*"


@pytest.mark.parametrize("caller", [None, "other_admin", "no_role"])
def test_no_answer_to_an_outsider_holds_personal_data(donors_world, caller):
    paths = _get_paths(donors_world)
    assert len(paths) > 20

    statuses = set()
    for path in paths:
        for suffix in ("", f"?fund_id={donors_world.fund}", f"?donor_id={donors_world.ids['donor_id']}"):
            for accept in ("application/json", "text/csv"):
                response = donors_world.call(caller, "GET", path + suffix, headers={"Accept": accept})
                statuses.add(response.status_code)
                assert not _leaks(response.get_data(as_text=True)), (caller, path + suffix, response.status_code)
    # The sweep reached real answers (public pages), not only refusals or failures.
    assert 200 in statuses and not any(status >= 500 for status in statuses)


def test_refusals_and_validation_errors_do_not_echo_personal_data(donors_world):
    answers = [
        donors_world.call(None, "POST", donors_world.url("/donors"), json={"name": NAME, **SECRETS}),
        donors_world.call("org_admin", "POST", donors_world.url("/donors"),
                          json={"name": NAME, **SECRETS, "phone": SECRETS["phone"] * 5}),
        donors_world.app.test_client().post("/api/v1/tokens", json={"email": SECRETS["email"],
                                                                    "password": PASSWORD}),
    ]

    assert [answer.status_code for answer in answers] == [401, 422, 401]
    for answer in answers:
        assert not _leaks(answer.get_data(as_text=True))
