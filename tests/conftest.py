"""Shared fixtures: a migrated SQLite database always, a migrated PostgreSQL one when TEST_DATABASE_URL
names it. Tests isolate themselves by building a fresh organisation (tests/builders.py) rather than by
truncating: the ledger's tables are append-only, and the database refuses to forget."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.db.schema import migrate

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    """Skips the test, naming what is missing; under REQUIRE_SERVICES=1 (as in CI) fails it instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _needs_postgres(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return "postgresql" in params.values() or "postgres_url" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without TEST_DATABASE_URL the PostgreSQL runs are left out, and the summary says so once (rather than one
    skip per test); under REQUIRE_SERVICES=1 they stay, and fail."""
    if os.environ.get("TEST_DATABASE_URL") or REQUIRE_SERVICES:
        return
    left_out = [item for item in items if _needs_postgres(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not _needs_postgres(item)]
        config.stash[POSTGRES_LEFT_OUT] = len(left_out)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    left_out = config.stash.get(POSTGRES_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"PostgreSQL not configured: {left_out} tests that run on it too were left out "
            "(set TEST_DATABASE_URL to run them)", yellow=True)


POSTGRES_LEFT_OUT = pytest.StashKey[int]()


def reset_postgres(url: str) -> Database:
    database = Database(url)
    with database.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate(database.engine)
    return database


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory) -> Database:
    path = tmp_path_factory.mktemp("sqlite") / "ledger.sqlite3"
    database = Database(f"sqlite:///{path}")
    migrate(database.engine)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        missing_service("PostgreSQL not configured: set TEST_DATABASE_URL to run this test on it")
    return url


@pytest.fixture(scope="session")
def postgres_db(postgres_url) -> Database:
    try:
        database = reset_postgres(postgres_url)
    except Exception as error:  # any failure to connect means the service is absent
        missing_service(f"PostgreSQL at TEST_DATABASE_URL is not answering: {error}")
    yield database
    database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request) -> Database:
    """The test runs once per engine."""
    return request.getfixturevalue(f"{request.param}_db" if request.param == "sqlite" else "postgres_db")


@pytest.fixture
def world(db):
    """A fresh world (tests/api_support.py) on each engine, served by a new application."""
    from tests.api.support import make_app, make_world

    app = make_app(db)
    yield make_world(app)
    app.extensions["ledger_db"].dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database for tests (TEST_REDIS_URL, else the local server's database 15), emptied first."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as error:
        missing_service(f"Redis at {url} is not answering: {error}")
    return url
