"""Donors' personal data never leaves through an answer to someone outside the organisation: every GET route
of the application, read off its route map (the public pages, open data files and published reports among them),
is called with the ids of real donors, gifts, grants, entries and reports, anonymously and as another organisation's
admin, in each file format it serves, and no answer may contain any of it, nor the name of a person who received a
grant (masked on the public pages)."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from pypdf import PdfReader

from api.edge.mail import cancel_code
from ledger.payments.gifts import GiftForm, donation_page, start_gift
from tests.api.support import PASSWORD

SECRETS = {"email": "zhang.secret@example.cn", "phone": "13912345678", "address": "锦江区秘密路 88 号",
           "tax_id": "510104199001011234"}
NAME = "张秘密"  # gave without consent to publish the name
BENEFICIARY = "李受助"  # a person who received a grant: the public sees 李*


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
    world.call("org_admin", "POST", world.url("/donations"), key=uuid.uuid4().hex, json={
        "fund_id": world.fund, "donor_id": donor["id"], "amount_minor": 7_000, "currency": "CNY",
        "channel": "bank", "received_on": "2026-10-10"})
    grant = world.call("fund_manager", "POST", world.url("/grants"), json={
        "fund_id": world.fund, "amount_minor": 1_000, "currency": "CNY", "payee": BENEFICIARY,
        "payee_kind": "individual", "purpose": "school fees", "category": "charitable_activities"}).json
    world.call("org_admin", "POST", world.url(f"/grants/{grant['id']}/approvals"), json={
        "effective_date": "2026-10-12"}, key=uuid.uuid4().hex)
    report = world.call("org_admin", "POST", world.url("/reports"), key=uuid.uuid4().hex, json={
        "period_start": "2026-01-01", "period_end": "2026-10-31"}).json
    world.ids = {"organisation_id": world.org, "fund_id": world.fund, "donor_id": donor["id"],
                 "fund_code": "MINE", "token": gift.token, "code": cancel_code(world.app, plan.token),
                 "receipt_id": receipt["id"], "number": receipt["number"],
                 "donation_id": donation["id"], "entry_id": donation["entry_id"], "grant_id": grant["id"],
                 "account_id": 1, "report_id": report["id"], "name": "cn_bank", "match_id": 1, "line_id": 1,
                 "user_id": world.users["org_admin"], "year": 2026, "month": 11, "path": "index.html",
                 "filename": "x", "payout_id": "po_privacy"}
    return world


def _get_paths(world) -> list[str]:
    paths = []
    for rule in world.app.url_map.iter_rules():
        if "GET" in rule.methods:
            for extension in (("json", "csv", "pdf") if "extension" in rule.arguments else ("",)):
                ids = {**world.ids, "extension": extension}
                paths.append(re.sub(r"<(?:[^<>]+:)?([^<>:]+)>", lambda m, ids=ids: str(ids[m.group(1)]), rule.rule))
    return paths


def _text_of(response) -> str:
    """What an answer says: a PDF's words as pypdf reads them (its streams are compressed), else its text."""
    if response.mimetype == "application/pdf":
        return "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    return response.get_data(as_text=True)


def _leaks(text: str) -> list[str]:
    return [value for value in (*SECRETS.values(), NAME, BENEFICIARY) if value in text]


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
                assert not _leaks(_text_of(response)), (caller, path + suffix, response.status_code)
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
