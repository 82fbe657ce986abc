"""A write held back until its transaction's COMMIT, then sent with it in one round trip (PostgreSQL); and a
transaction's first statement sent with its BEGIN (``Connection.execute_prepared``).

Eight writers on one fund queue on its balance rows: each holds their locks from its upsert until its COMMIT reaches
the server. Written in the entry's own statement, the rows stay locked while the answer travels to the client, the
client judges it (behind the other threads, for the GIL) and sends COMMIT: most of the time a writer waits, it waits
for another one's client. ``ledger.db.store`` therefore writes a contended entry's balances in a statement of their
own, which it holds on the connection, and the connection sends it at the latest with the COMMIT, in one round trip:
the rows are then locked only while the server writes them and flushes the commit.

A held write is never skipped: the transaction's next statement sends it first (so the transaction reads what it
wrote), COMMIT sends it with itself, ROLLBACK forgets it. The hook is the driver's connection (``Connection``, which
the engine makes through SQLAlchemy's ``do_connect`` event): every statement and every end of a transaction passes
through it, SQLAlchemy's and the store's alike, at the cost of an attribute read, where SQLAlchemy's own execution
events would cost each statement and each COMMIT of every connection a dispatch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Sequence

import psycopg
from psycopg import generators
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus, TransactionStatus
from sqlalchemy import Engine, event

from ledger.core.errors import ConcurrentWrite

HeldWrite = Callable[["Connection", bool], None]  # called (connection, with_commit)


class Connection(psycopg.Connection):
    """psycopg's connection, which sends a held write before the next statement of its transaction or with its
    COMMIT, and calls what a writer hands it (``at_end``) once the transaction is over."""

    _held: HeldWrite | None = None
    _at_end: list[Callable[[], None]] | None = None
    _statements: set[bytes] | None = None  # what ``execute_with_commit`` prepared in this session

    def hold(self, write: HeldWrite) -> None:
        if self._held is not None:
            raise AssertionError("a write is held already: it must be sent before another is held")
        self._held = write

    def at_end(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` when the transaction ends: committed, rolled back, or its connection closed."""
        if self._at_end is None:
            self._at_end = []
        self._at_end.append(callback)

    def send_held(self) -> None:
        """Sends the held write now, if any (before a statement that does not pass through ``cursor``)."""
        write, self._held = self._held, None
        if write is not None:
            write(self, False)

    def execute_with_commit(self, name: bytes, statement: bytes, arguments: Sequence[object]) -> None:
        """Executes ``statement`` (with $1, $2, … placeholders), prepared once per session under ``name``, and
        COMMIT, in one round trip: one simple query, ``EXECUTE name(arguments); COMMIT``. The arguments go as
        literals, so only numbers, dates, booleans and plain words are taken. (psycopg prepares its own statements
        only for the extended protocol, which takes one statement a round trip unless in pipeline mode, whose
        bookkeeping cost eight writers on one fund about 7 % of their rate, measured.)"""
        if self._statements is None:
            self._statements = set()
        if name not in self._statements:
            self._prepare(name, statement)
        literals = ",".join(_literal(argument) for argument in arguments)
        try:
            self.execute(b"EXECUTE " + name + b"(" + literals.encode() + b"); COMMIT")
        except psycopg.errors.InvalidSqlStatementName as error:
            # Deallocated behind this connection's back (psycopg does so when a statement drops or alters an
            # object): the transaction is lost, and its retry prepares the statement again.
            self._statements.discard(name)
            raise ConcurrentWrite("the connection lost a prepared statement; the retry prepares it again") from error

    def execute_prepared(self, name: bytes, statement: bytes, arguments: Sequence[object]) -> list[tuple]:
        """The rows of ``statement`` (with $1, $2, … placeholders and a cast on each), prepared once per session
        under ``name``. When the transaction has not begun, its BEGIN goes in the same network write (libpq's
        pipeline mode, used here for these two commands only), which saves a gift one of its three round trips: the
        connection would otherwise send BEGIN alone and wait for its answer. (psycopg's own pipeline mode does the
        same at more cost in Python than the round trip it saves, measured.) The arguments go as text, which the
        casts read."""
        self.send_held()
        if self._statements is None:
            self._statements = set()
        if name not in self._statements:
            self._prepare(name, statement)
        begin = self._begin_command()
        transformer = Transformer.from_context(self)
        parameters = transformer.dump_sequence(arguments, [PyFormat.TEXT] * len(arguments))
        with self.lock:
            result = self.wait(_pipelined(self.pgconn, name, parameters, begin))
        if result.status != ExecStatus.TUPLES_OK:
            error = psycopg.errors.error_from_result(result, encoding=self.info.encoding)
            if isinstance(error, psycopg.errors.InvalidSqlStatementName):
                self._statements.discard(name)  # deallocated behind this connection's back, as above
                raise ConcurrentWrite("the connection lost a prepared statement; the retry prepares it again") \
                    from error
            raise error
        transformer.set_pgresult(result)
        return transformer.load_rows(0, result.ntuples, tuple)

    def _begin_command(self) -> bytes | None:
        """The BEGIN psycopg would send before the next statement (with the connection's isolation level, if set),
        or None: the transaction has begun, or the connection commits each statement."""
        if self.autocommit or self.pgconn.transaction_status != TransactionStatus.IDLE:
            return None
        return self._get_tx_start_command()

    def _prepare(self, name: bytes, statement: bytes) -> None:
        """Prepares ``statement`` unless the session has it already (a ROLLBACK may or may not have dropped it)."""
        known = self.execute(b"SELECT count(*) FROM pg_prepared_statements WHERE name = %s",
                             (name.decode(),)).fetchone()[0]
        if not known:
            self.execute(b"PREPARE " + name + b" AS " + statement)
        self._statements.add(name)

    def cursor(self, *args, **kwargs):
        if self._held is not None:
            self.send_held()
        return super().cursor(*args, **kwargs)

    def commit(self) -> None:
        write, self._held = self._held, None
        try:
            if write is not None:
                write(self, True)  # the write sends the COMMIT; the driver then finds no transaction left to end
            super().commit()
        finally:
            self._ended()

    def rollback(self) -> None:
        self._held = None
        if self._statements and self.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._statements = None  # psycopg deallocates every statement of the session on ROLLBACK, if it has one
        try:
            super().rollback()
        finally:
            self._ended()

    def close(self) -> None:
        self._held = None
        try:
            super().close()
        finally:
            self._ended()

    def _ended(self) -> None:
        callbacks, self._at_end = self._at_end, None
        for callback in callbacks or ():
            callback()


def _pipelined(pgconn, name: bytes, parameters: Sequence, begin: bytes | None):
    """Sends BEGIN (if asked) and the prepared statement in one write; returns the statement's result, or the first
    error."""
    pgconn.enter_pipeline_mode()
    try:
        if begin:
            pgconn.send_query_params(begin, None)
        pgconn.send_query_prepared(name, parameters)
        pgconn.pipeline_sync()
        yield from generators.send(pgconn)
        answers = []
        while not answers or answers[-1].status != ExecStatus.PIPELINE_SYNC:
            answers += yield from generators.fetch_many(pgconn)
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # the connection is lost already; leave what raised to tell why
            pgconn.exit_pipeline_mode()
        raise
    pgconn.exit_pipeline_mode()
    errors = [answer for answer in answers if answer.status == ExecStatus.FATAL_ERROR]
    return errors[0] if errors else answers[-2]


_WORD = re.compile(r"[A-Za-z_]+")


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, str) and _WORD.fullmatch(value):
        return f"'{value}'"
    raise ValueError(f"not taken as a literal: {value!r}")


def install(engine: Engine) -> None:
    """Makes the engine's connections ``Connection``s."""
    @event.listens_for(engine, "do_connect")
    def connect(_dialect, _record, cargs, cparams):
        return Connection.connect(*cargs, **cparams)
