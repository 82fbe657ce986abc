"""API fuzzing with schemathesis against the application's own OpenAPI document (`/api/openapi.json`).

Every operation of the document is called with generated requests, valid and invalid, as an admin of the
world's organisation, and every answer must be: no 5xx, a documented status, a documented content type, and
a body that conforms to the documented schema. Path parameters (and a body's `fund_id`) mostly name real
objects of the world, seeded below, so requests reach the handlers; the rest are random ids.

Bounded so CI stays quick: a few examples per operation, no shrinking, derandomized (reproducible).
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledger.access import issue_token

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 10
# Operations only a platform administrator may call; the rest are called as the organisation's admin.
PLATFORM_OPERATIONS = {("POST", "/api/v1/organisations"), ("POST", "/api/v1/users")}
REVOKE_OWN_TOKEN = ("DELETE", "/api/v1/tokens/current")


def _seed(world) -> dict[str, list[int]]:
    """One object of each kind in the world's organisation, made through the API, for path parameters."""
    def post(path: str, body: dict) -> dict:
        response = world.call("org_admin", "POST", world.url(path), json=body, key=uuid.uuid4().hex)
        assert response.status_code == 201, response.json
        return response.json

    donor = post("/donors", {"name": "张三"})
    gift = post("/donations", {"fund_id": world.fund, "donor_id": donor["id"], "amount_minor": 100_000,
                               "currency": "CNY", "channel": "bank", "received_on": "2026-11-02"})
    grant = post("/grants", {"fund_id": world.fund, "amount_minor": 1_000, "currency": "CNY", "payee": "某小学",
                             "purpose": "图书", "category": "charitable_activities"})
    accounts = world.call("org_admin", "GET", world.url("/accounts")).json
    return {
        "orgs": [world.org],
        "funds": [world.fund, world.other_fund, world.general],
        "accounts": [account["id"] for account in accounts],
        "donors": [donor["id"]],
        "donations": [gift["id"]],
        "entries": [gift["entry_id"]],
        "grants": [grant["id"]],
        # Never the org_admin the requests are made as: removing them would turn the rest into 403s.
        "users": [world.users["second_admin"], world.users["fund_manager"], world.users["auditor"]],
    }


# Which dictionary feeds which parameter, and how often (the rest of the time the value is generated).
BINDINGS = {
    "path.organisation_id": ("orgs", 0.9),
    "path.fund_id": ("funds", 0.8),
    "path.account_id": ("accounts", 0.8),
    "path.donor_id": ("donors", 0.8),
    "path.donation_id": ("donations", 0.8),
    "path.entry_id": ("entries", 0.8),
    "path.grant_id": ("grants", 0.8),
    "path.user_id": ("users", 0.8),
    "body.fund_id": ("funds", 0.8),
    "body.from_fund_id": ("funds", 0.8),
    "body.to_fund_id": ("funds", 0.8),
}


@pytest.fixture
def api_schema(world):
    seeded = _seed(world)
    config = schemathesis.Config.from_dict({
        "dictionaries": {name: {"values": values} for name, values in seeded.items()},
        "parameters": {key: {"dictionary": name, "probability": probability}
                       for key, (name, probability) in BINDINGS.items()},
    })
    return schemathesis.openapi.from_wsgi("/api/openapi.json", world.app, config=config)


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request):
    """schemathesis 4.32's from_fixture renames each operation's report through ``node._nodeid``, which
    pytest 9.2 no longer has; give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


def _token(world, case) -> str:
    operation = (case.method.upper(), case.operation.path)
    if operation in PLATFORM_OPERATIONS:
        return world.tokens["platform_admin"]
    if operation == REVOKE_OWN_TOKEN:
        return world.db.write(lambda session: issue_token(session, world.users["org_admin"], "revoked")[0])
    return world.tokens["org_admin"]


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
def test_every_answer_conforms_to_the_openapi_document(case, world):
    case.call_and_validate(headers={"Authorization": f"Bearer {_token(world, case)}",
                                    "Idempotency-Key": uuid.uuid4().hex}, checks=CHECKS)
