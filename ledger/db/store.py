"""The SQL behind posting: the hot path of the ledger, kept out of the ORM.

``post_batches`` reads what the checks need for a batch (accounts, funds, closed periods, the current
totals of the balances it will move, earlier uses of its idempotency keys), lets the caller's ``check``
raise a typed refusal, and writes the entries, their postings and the cumulative balances. The database
holds the same rules on its own (foreign keys, and triggers that, among other things, keep every balance
within its account's limit), so a write that a concurrent transaction made invalid after the read is
refused by the database, and the refusal is translated back into the same typed error.

PostgreSQL, one entry (a gift, a grant): one statement reads what the checks need, judges it, and only
if every rule holds inserts the entry (its id from the sequence), its postings and the balance deltas, in
sorted key order so that concurrent writers wait for each other but never deadlock; the code then judges
the rows read, to give a typed refusal. One round trip besides BEGIN and COMMIT.

PostgreSQL, many batches (the bulk import): everything goes out in one pipeline, so this process
prepares the next chunk while the server writes the previous one; the checks then run on what each read
returned, and a savepoint taken at the start is rolled back on any refusal.

SQLite, in-process, where round trips cost little: the same work in a few plain statements on the
driver's cursor, inside a savepoint, in the transaction that BEGIN IMMEDIATE opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ledger.core.errors import AccountLimitExceeded, PeriodClosed

# (organisation_id, kind, effective_date, posted_at, description, idempotency_key, digest, recorded_by, reverses)
EntryRow = tuple
# (organisation_id, idempotency_key, effective_date, fund_id, debit_account_id, credit_account_id, amount, currency)
PostingRow = tuple
BalanceKey = tuple  # (account_id, fund_id, currency)

_SQLITE_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit
_SAVEPOINT = "ledger_batch"
_LIMIT_DETAIL = re.compile(r"account (\d+) in fund (\d+)")


@dataclass(frozen=True, slots=True)
class LookupRequest:
    account_ids: list[int]
    fund_ids: list[int]
    date_ranges: dict[int, tuple[dt.date, dt.date]]  # organisation → (first, last) effective date
    keys: list[tuple[int, str]]  # (organisation, idempotency key)
    balance_keys: list[BalanceKey]


@dataclass(slots=True)
class Lookup:
    """What a batch points at. accounts: id → (organisation_id, code, balance_limit); funds: id →
    (organisation_id, code, status, currency); closed_periods: organisation → [(start, end)]; existing:
    (organisation, key) → (entry id, payload digest) of entries committed before this batch; balances:
    (account, fund, currency) → (debits, credits) before this batch."""

    accounts: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    funds: dict[int, tuple[int, str, str, str]] = field(default_factory=dict)
    closed_periods: dict[int, list[tuple[dt.date, dt.date]]] = field(default_factory=dict)
    existing: dict[tuple[int, str], tuple[int, str]] = field(default_factory=dict)
    balances: dict[BalanceKey, tuple[int, int]] = field(default_factory=dict)


@dataclass(slots=True)
class Batch:
    """One batch to post: what to read, what to write, and the caller's two callbacks. ``check`` judges
    what was read and raises a typed refusal; ``finish`` receives the ids of the entries inserted, by
    (organisation, idempotency key)."""

    request: LookupRequest
    entries: list[EntryRow]
    postings: list[PostingRow]
    check: Callable[[Lookup], None]
    finish: Callable[[dict[tuple[int, str], int]], None]


def post_batches(session: Session, batches: Iterable[Batch], pipelined: bool = False) -> None:
    """Posts the batches in order in the caller's transaction, all or none (see the module's docstring)."""
    if session.get_bind().dialect.name != "postgresql":
        _sqlite_post(session, batches)
    elif pipelined:
        _postgres_pipelined(session.connection().connection.driver_connection, batches)
    else:
        connection = session.connection().connection.driver_connection
        for batch in batches:
            batch.finish(_postgres_one(connection, batch))


def _wrapped(error: Exception, driver_base: type[Exception]) -> Exception:
    """The driver's error as the caller should see it: a typed refusal where the database's own guard
    speaks for a domain rule (a period closed, or money spent, by a transaction that committed after this
    batch's read), else the error as SQLAlchemy would have raised it (IntegrityError, OperationalError,
    …), so that Database.write's retry sees one kind of database error whichever path raised it."""
    message = str(error)
    if message.startswith("period_closed"):
        return PeriodClosed("the entry is dated inside a period closed while it was being posted",
                            field="effective_date")
    if message.startswith("account_limit_exceeded"):
        found = _LIMIT_DETAIL.search(message)  # PostgreSQL's trigger names the balance; SQLite's cannot
        details = {"account_id": int(found[1]), "fund_id": int(found[2])} if found else {}
        return AccountLimitExceeded("a balance would break its account's limit: a concurrent write spent the "
                                    "same money first", field="postings", **details)
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
UNION ALL
SELECT 'b', b.account_id, b.fund_id, b.currency::text, b.debits_minor::text, b.credits_minor::text, NULL, NULL
  FROM balances b
  JOIN unnest(%(b_accounts)s::bigint[], %(b_funds)s::bigint[], %(b_currencies)s::text[]) AS k(a, f, c)
    ON b.account_id = k.a AND b.fund_id = k.f AND b.currency = k.c
"""

# One entry: the same read with plain parameters (the first part of _checked_single_entry_sql).
_POSTGRES_LOOKUP_ONE = """
SELECT 'a' AS kind, id, organisation_id AS number, code::text AS text1, balance_limit::text AS text2,
       NULL::text AS text3, NULL::date AS start_date, NULL::date AS end_date
  FROM accounts WHERE id = ANY(%(account_ids)s::bigint[])
UNION ALL
SELECT 'f', id, organisation_id, code::text, status::text, currency::text, NULL, NULL
  FROM funds WHERE id = ANY(%(fund_ids)s::bigint[])
UNION ALL
SELECT 'p', id, organisation_id, NULL, NULL, NULL, start_date, end_date
  FROM periods WHERE organisation_id = %(organisation)s::bigint AND status = 'closed'
                 AND start_date <= %(day)s::date AND end_date >= %(day)s::date
UNION ALL
SELECT 'k', id, organisation_id, idempotency_key::text, payload_digest::text, NULL, NULL, NULL
  FROM entries WHERE organisation_id = %(organisation)s::bigint AND idempotency_key = %(key)s::varchar
UNION ALL
SELECT 'b', account_id, fund_id, currency::text, debits_minor::text, credits_minor::text, NULL, NULL
  FROM balances WHERE account_id = ANY(%(account_ids)s::bigint[]) AND fund_id = ANY(%(fund_ids)s::bigint[])
"""

# Many entries: every column as an array. Replayed keys are skipped before the insert (so that its
# triggers don't judge a retry as a new entry); ON CONFLICT covers a key committed meanwhile. The postings
# join the entries actually inserted, and the balance deltas are summed from those postings.
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
)
SELECT id, organisation_id, idempotency_key FROM e
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
        **_columns("b", ("accounts", "funds", "currencies"), request.balance_keys),
    }


def _postgres_write(batch: Batch) -> tuple[str, dict]:
    """The write statement of a pipelined batch, every column an array."""
    # Entries go in idempotency-key order, so two batches that share keys meet them in the same order.
    ordered = sorted(batch.entries, key=lambda row: (row[0], row[5]))
    return _POSTGRES_WRITE, {
        **_columns("e", ("organisation", "kind", "date", "posted", "description", "key", "digest", "by",
                         "reverses"), ordered),
        **_columns("p", ("organisation", "key", "date", "fund", "debit", "credit", "amount", "currency"),
                   batch.postings),
        "p_order": list(range(len(batch.postings))),
    }


def _single_entry_parameters(entry: EntryRow, postings: list[PostingRow]) -> tuple[dict, int]:
    # With one entry the write is all or nothing: the deltas are summed here and applied only if the
    # entry was inserted (it is not, for a replay, a refusal, or a retry that raced with its original).
    deltas = _deltas(postings)
    parameters = dict(zip(("o", "kind", "d", "at", "desc", "k", "dig", "by", "rev"), entry, strict=True))
    for i, (*_, fund_id, debit, credit, amount, currency) in enumerate(postings):
        parameters.update({f"p{i}f": fund_id, f"p{i}d": debit, f"p{i}c": credit, f"p{i}a": amount,
                           f"p{i}cur": currency})
    for j, (account_id, fund_id, currency, _org, debits, credits) in enumerate(deltas):
        parameters.update({f"b{j}a": account_id, f"b{j}f": fund_id, f"b{j}cur": currency, f"b{j}d": debits,
                           f"b{j}c": credits})
    return parameters, len(deltas)


def _postgres_one(connection, batch: Batch) -> dict[tuple[int, str], int]:
    """One entry in one statement that reads, judges and writes (see _checked_single_entry_sql); then the
    code judges what it read. A refusal by the database aborts the statement, and PostgreSQL lets nothing
    of an aborted transaction commit."""
    if len(batch.entries) != 1:
        raise AssertionError("one statement writes one entry; batches go through the pipeline")
    try:
        rows = connection.execute(*_checked_single_entry(batch)).fetchall()
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error
    entry_ids = {(row[2], row[3]): row[1] for row in rows if row[0] == "e"}
    try:
        batch.check(_postgres_lookup(row for row in rows if row[0] != "e"))
    except Exception:
        if entry_ids:  # the statement's guard let through what the code refuses: make sure it cannot commit
            _abort(connection)
        raise
    return entry_ids


def _abort(connection) -> None:
    # The failed statement leaves the transaction aborted: a COMMIT will roll it back.
    with contextlib.suppress(psycopg.Error):
        connection.execute("DO $$ BEGIN RAISE EXCEPTION 'refused by the ledger'; END $$")


def _checked_single_entry(batch: Batch) -> tuple[str, dict]:
    parameters, delta_count = _single_entry_parameters(batch.entries[0], batch.postings)
    request = batch.request
    [(organisation_id, key)] = request.keys
    parameters.update({"account_ids": request.account_ids, "fund_ids": request.fund_ids,
                       "organisation": organisation_id, "key": key, "day": request.date_ranges[organisation_id][0],
                       "account_count": len(request.account_ids), "fund_count": len(request.fund_ids)})
    return _checked_single_entry_sql(len(batch.postings), delta_count), parameters


@cache
def _checked_single_entry_sql(posting_count: int, delta_count: int) -> str:
    """The read, the judgement and the write of one entry in one statement. The write happens only if the
    read finds every rule kept — the same rules the code then checks on the rows read, so that a refusal
    is typed and precise, and nothing is written for it. (Every CTE sees the snapshot taken when the
    statement began: ``lookup`` reads the ledger as it was before this entry.)"""
    # Plain VALUES, not arrays: for the commonest write (a gift, a grant) unpacking a dozen arrays costs the
    # server more than the rows themselves.
    postings = ", ".join(
        f"(%(p{i}f)s::bigint, %(p{i}d)s::bigint, %(p{i}c)s::bigint, %(p{i}a)s::bigint, %(p{i}cur)s::varchar, {i})"
        for i in range(posting_count))
    deltas = ", ".join(
        f"(%(b{j}a)s::bigint, %(b{j}f)s::bigint, %(b{j}cur)s::varchar, %(o)s::bigint, %(b{j}d)s::bigint,"
        f" %(b{j}c)s::bigint)" for j in range(delta_count))
    return f"""
WITH lookup AS MATERIALIZED ({_POSTGRES_LOOKUP_ONE}
), posting AS (
  SELECT * FROM (VALUES {postings}) AS v(fund_id, debit, credit, amount, currency, position)
), delta AS (
  SELECT * FROM (VALUES {deltas}) AS v(account_id, fund_id, currency, organisation_id, debits, credits)
), allowed AS (
  SELECT (SELECT count(*) FROM lookup WHERE kind = 'a' AND number = %(o)s::bigint) = %(account_count)s
     AND (SELECT count(*) FROM lookup WHERE kind = 'f' AND number = %(o)s::bigint AND text2 = 'open')
         = %(fund_count)s
     AND NOT EXISTS (SELECT 1 FROM posting v LEFT JOIN lookup f ON f.kind = 'f' AND f.id = v.fund_id
                      WHERE f.text3 IS DISTINCT FROM v.currency)
     AND NOT EXISTS (SELECT 1 FROM lookup WHERE kind IN ('p', 'k'))
     AND NOT EXISTS (
       SELECT 1 FROM delta d
         JOIN lookup a ON a.kind = 'a' AND a.id = d.account_id
         LEFT JOIN lookup b ON b.kind = 'b' AND b.id = d.account_id AND b.number = d.fund_id
                           AND b.text1 = d.currency
        WHERE (a.text2 = 'credits_must_not_exceed_debits'
               AND coalesce(b.text3::bigint, 0) + d.credits > coalesce(b.text2::bigint, 0) + d.debits)
           OR (a.text2 = 'debits_must_not_exceed_credits'
               AND coalesce(b.text2::bigint, 0) + d.debits > coalesce(b.text3::bigint, 0) + d.credits)) AS ok
), e AS (
  INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,
                       payload_digest, recorded_by, reverses_entry_id)
  SELECT nextval('entries_id_seq'), %(o)s::bigint, %(kind)s::varchar, %(d)s::date, %(at)s::timestamptz,
         %(desc)s::varchar, %(k)s::varchar, %(dig)s::varchar, %(by)s::varchar, %(rev)s::bigint
    FROM allowed WHERE allowed.ok
  ON CONFLICT (organisation_id, idempotency_key) DO NOTHING
  RETURNING id, organisation_id, idempotency_key
), p AS (
  INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,
                        credit_account_id, amount_minor, currency)
  SELECT e.id, e.organisation_id, %(d)s::date, v.fund_id, v.debit, v.credit, v.amount, v.currency
    FROM e, posting v ORDER BY v.position
), b AS (
  INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
  SELECT d.* FROM delta d WHERE EXISTS (SELECT 1 FROM e) ORDER BY d.account_id, d.fund_id, d.currency
  ON CONFLICT (account_id, fund_id, currency) DO UPDATE
    SET debits_minor = balances.debits_minor + excluded.debits_minor,
        credits_minor = balances.credits_minor + excluded.credits_minor
)
SELECT * FROM lookup
UNION ALL
SELECT 'e', id, organisation_id, idempotency_key, NULL, NULL, NULL, NULL FROM e
"""


def _postgres_pipelined(connection, batches: Iterable[Batch]) -> None:
    try:
        written = _postgres_pipeline(connection, batches)
    except BaseException:
        connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise
    # Outside the pipeline: ``finish`` may run ordinary queries (a replay loads its original entry).
    for batch, entry_ids in written:
        batch.finish(entry_ids)


def _postgres_pipeline(connection, batches: Iterable[Batch]) -> list:
    try:
        with connection.pipeline():
            connection.execute(f"SAVEPOINT {_SAVEPOINT}")
            sent = []
            for batch in batches:
                reader, writer = connection.cursor(), connection.cursor()
                reader.execute(_POSTGRES_LOOKUP, _lookup_parameters(batch.request))
                writer.execute(*_postgres_write(batch))
                sent.append((batch, reader, writer))
            return [(batch, _pipelined_result(batch, reader, writer)) for batch, reader, writer in sent]
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error


def _pipelined_result(batch: Batch, reader, writer) -> dict[tuple[int, str], int]:
    write_error: Exception | None = None
    try:
        rows = writer.fetchall()
    except psycopg.Error as error:  # the database refused the write; the read's rows are still here
        write_error, rows = _wrapped(error, psycopg.Error), []
    batch.check(_postgres_lookup(reader.fetchall()))  # a typed refusal from the code comes first
    if write_error is not None:
        raise write_error
    return {(organisation_id, key): entry_id for entry_id, organisation_id, key in rows}


def _postgres_lookup(rows) -> Lookup:
    lookup = Lookup()
    for kind, row_id, number, text1, text2, text3, start, end in rows:
        if kind == "a":
            lookup.accounts[row_id] = (number, text1, text2)
        elif kind == "f":
            lookup.funds[row_id] = (number, text1, text2, text3)
        elif kind == "p":
            lookup.closed_periods.setdefault(number, []).append((start, end))
        elif kind == "k":
            lookup.existing[(number, text1)] = (row_id, text2)
        else:
            lookup.balances[(row_id, number, text1)] = (int(text2), int(text3))
    return lookup


def _sqlite_post(session: Session, batches: Iterable[Batch]) -> None:
    cursor = session.connection().connection.driver_connection.cursor()
    # SQLite runs on after a failed statement, so the batch's own savepoint keeps a refusal from leaving
    # half a batch behind for a caller that carries on and commits.
    cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        for batch in batches:
            batch.finish(_sqlite_batch(cursor, batch))
    except sqlite3.Error as error:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise _wrapped(error, sqlite3.Error) from error
    except BaseException:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise
    finally:
        cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def _in_chunks(cursor, sql: str, values: list) -> list[tuple]:
    """Runs ``sql`` (with one ``{marks}`` for an IN list) over ``values`` in chunks."""
    rows = []
    for start in range(0, len(values), _SQLITE_CHUNK):
        chunk = values[start:start + _SQLITE_CHUNK]
        rows += cursor.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows


def _sqlite_batch(cursor, batch: Batch) -> dict[tuple[int, str], int]:
    lookup = _sqlite_lookup(cursor, batch.request)
    batch.check(lookup)
    fresh = [row for row in batch.entries if (row[0], row[5]) not in lookup.existing]
    # BEGIN IMMEDIATE gave this transaction SQLite's only write lock: no other writer can take these ids.
    highest = cursor.execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()[0]
    entry_ids = {(row[0], row[5]): highest + offset for offset, row in enumerate(fresh, start=1)}
    fresh_postings = [row for row in batch.postings if (row[0], row[1]) in entry_ids]
    cursor.executemany(_SQLITE_UPSERT, _deltas(fresh_postings))
    posted_at = {moment: _sqlite_datetime(moment) for moment in {row[3] for row in fresh}}  # one per batch
    cursor.executemany(
        "INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,"
        " payload_digest, recorded_by, reverses_entry_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(entry_ids[(row[0], row[5])], row[0], row[1], row[2].isoformat(), posted_at[row[3]], *row[4:])
         for row in fresh])
    cursor.executemany(
        "INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,"
        " credit_account_id, amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(entry_ids[(row[0], row[1])], row[0], row[2].isoformat(), *row[3:]) for row in fresh_postings])
    return entry_ids


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
    _sqlite_balances(cursor, request.balance_keys, lookup)
    return lookup


def _sqlite_balances(cursor, keys: list[BalanceKey], lookup: Lookup) -> None:
    by_account_fund: dict[tuple[int, int], set[str]] = {}
    for account_id, fund_id, currency in keys:
        by_account_fund.setdefault((account_id, fund_id), set()).add(currency)
    for (account_id, fund_id), currencies in by_account_fund.items():
        for currency, debits, credits in cursor.execute(
                "SELECT currency, debits_minor, credits_minor FROM balances WHERE account_id = ? AND fund_id = ?",
                (account_id, fund_id)):
            if currency in currencies:
                lookup.balances[(account_id, fund_id, currency)] = (debits, credits)


_SQLITE_UPSERT = """
INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id, fund_id, currency) DO UPDATE
  SET debits_minor = debits_minor + excluded.debits_minor, credits_minor = credits_minor + excluded.credits_minor
"""


def _sqlite_datetime(moment: dt.datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime type reads back: UTC, without the zone.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
