"""The database unable to take requests (unreachable, read-only): every request answers 503 ``store_unavailable``
with Retry-After, nothing is written, and the same request sent again once the database is back is taken; /health
says so, while /health/live, which asks nothing of the database, stays 200."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from api import create_app
from ledger.db.engine import Database
from ledger.db.schema import migrate
from tests.api.support import make_app, make_world, snapshot
from tests.api.test_bad_input import gift_body
from tests.serving.servers import free_port


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "store_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def test_an_unreachable_database_answers_503_and_liveness_stays_up(tmp_path):
    app = create_app({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", "TESTING": True})
    client = app.test_client()

    assert_unavailable(client.get("/health"))
    assert_unavailable(client.get("/api/v1/me", headers={"Authorization": "Bearer fl_000000000000_" + "x" * 43}))
    assert_unavailable(client.post("/api/v1/tokens", json={"email": "someone@example.org", "password": "secret"}))
    live = client.get("/health/live")
    assert live.status_code == 200 and live.json == {"status": "ok"}
    app.extensions["ledger_db"].dispose()


@pytest.fixture
def own_database(postgres_db):
    """A database of the test's own on the shared server, migrated, dropped afterwards."""
    name = f"fundledger_outage_{uuid.uuid4().hex[:12]}"
    with postgres_db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(postgres_db.engine.url.set(database=name).render_as_string(hide_password=False))
    migrate(database.engine)
    yield database, name
    database.dispose()
    with postgres_db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def set_read_only(db: Database, name: str, read_only: bool) -> None:
    with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = '
                                f'{"on" if read_only else "off"}'))


def test_a_read_only_database_answers_503_writes_nothing_and_takes_the_same_request_once_writable(own_database):
    db, name = own_database
    app = make_app(db)
    world = make_world(app)
    served = app.extensions["ledger_db"]
    body, key = gift_body(world), uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {world.tokens['org_admin']}", "Idempotency-Key": key,
               "Content-Type": "application/json"}
    before = snapshot(db)
    try:
        set_read_only(db, name, True)
        served.dispose()  # (the setting reaches new connections)

        refused = app.test_client().post(world.url("/donations"), data=json.dumps(body), headers=headers)
        health = app.test_client().get("/health")
        during = snapshot(db)

        set_read_only(db, name, False)
        served.dispose()
        taken = app.test_client().post(world.url("/donations"), data=json.dumps(body), headers=headers)
        healthy_again = app.test_client().get("/health")
    finally:
        set_read_only(db, name, False)
        served.dispose()

    assert_unavailable(refused)
    assert_unavailable(health)
    assert during == before
    assert taken.status_code == 201, taken.get_data(as_text=True)
    assert snapshot(db)["donations"] == before["donations"] + 1
    assert healthy_again.status_code == 200
