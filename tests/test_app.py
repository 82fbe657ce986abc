"""The Flask edge: the demo `make run` serves, its health and trial balance, and the `flask ledger` commands,
including `verify` failing, naming the posting, after a posting is changed behind the application's back."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from api import create_app
from ledger.models import Fund, Organisation, Posting


@pytest.fixture
def app(tmp_path):
    application = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}", "TESTING": True})
    result = application.test_cli_runner().invoke(args=["ledger", "setup"])
    assert result.exit_code == 0, result.output
    yield application
    application.extensions["ledger_db"].dispose()


def database(app):
    return app.extensions["ledger_db"]


def test_setup_migrates_and_loads_the_demo_once(app):
    again = app.test_cli_runner().invoke(args=["ledger", "setup"])

    assert again.exit_code == 0
    assert "demo not loaded" in again.output
    with database(app).read() as session:
        assert len(session.scalars(select(Organisation)).all()) == 1
        funds = session.scalars(select(Fund).where(Fund.kind == "community")).all()
    assert len(funds) == 3
    assert sum(fund.restricted for fund in funds) == 1


def test_health_answers_ok_with_its_database(app):
    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_the_demo_trial_balance_balances_and_cites_the_sealed_chain(app):
    response = app.test_client().get("/api/v1/organisations/1/trial-balance")

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
    client = app.test_client()
    with database(app).read() as session:
        fund_ids = session.scalars(select(Fund.id)).all()

    for fund_id in fund_ids:
        body = client.get(f"/api/v1/organisations/1/trial-balance?fund_id={fund_id}").json
        assert body["balanced"] is True, fund_id
        assert body["fund_id"] == fund_id


def test_an_unknown_organisation_is_a_problem_document(app):
    response = app.test_client().get("/api/v1/organisations/999/trial-balance")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "not_found"
    assert response.json["errors"] == {"organisation_id": ["organisation 999 does not exist"]}


def test_a_bad_query_parameter_is_a_problem_document_naming_it(app):
    response = app.test_client().get("/api/v1/organisations/1/trial-balance?as_of=yesterday")

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
