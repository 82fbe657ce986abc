"""Engines, sessions and the unit of work.

One ``Database`` per process holds the engine and two session factories: reads begin an ordinary
transaction, writes begin one that takes the write lock up front. On SQLite that is ``BEGIN IMMEDIATE``:
with several gunicorn workers, a deferred transaction that reads and then writes can find another writer
in between and fail at once with "database is locked", whatever the busy timeout; taking the lock at BEGIN
makes writers queue on the busy timeout instead. On PostgreSQL both factories are the same.

Services take a ``Session`` and never commit; ``Database.write`` owns the database transaction, and
retries it when PostgreSQL reports a deadlock or serialization failure, or when a concurrent writer won
a race at a unique key (``ConcurrentWrite``, raised where the row is written): the retry then finds that row
and answers with it, or with a typed refusal.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ledger.core.errors import ConcurrentWrite
from ledger.db import held

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITE_ATTEMPTS = 5
# SQLSTATEs worth a retry: serialization_failure, deadlock_detected.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
_UNIQUE_VIOLATION = "23505"


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
        # On the driver's connection itself: SQLAlchemy's execution machinery (a cursor, its events and result)
        # costs more than the statement on the one-gift write path.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **options) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)
        _configure_sqlite(engine)
        return engine
    options.setdefault("pool_size", 10)
    engine = create_engine(url, **options)
    event.listen(engine, "checkout", _refuse_a_dropped_connection)
    held.install(engine)
    return engine


def _refuse_a_dropped_connection(dbapi_connection, _record, _proxy) -> None:
    """A pooled connection the server has dropped (a restart, a terminated backend) is discarded at checkout, and
    the pool hands out a fresh one (SQLAlchemy's documented pessimistic disconnect handling), so the first request
    after a restart does not fail. Not pre-ping, which costs a round trip per checkout: an idle connection that is
    readable has been told something unasked, in practice the server's goodbye, or has been closed; a zero-timeout
    poll of its socket costs microseconds."""
    connection = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if connection.closed or connection.broken:
        raise DisconnectionError("the pooled connection is closed")
    poll = select.poll()
    poll.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if poll.poll(0):
        raise DisconnectionError("the server dropped the pooled connection")


def is_retryable(error: DBAPIError | ConcurrentWrite) -> bool:
    """A failure that the same work, run again in a new transaction, may not meet: a concurrent writer won a race
    at a unique key (the retry finds its row and answers with it, or with a typed refusal), a dropped connection,
    a deadlock or a serialization failure."""
    if isinstance(error, ConcurrentWrite):
        return True
    if error.connection_invalidated:
        return True
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


# SQLSTATE classes and codes that say the store cannot serve now, whatever was asked: a connection that failed or was
# ended (08, 57P01-57P03), insufficient resources (53: a full disk, memory, too many connections), a read-only
# database (25006), the server's own system or I/O error (58). A client should retry the same request later.
_UNAVAILABLE_CLASSES = ("08", "53", "58")
_UNAVAILABLE_SQLSTATES = {"25006", "57P01", "57P02", "57P03"}
_SQLITE_UNAVAILABLE = ("database is locked", "disk i/o error", "database or disk is full",
                       "attempt to write a readonly database", "unable to open database file")


def store_unavailable(error: Exception) -> bool:
    """Whether a database error means the store cannot take the request now (down, unreachable, read-only, out of
    disk), as opposed to a fault in the request or the code."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate:
        return sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate[:2] in _UNAVAILABLE_CLASSES
    if error.orig.__class__.__module__.startswith("psycopg"):  # no SQLSTATE: the connection itself failed
        return isinstance(error, OperationalError)
    return any(message in str(error.orig).lower() for message in _SQLITE_UNAVAILABLE)


def can_write(session: Session) -> None:
    """Proves the database takes writes (raises if not): a write statement that changes nothing, which PostgreSQL
    refuses in a read-only database and SQLite in a read-only file (the session's transaction, begun for writing,
    holds SQLite's write lock already)."""
    session.execute(text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"))


def unique_violation_on(error: Exception, table: str) -> bool:
    """Whether ``error`` (the driver's, or SQLAlchemy's wrapping it) is a unique key of ``table`` refusing a row:
    the sign that a concurrent writer got there first."""
    original = error.orig if isinstance(error, DBAPIError) else error
    if getattr(original, "sqlstate", None) == _UNIQUE_VIOLATION:
        return original.diag.table_name == table
    return str(original).startswith(f"UNIQUE constraint failed: {table}.")


def ping(session: Session) -> None:
    """One round trip that proves the database answers."""
    session.execute(text("SELECT 1"))


def dialect_insert(session: Session) -> Callable:
    """The ``insert`` of the session's engine, which knows ON CONFLICT (PostgreSQL and SQLite spell it alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_unless_taken(session: Session, model: type[T], values: dict, key: Sequence[str]) -> T | None:
    """Inserts a row and returns it, or None when another row already holds its unique ``key`` (then nothing is
    written). Uniqueness is judged at the insert, so a concurrent insert of the same key cannot slip between a
    check and the write: the caller raises its domain error there."""
    statement = dialect_insert(session)(model).values(**values).on_conflict_do_nothing(index_elements=list(key))
    return session.scalars(statement.returning(model)).first()


DAYS_AHEAD = "ledger_days_ahead"  # session.info: how many days after today an entry may be dated
OBSERVERS = "ledger_observers"  # session.info: who hears of records as they are written (ledger.giving.observers)
DEFAULT_DAYS_AHEAD = 1  # a day: an organisation east of UTC is a day ahead of the server's date for hours


class Database:
    """The process's engine and session factories. ``days_ahead``: how many days after today (UTC) an entry may
    be dated."""

    def __init__(self, url: str, *, days_ahead: int = DEFAULT_DAYS_AHEAD, **engine_options) -> None:
        self.engine = make_engine(url, **engine_options)
        self.dialect = self.engine.dialect.name
        write_engine = self.engine.execution_options(ledger_write=True)
        # Each kind of record's listeners (``ledger.giving.observers``): this database's own, so that two
        # applications (or a test's bare database) in one process hear only what they subscribed to.
        self.observers: dict[str, list] = {}
        info = {DAYS_AHEAD: days_ahead, OBSERVERS: self.observers}
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        lookup_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT") \
            if self.dialect == "postgresql" else self.engine
        self._lookup_sessions = sessionmaker(lookup_engine, expire_on_commit=False, info=info)
        self._write_sessions = sessionmaker(write_engine, expire_on_commit=False, info=info)

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
