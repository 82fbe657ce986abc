"""The Flask edge: the demo `make run` serves, its health and trial balance, and the `flask ledger` commands,
including `verify` failing, naming the posting, after a posting is changed behind the application's back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select, text

from api import create_app
from api.edge.tables import AuditRecord
from ledger.access.tokens import principal_for_token
from ledger.db.models import ApiToken, Fund, Organisation, Posting


@pytest.fixture
def app(tmp_path):
    application = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}", "TESTING": True})
    result = application.test_cli_runner().invoke(args=["ledger", "setup"])
    assert result.exit_code == 0, result.output
    # set-up prints each demo person's token once: "  <role> <email> <token>"
    application.demo_tokens = dict(re.findall(r"^  (\w+) +\S+@\S+ +(fl_\S+)$", result.output, re.MULTILINE))
    application.setup_output = result.output
    yield application
    application.extensions["ledger_db"].dispose()


def database(app):
    return app.extensions["ledger_db"]


def test_setup_migrates_and_loads_the_demo_once(app):
    again = app.test_cli_runner().invoke(args=["ledger", "setup"])

    assert again.exit_code == 0
    assert "schema migrated from an empty database to revision 00" in app.setup_output
    assert "schema is up to date (revision 00" in again.output
    assert "the demo was not loaded again" in again.output
    assert "POST http://127.0.0.1:8000/api/v1/tokens" in again.output and "tokens create" in again.output
    with database(app).read() as session:
        assert len(session.scalars(select(Organisation)).all()) == 1
        funds = session.scalars(select(Fund).where(Fund.kind == "community")).all()
    assert len(funds) == 3
    assert sum(fund.restricted for fund in funds) == 1


def test_health_answers_ok_with_its_database(app):
    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def get(app, path: str, role: str = "auditor"):
    return app.test_client().get(path, headers={"Authorization": f"Bearer {app.demo_tokens[role]}"})


def test_setup_prints_a_working_token_for_each_demo_person(app):
    assert set(app.demo_tokens) == {"org_admin", "fund_manager", "auditor"}
    for role, token in app.demo_tokens.items():
        me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json
        assert [entry["role"] for entry in me["roles"]] == [role]


def test_the_demo_trial_balance_needs_a_role_and_balances_and_cites_the_sealed_chain(app):
    assert app.test_client().get("/api/v1/organisations/1/trial-balance").status_code == 401
    response = get(app, "/api/v1/organisations/1/trial-balance")

    body = response.json
    assert response.status_code == 200
    assert body["balanced"] is True
    [totals] = body["totals"]
    assert totals["currency"] == "CNY"
    assert totals["debit_balance_minor"] == totals["credit_balance_minor"] > 0
    assert sum(line["debit_balance_minor"] for line in body["lines"]) == totals["debit_balance_minor"]
    assert body["sealed_through"]["sequence_no"] >= 1
    assert "捐赠收入" in {line["name_zh"] for line in body["lines"]}


def test_each_demo_fund_balances_on_its_own(app):
    with database(app).read() as session:
        fund_ids = session.scalars(select(Fund.id)).all()

    whole = get(app, "/api/v1/organisations/1/trial-balance").json
    per_fund = [get(app, f"/api/v1/organisations/1/trial-balance?fund_id={fund_id}").json for fund_id in fund_ids]

    for fund_id, body in zip(fund_ids, per_fund, strict=True):
        assert body["balanced"] is True, fund_id
        assert body["fund_id"] == fund_id
    # The funds partition the organisation: their gross debits add up to the organisation's, line by line.
    assert sum(line["debits_minor"] for body in per_fund for line in body["lines"]) == sum(
        line["debits_minor"] for line in whole["lines"])
    assert len({body["totals"][0]["debit_balance_minor"] for body in per_fund if body["totals"]}) > 1


def test_an_unknown_organisation_is_a_problem_document(app):
    response = app.test_client().get("/api/v1/organisations/999")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "not_found"
    assert response.json["errors"] == {"organisation_id": ["organisation 999 does not exist"]}


def test_a_bad_query_parameter_is_a_problem_document_naming_it(app):
    response = get(app, "/api/v1/organisations/1/trial-balance?as_of=yesterday")

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "as_of" in response.json["errors"]


def test_verify_passes_on_the_demo(app):
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])

    assert result.exit_code == 0, result.output
    assert "ledger verified" in result.output


def test_verify_fails_naming_a_posting_changed_behind_the_applications_back(app):
    with database(app).engine.begin() as connection:
        posting_id = connection.execute(select(Posting.id).order_by(Posting.id).limit(1)).scalar_one()
        connection.execute(text("DROP TRIGGER postings_no_update"))
        connection.execute(text("UPDATE postings SET amount_minor = amount_minor + 1 WHERE id = :id"),
                           {"id": posting_id})

    result = app.test_cli_runner().invoke(args=["ledger", "verify"])

    assert result.exit_code != 0
    assert f"posting {posting_id} changed after it was sealed" in result.output
    assert "total_mismatch" in result.output


def test_the_committed_openapi_document_matches_the_code(app):
    """Run `make openapi` after changing the API, and review the document's diff like code."""
    committed = json.loads((Path(__file__).parents[2] / "api" / "openapi.json").read_text())

    assert app.extensions["ledger_api"].spec.to_dict() == committed


def test_the_api_documentation_is_served_by_the_app_itself(app):
    client = app.test_client()

    page = client.get("/api/docs/")
    with client.get("/api/docs/swagger-ui-bundle.js") as script:  # a file response: close it
        assert script.status_code == 200 and len(script.data) > 100_000

    assert page.status_code == 200 and b"/api/openapi.json" in page.data


def test_an_unexpected_failure_is_a_problem_document_that_reveals_nothing(tmp_path):
    application = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})

    @application.get("/explode")
    def explode():
        raise RuntimeError("secret donor 张三 13800000000")

    response = application.test_client().get("/explode")

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "internal_error"
    assert "张三" not in response.get_data(as_text=True)
    application.extensions["ledger_db"].dispose()


@pytest.mark.parametrize(("method", "path", "status", "code", "detail"), [
    ("GET", "/no/such/page", 404, "not_found", "nothing here answers GET /no/such/page"),
    ("POST", "/health", 405, "method_not_allowed", "POST is not allowed on /health: GET, HEAD, OPTIONS"),
    ("GET", "/api/v1/organisations/999", 404, "not_found", "organisation 999 does not exist"),
    ("GET", "/data/o/999/2026.json", 404, "not_found", "no such organisation, fund or year among the open data"),
    ("GET", "/reports/1/999.json", 404, "not_found", "organisation 1 has published no report 999"),
    ("GET", "/verify/R1-2026-000001/inclusion.json?t=x", 404, "not_found",
     "no such receipt, or the address's token is not its own"),
    ("GET", "/api/v1/organisations/1/funds?limit=0", 422, "invalid_input", None),
    ("POST", "/api/v1/organisations/1/donations", 401, "unauthenticated", None),
])
def test_every_error_answer_has_the_one_problem_shape(app, method, path, status, code, detail):
    response = app.test_client().open(path, method=method)

    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert set(response.json) == {"type", "title", "status", "detail", "code", "errors"}
    # One title per code, whether the router, the schema, the domain or a public page refused.
    assert (response.json["code"], response.json["title"]) == (code, code.replace("_", " ").capitalize())
    assert response.json["detail"] == detail or detail is None


def test_the_cli_creates_an_admin_and_issues_a_token_shown_once(app):
    runner = app.test_cli_runner()

    created = runner.invoke(args=["users", "create-admin", "--email", "Admin@Example.org"],
                            input="a long enough password\na long enough password\n")
    issued = runner.invoke(args=["tokens", "create", "--email", "admin@example.org", "--name", "deploy"])

    assert created.exit_code == 0, created.output
    assert issued.exit_code == 0, issued.output
    token = next(line for line in issued.output.splitlines() if line.startswith("fl_"))
    with database(app).read() as session:
        principal = principal_for_token(session, token)
        assert principal.email == "admin@example.org" and principal.platform_admin
        assert token not in str(session.scalars(select(ApiToken.secret_sha256)).all())
    unknown = runner.invoke(args=["tokens", "revoke", "fl_000000000000"])
    revoked = runner.invoke(args=["tokens", "revoke", "fl_" + token.split("_")[1]])  # as the token shows it
    assert (unknown.exit_code, unknown.exception.__class__) == (1, SystemExit), unknown.output
    assert "no token has this prefix" in unknown.output and "Traceback" not in unknown.output
    assert revoked.exit_code == 0
    with database(app).read() as session:
        assert principal_for_token(session, token) is None
        actions = session.scalars(select(AuditRecord.action).where(AuditRecord.remote_addr == "console")).all()
    assert actions == ["user.create-admin", "token.issue", "token.revoke"]


def test_the_demo_is_made_of_real_records(app):
    donations = get(app, "/api/v1/organisations/1/donations?limit=500").json["items"]
    donors = get(app, "/api/v1/organisations/1/donors").json["items"]
    grants = get(app, "/api/v1/organisations/1/grants").json["items"]
    me = {role: get(app, "/api/v1/me", role).json["user_id"] for role in ("org_admin", "fund_manager")}

    assert len(donations) >= 36 and any(d["donor_id"] for d in donations)
    assert any(d["refunded_minor"] for d in donations)
    assert {d["channel"] for d in donations} >= {"bank", "cash", "in_kind"}
    assert {donor["public_name_consent"] for donor in donors} == {True, False}
    [grant] = grants
    assert grant["status"] == "paid" and grant["requested_by_user_id"] == me["fund_manager"]
    assert grant["approved_by"] == [me["org_admin"]] and grant["payments"][0]["paid_by_user_id"] == me["org_admin"]
    reversed_alone = app.test_client().post(
        f"/api/v1/organisations/1/entries/{donations[0]['entry_id']}/reversal", json={},
        headers={"Authorization": f"Bearer {app.demo_tokens['org_admin']}", "Idempotency-Key": "try"})
    assert reversed_alone.status_code == 409 and reversed_alone.json["code"] == "entry_kept_by_record"


def test_setup_prints_the_demo_people_last_between_rules(app):
    lines = app.setup_output.rstrip("\n").splitlines()

    assert lines[-1].startswith("━━━") and lines[-1] == next(line for line in lines if line.startswith("━━━"))
    assert sum("fl_" in line for line in lines[-12:]) == 3


def test_setup_shows_a_chinese_and_an_english_receipt_anyone_can_open(app):
    import io

    from pypdf import PdfReader

    chinese, english = re.findall(r"A receipt in \w+, checked by anyone: http://127\.0\.0\.1:8000(\S+)",
                                  app.setup_output)
    pdf_path = re.search(r"http://127\.0\.0\.1:8000(/api/v1/\S+/pdf)", app.setup_output)[1]

    pages = [app.test_client().get(f"{address}&lang=en").get_data(as_text=True) for address in (chinese, english)]
    pdf = get(app, pdf_path, "org_admin").data

    assert all("Valid" in page for page in pages)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Donation receipt" in text and "COPY" in text
    for address in (chinese, english):  # the demo's published report holds their gifts: the proofs have a root
        number, token = re.fullmatch(r"/verify/([\w-]+)\?t=(\S+)", address).groups()
        gifts = app.test_client().get(f"/verify/{number}/inclusion.json?t={token}").json["gifts"]
        assert gifts and all(gift["proofs"] for gift in gifts), number


def test_the_root_names_the_documentation_health_and_the_demo(app):
    response = app.test_client().get("/")

    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json["documentation"] == "/api/docs/"
    assert response.json["health"] == "/health" and response.json["api"] == "/api/v1"
    for path in (response.json["documentation"], response.json["health"], response.json["openapi"]):
        assert app.test_client().get(path).status_code == 200, path
    assert "demo-password-2026" in response.json["demo"]


def test_the_setups_banner_names_the_address_the_demo_is_served_at(tmp_path):
    """`make run` passes its HOST and PORT on as FUNDLEDGER_PUBLIC_URL: the banner's commands must work there."""
    application = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}", "TESTING": True,
                              "PUBLIC_URL": "http://example.test:8104/"})
    try:
        first = application.test_cli_runner().invoke(args=["ledger", "setup"]).output
        again = application.test_cli_runner().invoke(args=["ledger", "setup"]).output
    finally:
        application.extensions["ledger_db"].dispose()

    addresses = set(re.findall(r"https?://[\w.:-]+", first + again))
    assert addresses == {"http://example.test:8104"}, addresses
    assert "curl -X POST http://example.test:8104/api/v1/tokens" in again
