"""Bad input through HTTP: each row is a request that must be refused with the documented status, as
problem+json naming the code (and the field, where there is one), and leave the database exactly as it was."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from sqlalchemy import update

from ledger.db.models import ApiToken
from tests.api.support import snapshot

DAY = "2026-11-20"


def gift_body(world, **changes) -> dict:
    body = {"fund_id": world.fund, "amount_minor": 10_000, "currency": "CNY", "channel": "bank",
            "received_on": DAY}
    body.update(changes)
    return {name: value for name, value in body.items() if value is not ...}


# (name, caller, method, path, body builder, extra headers, status, code, field)
GIFT_ROWS = [
    ("unknown field", "org_admin", {"colour": "red"}, 422, "invalid_input", "colour"),
    ("float amount", "org_admin", {"amount_minor": 100.5}, 422, "invalid_input", "amount_minor"),
    ("whole float amount", "org_admin", {"amount_minor": 100.0}, 422, "invalid_input", "amount_minor"),
    ("string amount", "org_admin", {"amount_minor": "10000"}, 422, "invalid_input", "amount_minor"),
    ("boolean amount", "org_admin", {"amount_minor": True}, 422, "invalid_input", "amount_minor"),
    ("negative amount", "org_admin", {"amount_minor": -5}, 422, "invalid_input", "amount_minor"),
    ("zero amount", "org_admin", {"amount_minor": 0}, 422, "invalid_input", "amount_minor"),
    ("oversized amount", "org_admin", {"amount_minor": 10**15}, 422, "invalid_input", "amount_minor"),
    ("missing amount", "org_admin", {"amount_minor": ...}, 422, "invalid_input", "amount_minor"),
    ("not the fund's currency", "org_admin", {"currency": "USD"}, 422, "currency_mismatch", "currency"),
    ("unknown currency", "org_admin", {"currency": "ZZZ"}, 422, "currency_unknown", "currency"),
    ("unknown channel", "org_admin", {"channel": "bitcoin"}, 422, "invalid_input", "channel"),
    ("impossible date", "org_admin", {"received_on": "2026-13-01"}, 422, "invalid_input", "received_on"),
    ("unknown fund", "org_admin", {"fund_id": 987_654_321}, 404, "not_found", "fund_id"),
    ("another organisation's fund", "org_admin", "foreign_fund", 404, "not_found", "fund_id"),
    ("a fund not managed", "fund_manager", "other_fund", 403, "forbidden", "fund_id"),
    ("unknown donor", "org_admin", {"donor_id": 987_654_321}, 404, "not_found", "donor_id"),
    ("another organisation's donor", "org_admin", "foreign_donor", 404, "not_found", "donor_id"),
    ("in-kind without a description", "org_admin", {"channel": "in_kind", "valuation_basis": "invoice"}, 422,
     "invalid_input", "in_kind_description"),
]


def _foreign_donor(world) -> int:
    answer = world.call("other_admin", "POST", world.url("/donors", world.other_org), json={"name": "外人"})
    return answer.json["id"]


def _changes(world, changes):
    if changes == "foreign_fund":
        return {"fund_id": world.foreign_fund}
    if changes == "other_fund":
        return {"fund_id": world.other_fund}
    if changes == "foreign_donor":
        return {"donor_id": _foreign_donor(world)}
    return changes


def assert_refused(world, response, status, code, field, before):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert set(response.json) == {"type", "title", "status", "detail", "code", "errors"}
    assert response.json["code"] == code
    if field:
        assert field in response.json["errors"], response.json
    if status == 422:  # the detail names the first failing field and why
        named, _, why = response.json["detail"].partition(": ")
        assert named.split(".")[0] in response.json["errors"] or named == "the request body", response.json
        assert why and why in str(response.json["errors"]), response.json
    assert snapshot(world.db) == before


@pytest.mark.parametrize(("name", "caller", "changes", "status", "code", "field"), GIFT_ROWS,
                         ids=[row[0] for row in GIFT_ROWS])
def test_a_bad_gift_is_refused_and_writes_nothing(world, name, caller, changes, status, code, field):
    body = gift_body(world, **_changes(world, changes))
    before = snapshot(world.db)

    response = world.call(caller, "POST", world.url("/donations"), json=body, key=uuid.uuid4().hex)

    assert_refused(world, response, status, code, field, before)


def _expire(world, role):
    prefix = world.tokens[role].split("_")[1]
    with world.db.engine.begin() as connection:
        connection.execute(update(ApiToken).where(ApiToken.prefix == prefix).values(
            expires_at=ApiToken.created_at))


def _revoke(world, role):
    prefix = world.tokens[role].split("_")[1]
    with world.db.engine.begin() as connection:
        connection.execute(update(ApiToken).where(ApiToken.prefix == prefix).values(revoked_at=ApiToken.created_at))


@pytest.mark.parametrize(("name", "headers", "prepare"), [
    ("no token", {}, None),
    ("a malformed token", {"Authorization": "Bearer not-a-token"}, None),
    ("an unknown token", {"Authorization": "Bearer fl_000000000000_" + "x" * 43}, None),
    ("a password instead of a token", {"Authorization": "Basic dXNlcjpwYXNz"}, None),
    ("an expired token", "fund_manager", _expire),
    ("a revoked token", "fund_manager", _revoke),
])
def test_a_write_without_a_valid_token_is_refused_and_writes_nothing(world, name, headers, prepare):
    if prepare is not None:
        prepare(world, headers)
        headers = {"Authorization": f"Bearer {world.tokens[headers]}"}
    before = snapshot(world.db)

    response = world.app.test_client().post(world.url("/donations"), json=gift_body(world),
                                            headers={**headers, "Idempotency-Key": uuid.uuid4().hex})

    assert_refused(world, response, 401, "unauthenticated", "Authorization", before)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("name", "data", "headers", "status", "code"), [
    ("malformed JSON", b'{"fund_id": 1,', {}, 400, "bad_request"),
    ("a field named by half a surrogate pair", b'{"\\ud800": 1}', {}, 422, "invalid_input"),
    ("JSON that is not an object", b"[1, 2, 3]", {}, 422, "invalid_input"),
    ("an oversized body", b'{"reference": "' + b"x" * 70_000 + b'"}', {}, 413, "request_entity_too_large"),
    ("no Idempotency-Key", b"{}", {"Idempotency-Key": None}, 400, "idempotency_key_missing"),
    ("an Idempotency-Key too long", b"{}", {"Idempotency-Key": "k" * 151}, 422, "invalid_input"),
])
def test_a_malformed_request_is_refused_and_writes_nothing(world, name, data, headers, status, code):
    sent = {"Authorization": f"Bearer {world.tokens['org_admin']}", "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex, **headers}
    sent = {key: value for key, value in sent.items() if value is not None}
    if data == b"{}":
        data = json.dumps(gift_body(world)).encode()
    before = snapshot(world.db)

    response = world.app.test_client().post(world.url("/donations"), data=data, headers=sent)

    assert_refused(world, response, status, code, None, before)


@pytest.mark.parametrize(("size", "status"), [(70_000, 413), (2_000, 422)], ids=["over the cap", "within it"])
def test_a_body_sent_in_chunks_is_held_to_the_same_cap(world, size, status):
    """No Content-Length to refuse up front (as gunicorn passes a chunked body): over the cap is 413, not "invalid
    JSON"; within it the body is read whole and judged on its content."""
    body = json.dumps({**gift_body(world), "reference": "x" * size}).encode()
    before = snapshot(world.db)

    response = world.app.test_client().post(
        world.url("/donations"), input_stream=io.BytesIO(body),
        headers={"Authorization": f"Bearer {world.tokens['org_admin']}", "Content-Type": "application/json",
                 "Idempotency-Key": uuid.uuid4().hex, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})

    code = "request_entity_too_large" if status == 413 else "invalid_input"
    assert_refused(world, response, status, code, None if status == 413 else "reference", before)


def _donation(world) -> int:
    return world.call("org_admin", "POST", world.url("/donations"), json=gift_body(world, amount_minor=1_000),
                      key=uuid.uuid4().hex).json["id"]


@pytest.mark.parametrize(("name", "method", "path", "body", "status", "code", "field"), [
    ("refund above the gift", "POST", "/donations/{donation}/refunds",
     {"amount_minor": 1_001, "refunded_on": DAY}, 422, "invalid_input", "amount_minor"),
    ("refund dated before the gift", "POST", "/donations/{donation}/refunds",
     {"amount_minor": 1, "refunded_on": "2026-11-19"}, 422, "invalid_input", "refunded_on"),
    ("refund of an unknown gift", "POST", "/donations/987654321/refunds",
     {"amount_minor": 1, "refunded_on": DAY}, 404, "not_found", "donation_id"),
    ("transfer within one fund", "POST", "/transfers",
     {"from_fund_id": "{fund}", "to_fund_id": "{fund}", "amount_minor": 1, "currency": "CNY", "effective_date": DAY},
     422, "invalid_input", "to_fund_id"),
    ("transfer to another organisation's fund", "POST", "/transfers",
     {"from_fund_id": "{fund}", "to_fund_id": "{foreign}", "amount_minor": 1, "currency": "CNY",
      "effective_date": DAY}, 404, "not_found", "fund_id"),
    ("grant of an unknown category", "POST", "/grants",
     {"fund_id": "{fund}", "amount_minor": 1, "currency": "CNY", "payee": "p", "purpose": "p", "category": "gifts"},
     422, "invalid_input", "category"),
    ("grant with an empty payee", "POST", "/grants",
     {"fund_id": "{fund}", "amount_minor": 1, "currency": "CNY", "payee": "", "purpose": "p",
      "category": "management"}, 422, "invalid_input", "payee"),
    ("reversal of an unknown entry", "POST", "/entries/987654321/reversal", {}, 404, "not_found", "entry_id"),
    ("approval of an unknown grant", "POST", "/grants/987654321/approvals", {}, 404, "not_found", "grant_id"),
    ("a thirteenth month", "POST", "/periods/2026/13/close", None, 422, "invalid_input", "month"),
    ("a page too large", "GET", "/entries?limit=501", None, 422, "invalid_input", "limit"),
    ("a page of nothing", "GET", "/donations?limit=0", None, 422, "invalid_input", "limit"),
    ("a negative cursor", "GET", "/grants?after=-1", None, 422, "invalid_input", "after"),
    ("a statement cursor that is not one", "GET", "/accounts/1/statement?after=yesterday", None, 422,
     "invalid_input", "after"),
    ("a member with an unknown role", "POST", "/members", {"email": "a@example.org", "role": "owner"}, 422,
     "invalid_input", "role"),
    ("a fund with a boolean as text", "POST", "/funds",
     {"code": "X1", "name": "x", "kind": "project", "restricted": "yes"}, 422, "invalid_input", "restricted"),
])
def test_other_bad_requests_are_refused_and_write_nothing(world, name, method, path, body, status, code, field):
    values = {"fund": world.fund, "foreign": world.foreign_fund}
    if "{donation}" in path:
        values["donation"] = _donation(world)
    path = world.url(path.format(**values))
    if body is not None:
        body = {key: int(value.format(**values)) if isinstance(value, str) and value.startswith("{") else value
                for key, value in body.items()}
    before = snapshot(world.db)

    response = world.call("org_admin", method, path, json=body, key=uuid.uuid4().hex)

    assert_refused(world, response, status, code, field, before)


def test_a_422_names_the_first_failing_field_by_its_path_and_why(world):
    line = {"account_id": 1, "fund_id": world.fund, "amount_minor": 5, "currency": "CNY"}
    body = {"effective_date": "2026-11-20", "description": "d",
            "lines": [{**line, "side": "debit"}, {**line, "side": "sideways"}]}

    response = world.call("org_admin", "POST", world.url("/entries"), json=body, key=uuid.uuid4().hex)

    assert response.status_code == 422
    assert response.json["detail"] == "lines.1.side: Must be one of: debit, credit."
    assert response.json["errors"] == {"lines": {"1": {"side": ["Must be one of: debit, credit."]}}}
