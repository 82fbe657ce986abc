"""Refused writes and failed sign-ins are in the audit log (who, when, from where, what was asked without its
secrets, the refusal's code), written though the write's own transaction rolled back; and a flood of refusals
from one address stops being recorded past its allowance."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from api.edge.tables import AuditRecord
from tests.api.support import PASSWORD, make_app, make_world, snapshot


def _records_since(world, last_id: int) -> list[AuditRecord]:
    with world.db.read() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.id > last_id).order_by(AuditRecord.id)))


def _last_id(world) -> int:
    with world.db.read() as session:
        return session.scalar(select(AuditRecord.id).order_by(AuditRecord.id.desc()).limit(1)) or 0


def test_a_refused_write_is_audited_though_nothing_of_it_is_written(world):
    last, before = _last_id(world), snapshot(world.db)

    refused = world.call("fund_manager", "POST", world.url("/donations"), json={
        "fund_id": world.fund, "amount_minor": 100, "currency": "USD", "channel": "bank",
        "received_on": "2026-11-20"}, key=uuid.uuid4().hex)

    assert refused.status_code == 422 and snapshot(world.db) == before
    [record] = _records_since(world, last)
    assert (record.user_id, record.organisation_id, record.status_code) == (
        world.users["fund_manager"], world.org, 422)
    assert record.action == "donation.record" and record.method == "POST" and record.remote_addr == "127.0.0.1"
    assert '"code": "currency_mismatch"' in record.details and '"amount_minor": 100' in record.details
    log = world.call("auditor", "GET", world.url("/audit-log?limit=500")).json["items"]
    assert any(item["status_code"] == 422 and item["action"] == "donation.record" for item in log)


def test_a_refusal_before_the_view_and_a_conflict_are_audited_with_their_codes(world):
    last = _last_id(world)

    forbidden = world.call("auditor", "POST", world.url("/donors"), json={"name": "x"})
    invalid = world.call("fund_manager", "POST", world.url("/donors"), json={"name": ""})

    assert (forbidden.status_code, invalid.status_code) == (403, 422)
    records = _records_since(world, last)
    assert [(r.status_code, r.action) for r in records] == [(403, "donor.create"), (422, "donor.create")]
    assert '"code": "forbidden"' in records[0].details and '"code": "invalid_input"' in records[1].details


def test_a_failed_sign_in_is_audited_without_the_password(world):
    last = _last_id(world)

    failed = world.app.test_client().post("/api/v1/tokens", json={"email": "nobody@example.org",
                                                                   "password": "a guess at a password"})

    assert failed.status_code == 401
    [record] = _records_since(world, last)
    assert record.user_id is None and record.status_code == 401 and record.path == "/api/v1/tokens"
    assert "nobody@example.org" in record.details and "a guess at a password" not in record.details
    assert "[redacted]" in record.details


def test_past_its_allowance_an_address_s_refusals_are_no_longer_recorded(db):
    app = make_app(db, RATELIMIT_REFUSALS_AUDITED="2 per minute")
    try:
        world = make_world(app)
        last = _last_id(world)
        answers = [world.call("fund_manager", "POST", world.url("/donors"), json={"name": ""}).status_code
                   for _ in range(5)]
        signed_in = world.app.test_client().post("/api/v1/tokens", json={"email": "x@example.org",
                                                                          "password": PASSWORD})
        records = _records_since(world, last)
    finally:
        app.extensions["ledger_db"].dispose()

    assert answers == [422] * 5 and signed_in.status_code == 401
    assert len(records) == 2


def test_a_stranger_s_refused_write_names_no_organisation_and_a_long_body_is_cut(world):
    last = _last_id(world)

    anonymous = world.app.test_client().post(world.url("/donors"), json={"name": "x" * 50_000})
    outsider = world.call("other_admin", "POST", world.url("/donors"), json={"name": "y"})

    assert (anonymous.status_code, outsider.status_code) == (401, 403)
    records = _records_since(world, last)
    assert [(r.status_code, r.organisation_id) for r in records] == [(401, None), (403, None)]
    assert len(records[0].details) < 3_000 and '"truncated": true' in records[0].details
    log = world.call("auditor", "GET", world.url("/audit-log?limit=500")).json["items"]
    assert not any(item["status_code"] in (401, 403) for item in log)


@pytest.mark.parametrize(("proxies", "recorded"), [(0, "127.0.0.1"), (1, "203.0.113.7")],
                         ids=["no proxy trusted", "one proxy trusted"])
def test_the_client_s_address_is_taken_from_a_trusted_proxy_only(db, proxies, recorded):
    """Behind nginx every request comes from the proxy: with PROXIES=1 the address it forwards is the one audited
    and rate-limited; with none trusted, a client's own X-Forwarded-For is ignored (anyone can send it)."""
    app = make_app(db, PROXIES=proxies)
    world = make_world(app)
    try:
        last = _last_id(world)
        failed = app.test_client().post("/api/v1/tokens", json={"email": "nobody@example.org", "password": "guess"},
                                        headers={"X-Forwarded-For": "203.0.113.7"})
        [record] = _records_since(world, last)
    finally:
        app.extensions["ledger_db"].dispose()

    assert failed.status_code == 401
    assert record.remote_addr == recorded
