"""The SQL behind posting: the hot path of the ledger, kept out of the ORM.

``post_batch`` reads what the checks need (accounts, funds, closed periods, earlier uses of the batch's
idempotency keys), lets the caller's ``check`` raise a typed refusal, and writes the entries, their postings
and the cumulative balances. Whatever the order of the work, a refusal leaves nothing behind: the caller's
database transaction is rolled back.

On PostgreSQL the read and the write go to the server together in one pipeline, so a batch of any size
costs one round trip plus the COMMIT. The write does not need the read: entries take their ids from the
sequence inside the statement, a replayed idempotency key is skipped (before the insert, so that its
triggers don't judge a retry as a new entry; ``ON CONFLICT DO NOTHING`` covers a key committed meanwhile), the postings
join the entries actually inserted, and the balance deltas are summed from those postings and applied in
sorted key order (every writer locks balance rows in that one order, so writers wait but never deadlock).
Then ``check`` runs on what was read; if the write itself was refused by the database (a foreign key, a
trigger), ``check`` names the problem first, and the database's error stands only when the code found none.

On SQLite, in-process, round trips cost little: the same work is a few plain statements on the driver's
cursor, with ``check`` before the write, inside the transaction that BEGIN IMMEDIATE opened.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ledger.errors import PeriodClosed

# (organisation_id, kind, effective_date, posted_at, description, idempotency_key, digest, recorded_by, reverses)
EntryRow = tuple
# (organisation_id, idempotency_key, effective_date, fund_id, debit_account_id, credit_account_id, amount, currency)
PostingRow = tuple
# (account_id, fund_id, currency, debits_minor, credits_minor)
BalanceTotals = tuple

_SQLITE_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit
_SAVEPOINT = "ledger_batch"


@dataclass(frozen=True, slots=True)
class LookupRequest:
    account_ids: list[int]
    fund_ids: list[int]
    date_ranges: dict[int, tuple[dt.date, dt.date]]  # organisation → (first, last) effective date
    keys: list[tuple[int, str]]  # (organisation, idempotency key)


@dataclass(slots=True)
class Lookup:
    """What a batch points at. accounts: id → (organisation_id, code, balance_limit); funds: id →
    (organisation_id, code, status, currency); closed_periods: organisation → [(start, end)]; existing:
    (organisation, key) → (entry id, payload digest) of entries committed before this batch."""

    accounts: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    funds: dict[int, tuple[int, str, str, str]] = field(default_factory=dict)
    closed_periods: dict[int, list[tuple[dt.date, dt.date]]] = field(default_factory=dict)
    existing: dict[tuple[int, str], tuple[int, str]] = field(default_factory=dict)


@dataclass(slots=True)
class Written:
    """What the write did: ids of the entries it inserted, by (organisation, key), and the new cumulative
    totals of every balance it touched."""

    lookup: Lookup
    entry_ids: dict[tuple[int, str], int]
    totals: list[BalanceTotals]


@dataclass(slots=True)
class Batch:
    """One batch to post: what to read, what to write, and the caller's two callbacks — ``check`` judges
    what was read (and raises a typed refusal), ``finish`` judges what was written."""

    request: LookupRequest
    entries: list[EntryRow]
    postings: list[PostingRow]
    check: Callable[[Lookup], None]
    finish: Callable[[Written], None]


def post_batches(session: Session, batches: Iterable[Batch]) -> None:
    """Posts the batches in order, in the caller's transaction, all or none. On PostgreSQL they all go out
    in one pipeline: while the server writes one batch, this process is already preparing the next.

    The work runs inside a savepoint that a refusal rolls back, so a caller that catches the refusal and
    commits (to skip one line of an import, say) commits nothing of the refused batch. On PostgreSQL the
    savepoint travels in the pipeline and is released at commit, which costs no round trip.
    """
    if session.get_bind().dialect.name == "postgresql":
        _postgres_post(session, batches)
        return
    cursor = _sqlite_cursor(session)
    cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        for batch in batches:
            batch.finish(_sqlite_post(cursor, batch))
    except sqlite3.Error as error:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise _wrapped(error, sqlite3.Error) from error
    except BaseException:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise
    finally:
        cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def _wrapped(error: Exception, driver_base: type[Exception]) -> Exception:
    """The driver's error as the caller should see it: a typed refusal where the database's own guard
    speaks for a domain rule (a period closed after this batch read it open), else the error as SQLAlchemy
    would have raised it (IntegrityError, OperationalError, …), so that Database.write's retry sees one kind
    of database error whichever path raised it."""
    if str(error).startswith("period_closed"):
        return PeriodClosed("the entry is dated inside a period closed while it was being posted",
                            field="effective_date")
    return DBAPIError.instance("posting batch", None, error, driver_base)


_POSTGRES_LOOKUP = """
SELECT 'a', id, organisation_id, code::text, balance_limit::text, NULL::text, NULL::date, NULL::date
  FROM accounts WHERE id = ANY(%(account_ids)s::bigint[])
UNION ALL
SELECT 'f', id, organisation_id, code::text, status::text, currency::text, NULL, NULL
  FROM funds WHERE id = ANY(%(fund_ids)s::bigint[])
UNION ALL
SELECT 'p', p.id, p.organisation_id, NULL, NULL, NULL, p.start_date, p.end_date
  FROM periods p
  JOIN unnest(%(range_orgs)s::bigint[], %(range_firsts)s::date[], %(range_lasts)s::date[]) AS r(org, first, last)
    ON p.organisation_id = r.org AND p.status = 'closed' AND p.start_date <= r.last AND p.end_date >= r.first
UNION ALL
SELECT 'k', e.id, e.organisation_id, e.idempotency_key::text, e.payload_digest::text, NULL, NULL, NULL
  FROM entries e
  JOIN unnest(%(key_orgs)s::bigint[], %(keys)s::text[]) AS k(org, key)
    ON e.organisation_id = k.org AND e.idempotency_key = k.key
"""

_POSTGRES_WRITE = """
WITH e AS (
  INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,
                       payload_digest, recorded_by, reverses_entry_id)
  SELECT nextval('entries_id_seq'), u.*
    FROM unnest(%(e_organisation)s::bigint[], %(e_kind)s::varchar[], %(e_date)s::date[],
                %(e_posted)s::timestamptz[], %(e_description)s::varchar[], %(e_key)s::varchar[],
                %(e_digest)s::varchar[], %(e_by)s::varchar[], %(e_reverses)s::bigint[])
         AS u(organisation_id, kind, effective_date, posted_at, description, idempotency_key, digest, by, reverses)
   WHERE NOT EXISTS (SELECT 1 FROM entries x
                      WHERE x.organisation_id = u.organisation_id AND x.idempotency_key = u.idempotency_key)
  ON CONFLICT (organisation_id, idempotency_key) DO NOTHING
  RETURNING id, organisation_id, idempotency_key
), p AS (
  INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,
                        credit_account_id, amount_minor, currency)
  SELECT e.id, u.organisation_id, u.effective_date, u.fund_id, u.debit, u.credit, u.amount, u.currency
    FROM unnest(%(p_organisation)s::bigint[], %(p_key)s::varchar[], %(p_date)s::date[], %(p_fund)s::bigint[],
                %(p_debit)s::bigint[], %(p_credit)s::bigint[], %(p_amount)s::bigint[], %(p_currency)s::varchar[],
                %(p_order)s::int[])
         AS u(organisation_id, key, effective_date, fund_id, debit, credit, amount, currency, position)
    JOIN e ON e.organisation_id = u.organisation_id AND e.idempotency_key = u.key
   ORDER BY u.position
  RETURNING organisation_id, fund_id, debit_account_id, credit_account_id, amount_minor, currency
), delta AS (
  SELECT account_id, fund_id, currency, organisation_id, sum(debit) AS debits, sum(credit) AS credits
    FROM (SELECT debit_account_id AS account_id, fund_id, currency, organisation_id, amount_minor AS debit,
                 0 AS credit FROM p
          UNION ALL
          SELECT credit_account_id, fund_id, currency, organisation_id, 0, amount_minor FROM p) AS sides
   GROUP BY account_id, fund_id, currency, organisation_id
), b AS (
  INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
  SELECT * FROM delta ORDER BY account_id, fund_id, currency
  ON CONFLICT (account_id, fund_id, currency) DO UPDATE
    SET debits_minor = balances.debits_minor + excluded.debits_minor,
        credits_minor = balances.credits_minor + excluded.credits_minor
  RETURNING account_id, fund_id, currency, debits_minor, credits_minor
)
SELECT 'b', account_id, fund_id, currency, debits_minor, credits_minor FROM b
UNION ALL
SELECT 'e', id, organisation_id, idempotency_key, NULL, NULL FROM e
"""


def _columns(prefix: str, names: tuple[str, ...], rows: list[tuple]) -> dict[str, list]:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return {f"{prefix}_{name}": list(column) for name, column in zip(names, columns, strict=True)}


def _lookup_parameters(request: LookupRequest) -> dict:
    organisations = list(request.date_ranges)
    return {
        "account_ids": request.account_ids, "fund_ids": request.fund_ids, "range_orgs": organisations,
        "range_firsts": [request.date_ranges[o][0] for o in organisations],
        "range_lasts": [request.date_ranges[o][1] for o in organisations],
        "key_orgs": [k[0] for k in request.keys], "keys": [k[1] for k in request.keys],
    }


def _postgres_write(batch: Batch) -> tuple[str, dict]:
    if len(batch.entries) == 1:
        return _single_entry_write(batch.entries[0], batch.postings)
    # Entries go in idempotency-key order, so two batches that share keys meet them in the same order.
    ordered = sorted(batch.entries, key=lambda row: (row[0], row[5]))
    return _POSTGRES_WRITE, {
        **_columns("e", ("organisation", "kind", "date", "posted", "description", "key", "digest", "by",
                         "reverses"), ordered),
        **_columns("p", ("organisation", "key", "date", "fund", "debit", "credit", "amount", "currency"),
                   batch.postings),
        "p_order": list(range(len(batch.postings))),
    }


def _single_entry_write(entry: EntryRow, postings: list[PostingRow]) -> tuple[str, dict]:
    """One entry, as plain VALUES: for the commonest write (a gift, a grant) unpacking a dozen arrays
    costs the server more than the rows themselves. With one entry the write is all or nothing, so the
    balance deltas are summed here and applied only if the entry was inserted."""
    deltas = _deltas(postings)
    parameters = dict(zip(("o", "kind", "d", "at", "desc", "k", "dig", "by", "rev"), entry, strict=True))
    for i, (*_, fund_id, debit, credit, amount, currency) in enumerate(postings):
        parameters.update({f"p{i}f": fund_id, f"p{i}d": debit, f"p{i}c": credit, f"p{i}a": amount,
                           f"p{i}cur": currency})
    for j, (account_id, fund_id, currency, _org, debits, credits) in enumerate(deltas):
        parameters.update({f"b{j}a": account_id, f"b{j}f": fund_id, f"b{j}cur": currency, f"b{j}d": debits,
                           f"b{j}c": credits})
    return _single_entry_sql(len(postings), len(deltas)), parameters


@cache
def _single_entry_sql(posting_count: int, delta_count: int) -> str:
    postings = ", ".join(
        f"(%(p{i}f)s::bigint, %(p{i}d)s::bigint, %(p{i}c)s::bigint, %(p{i}a)s::bigint, %(p{i}cur)s::varchar, {i})"
        for i in range(posting_count))
    deltas = ", ".join(
        f"(%(b{j}a)s::bigint, %(b{j}f)s::bigint, %(b{j}cur)s::varchar, %(o)s::bigint, %(b{j}d)s::bigint,"
        f" %(b{j}c)s::bigint)" for j in range(delta_count))
    return f"""
WITH e AS (
  INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,
                       payload_digest, recorded_by, reverses_entry_id)
  SELECT nextval('entries_id_seq'), %(o)s::bigint, %(kind)s::varchar, %(d)s::date, %(at)s::timestamptz,
         %(desc)s::varchar, %(k)s::varchar, %(dig)s::varchar, %(by)s::varchar, %(rev)s::bigint
   WHERE NOT EXISTS (SELECT 1 FROM entries x WHERE x.organisation_id = %(o)s::bigint
                                              AND x.idempotency_key = %(k)s::varchar)
  ON CONFLICT (organisation_id, idempotency_key) DO NOTHING
  RETURNING id, organisation_id, idempotency_key
), p AS (
  INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,
                        credit_account_id, amount_minor, currency)
  SELECT e.id, e.organisation_id, %(d)s::date, v.fund_id, v.debit, v.credit, v.amount, v.currency
    FROM e, (VALUES {postings}) AS v(fund_id, debit, credit, amount, currency, position)
   ORDER BY v.position
), b AS (
  INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
  SELECT v.* FROM (VALUES {deltas}) AS v WHERE EXISTS (SELECT 1 FROM e)
  ON CONFLICT (account_id, fund_id, currency) DO UPDATE
    SET debits_minor = balances.debits_minor + excluded.debits_minor,
        credits_minor = balances.credits_minor + excluded.credits_minor
  RETURNING account_id, fund_id, currency, debits_minor, credits_minor
)
SELECT 'b', account_id, fund_id, currency, debits_minor, credits_minor FROM b
UNION ALL
SELECT 'e', id, organisation_id, idempotency_key, NULL, NULL FROM e
"""


def _postgres_post(session: Session, batches: Iterable[Batch]) -> None:
    connection = session.connection().connection.driver_connection
    try:
        _postgres_pipeline(connection, batches)
    except BaseException:
        connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise


def _postgres_pipeline(connection, batches: Iterable[Batch]) -> None:
    try:
        with connection.pipeline():
            connection.execute(f"SAVEPOINT {_SAVEPOINT}")
            sent = []
            for batch in batches:
                reader, writer = connection.cursor(), connection.cursor()
                reader.execute(_POSTGRES_LOOKUP, _lookup_parameters(batch.request))
                writer.execute(*_postgres_write(batch))
                sent.append((batch, reader, writer))
            written = [(batch, _postgres_written(batch, reader, writer)) for batch, reader, writer in sent]
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error
    # Outside the pipeline: ``finish`` may run ordinary queries (a replay loads its original entry).
    for batch, result in written:
        batch.finish(result)


def _postgres_written(batch: Batch, reader, writer) -> Written:
    write_error: Exception | None = None
    try:
        written_rows = writer.fetchall()
    except psycopg.Error as error:  # the database refused the write; the read's rows are still here
        write_error, written_rows = _wrapped(error, psycopg.Error), []
    lookup = _postgres_lookup(reader.fetchall())
    batch.check(lookup)
    if write_error is not None:
        raise write_error
    entry_ids = {(row[2], row[3]): row[1] for row in written_rows if row[0] == "e"}
    totals = [tuple(row[1:]) for row in written_rows if row[0] == "b"]
    return Written(lookup, entry_ids, totals)


def _postgres_lookup(rows) -> Lookup:
    lookup = Lookup()
    for kind, row_id, organisation_id, text1, text2, text3, start, end in rows:
        if kind == "a":
            lookup.accounts[row_id] = (organisation_id, text1, text2)
        elif kind == "f":
            lookup.funds[row_id] = (organisation_id, text1, text2, text3)
        elif kind == "p":
            lookup.closed_periods.setdefault(organisation_id, []).append((start, end))
        else:
            lookup.existing[(organisation_id, text1)] = (row_id, text2)
    return lookup


def _sqlite_cursor(session: Session):
    return session.connection().connection.driver_connection.cursor()


def _in_chunks(cursor, sql: str, values: list) -> list[tuple]:
    """Runs ``sql`` (with one ``{marks}`` for an IN list) over ``values`` in chunks."""
    rows = []
    for start in range(0, len(values), _SQLITE_CHUNK):
        chunk = values[start:start + _SQLITE_CHUNK]
        rows += cursor.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows


def _sqlite_post(cursor, batch: Batch) -> Written:
    lookup = _sqlite_lookup(cursor, batch.request)
    batch.check(lookup)
    fresh = [row for row in batch.entries if (row[0], row[5]) not in lookup.existing]
    # BEGIN IMMEDIATE gave this transaction SQLite's only write lock: no other writer can take these ids.
    highest = cursor.execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()[0]
    entry_ids = {(row[0], row[5]): highest + offset for offset, row in enumerate(fresh, start=1)}
    fresh_postings = [row for row in batch.postings if (row[0], row[1]) in entry_ids]
    totals = [tuple(cursor.execute(_SQLITE_UPSERT, delta).fetchone()) for delta in _deltas(fresh_postings)]
    cursor.executemany(
        "INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,"
        " payload_digest, recorded_by, reverses_entry_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(entry_ids[(row[0], row[5])], row[0], row[1], row[2].isoformat(), _sqlite_datetime(row[3]), *row[4:])
         for row in fresh])
    cursor.executemany(
        "INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,"
        " credit_account_id, amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(entry_ids[(row[0], row[1])], row[0], row[2].isoformat(), *row[3:]) for row in fresh_postings])
    return Written(lookup, entry_ids, totals)


def _deltas(postings: list[PostingRow]) -> list[tuple]:
    """Per (account, fund, currency), in sorted key order: (account, fund, currency, org, debits, credits)."""
    sums: dict[tuple[int, int, str], list[int]] = {}
    for organisation_id, _key, _date, fund_id, debit, credit, amount, currency in postings:
        sums.setdefault((debit, fund_id, currency), [organisation_id, 0, 0])[1] += amount
        sums.setdefault((credit, fund_id, currency), [organisation_id, 0, 0])[2] += amount
    return [(*key, *sums[key]) for key in sorted(sums)]


def _sqlite_lookup(cursor, request: LookupRequest) -> Lookup:
    lookup = Lookup()
    for row_id, organisation_id, code, limit in _in_chunks(
            cursor, "SELECT id, organisation_id, code, balance_limit FROM accounts WHERE id IN ({marks})",
            request.account_ids):
        lookup.accounts[row_id] = (organisation_id, code, limit)
    for row_id, organisation_id, code, status, currency in _in_chunks(
            cursor, "SELECT id, organisation_id, code, status, currency FROM funds WHERE id IN ({marks})",
            request.fund_ids):
        lookup.funds[row_id] = (organisation_id, code, status, currency)
    for organisation_id, (first, last) in request.date_ranges.items():
        for start, end in cursor.execute(
                "SELECT start_date, end_date FROM periods WHERE organisation_id = ? AND status = 'closed' "
                "AND start_date <= ? AND end_date >= ?", (organisation_id, last.isoformat(), first.isoformat())):
            lookup.closed_periods.setdefault(organisation_id, []).append(
                (dt.date.fromisoformat(start), dt.date.fromisoformat(end)))
    by_organisation: dict[int, list[str]] = {}
    for organisation_id, key in request.keys:
        by_organisation.setdefault(organisation_id, []).append(key)
    for organisation_id, keys in by_organisation.items():
        sql = (f"SELECT idempotency_key, id, payload_digest FROM entries WHERE organisation_id = {organisation_id:d}"
               " AND idempotency_key IN ({marks})")
        for key, row_id, digest in _in_chunks(cursor, sql, keys):
            lookup.existing[(organisation_id, key)] = (row_id, digest)
    return lookup


_SQLITE_UPSERT = """
INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id, fund_id, currency) DO UPDATE
  SET debits_minor = debits_minor + excluded.debits_minor, credits_minor = credits_minor + excluded.credits_minor
RETURNING account_id, fund_id, currency, debits_minor, credits_minor
"""


def _sqlite_datetime(moment: dt.datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime type reads back: UTC, without the zone.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
