"""Engines, sessions and the unit of work.

One ``Database`` per process holds the engine and two session factories: reads begin an ordinary
transaction, writes begin one that takes the write lock up front. On SQLite that is ``BEGIN IMMEDIATE``:
with several gunicorn workers, a deferred transaction that reads and then writes can find another writer
in between and fail at once with "database is locked", whatever the busy timeout; taking the lock at BEGIN
makes writers queue on the busy timeout instead. On PostgreSQL both factories are the same.

Services take a ``Session`` and never commit; ``Database.write`` owns the database transaction, and
retries it when PostgreSQL reports a deadlock or serialization failure, or when a concurrent writer won
the race for the same idempotency key (the retry then finds that entry and answers with it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine, PrimaryKeyConstraint, UniqueConstraint, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ledger.core.errors import ConcurrentWrite
from ledger.db.models import Base

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITE_ATTEMPTS = 5
# SQLSTATEs worth a retry: serialization_failure, deadlock_detected.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
_RACED_CONSTRAINTS = {
    "uq_entries_organisation_id_idempotency_key", "uq_entries_reverses_entry_id",
    "uq_idempotency_records_user_id_idempotency_key", "pk_grant_approvals",
    # Check-then-insert of unique names: the retry's check finds the winner's row and answers 409 (or, for a
    # membership, replaces it).
    "uq_funds_organisation_id_code", "uq_users_email", "uq_memberships_user_id_organisation_id",
    "uq_organisations_jurisdiction_registration_number",
}

_SQLITE_UNIQUE_FAILED = "UNIQUE constraint failed: "


def _unique_names() -> dict[tuple[str, tuple[str, ...]], str]:
    """Every unique constraint, primary key and unique index by (table, columns): SQLite reports a violation
    by its columns only, PostgreSQL by its name."""
    names = {}
    for table in Base.metadata.tables.values():
        for item in (*table.constraints, *table.indexes):
            if isinstance(item, (UniqueConstraint, PrimaryKeyConstraint)) or getattr(item, "unique", False):
                names[(table.name, tuple(column.name for column in item.columns))] = item.name
    return names


_UNIQUE_NAMES = _unique_names()


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the unique constraint an insert broke, on either engine."""
    name = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    message = str(error.orig)
    if name is None and message.startswith(_SQLITE_UNIQUE_FAILED):
        qualified = [part.strip().split(".") for part in message[len(_SQLITE_UNIQUE_FAILED):].split(",")]
        name = _UNIQUE_NAMES.get((qualified[0][0], tuple(column for _, column in qualified)))
    return name


def normalise_url(url: str) -> str:
    """Uses psycopg 3 for PostgreSQL whichever spelling of the URL the operator wrote."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself, instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed entry survives a power cut; NORMAL could lose the last commits in WAL mode.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        immediate = connection.get_execution_options().get("ledger_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **options) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it would cost a round trip per transaction. A connection the server dropped fails its
    # first statement instead, is invalidated, and Database.write retries on a fresh one.
    options.setdefault("pool_size", 10)
    return create_engine(url, **options)


def is_retryable(error: DBAPIError | ConcurrentWrite) -> bool:
    if isinstance(error, ConcurrentWrite):
        return True
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    # A concurrent writer committed the same idempotency key (or reversed the same entry) first, or a replayed
    # request met its own kept answer (api/writes.py): the retry finds that row and answers with it, or with a
    # typed refusal.
    return isinstance(error, IntegrityError) and violated_constraint(error) in _RACED_CONSTRAINTS


class Database:
    """The process's engine and session factories."""

    def __init__(self, url: str, **engine_options) -> None:
        self.engine = make_engine(url, **engine_options)
        self.dialect = self.engine.dialect.name
        write_engine = self.engine.execution_options(ledger_write=True)
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        lookup_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT") \
            if self.dialect == "postgresql" else self.engine
        self._lookup_sessions = sessionmaker(lookup_engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading. Its transaction ends with COMMIT, not ROLLBACK: psycopg forgets every
        prepared statement of a connection on ROLLBACK, and reads share the pool with the hot write path,
        whose statements would then be planned afresh on every request."""
        with self._read_sessions() as session:
            yield session
            try:
                session.commit()
            except SQLAlchemyError:  # a failed statement aborted the transaction: there is nothing to keep
                session.rollback()

    @contextmanager
    def lookup(self) -> Iterator[Session]:
        """A session for one self-contained read (a token's principal): on PostgreSQL without a transaction,
        so it costs one round trip instead of three."""
        with self._lookup_sessions() as session:
            yield session

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write session whose transaction the caller commits (one per write request, at the edge)."""
        with self._write_sessions() as session:
            yield session

    def write(self, work: Callable[[Session], T], attempts: int = WRITE_ATTEMPTS) -> T:
        """Runs ``work`` in one database transaction and commits it, retrying transient failures."""
        for attempt in range(1, attempts + 1):
            try:
                with self._write_sessions.begin() as session:
                    return work(session)
            except (DBAPIError, ConcurrentWrite) as error:
                if attempt == attempts or not is_retryable(error):
                    raise
                time.sleep(0.001 * 2**attempt)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
