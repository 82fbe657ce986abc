"""The SQL behind posting: one read and one write per batch of entries, whatever its size.

Posting is the hot path (every gift, every import line), so it does not go through the ORM. On
PostgreSQL a batch costs two round trips: one statement reads everything the checks need (accounts,
funds, closed periods, earlier uses of the idempotency keys) and takes the new entries' ids from the
sequence; one statement with data-modifying CTEs adds to the cumulative balances (rows sorted, so
concurrent writers lock them in one order and cannot deadlock), inserts the entries and inserts the
postings, with every column passed as an array. The foreign keys and triggers still check every row.
On SQLite, in-process, round trips are cheap: the same work is a handful of plain statements on the
driver's cursor, inside the transaction that BEGIN IMMEDIATE opened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

EntryRow = tuple  # (id, organisation_id, kind, effective_date, posted_at, description, key, digest, by, reverses)
PostingRow = tuple  # (entry_id, organisation_id, effective_date, fund_id, debit, credit, amount_minor, currency)
BalanceDelta = tuple  # (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
BalanceTotals = tuple  # (account_id, fund_id, currency, debits_minor, credits_minor)

_SQLITE_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit


@dataclass(slots=True)
class Lookup:
    """What a batch of drafts points at, read in one go.

    accounts: id → (organisation_id, code, balance_limit); funds: id → (organisation_id, code, status,
    currency); closed_periods: organisation → [(start, end)]; existing: (organisation, key) → (entry id,
    payload digest); new_ids: ids reserved for the batch's new entries.
    """

    accounts: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    funds: dict[int, tuple[int, str, str, str]] = field(default_factory=dict)
    closed_periods: dict[int, list[tuple[dt.date, dt.date]]] = field(default_factory=dict)
    existing: dict[tuple[int, str], tuple[int, str]] = field(default_factory=dict)
    new_ids: list[int] = field(default_factory=list)


def read_lookup(session: Session, account_ids: list[int], fund_ids: list[int],
                date_ranges: dict[int, tuple[dt.date, dt.date]], keys: list[tuple[int, str]],
                id_count: int) -> Lookup:
    if session.get_bind().dialect.name == "postgresql":
        return _postgres_lookup(session, account_ids, fund_ids, date_ranges, keys, id_count)
    return _sqlite_lookup(session, account_ids, fund_ids, date_ranges, keys, id_count)


def write_batch(session: Session, balance_deltas: list[BalanceDelta], entries: list[EntryRow],
                postings: list[PostingRow]) -> list[BalanceTotals]:
    """Writes the batch and returns the new cumulative totals of every balance it touched."""
    if not entries:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _postgres_write(session, balance_deltas, entries, postings)
    return _sqlite_write(session, balance_deltas, entries, postings)


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
SELECT 'n', nextval('entries_id_seq'), NULL, NULL, NULL, NULL, NULL, NULL FROM generate_series(1, %(id_count)s)
"""


def _postgres_lookup(session, account_ids, fund_ids, date_ranges, keys, id_count) -> Lookup:
    organisations = list(date_ranges)
    rows = session.connection().exec_driver_sql(_POSTGRES_LOOKUP, {
        "account_ids": account_ids, "fund_ids": fund_ids, "range_orgs": organisations,
        "range_firsts": [date_ranges[o][0] for o in organisations],
        "range_lasts": [date_ranges[o][1] for o in organisations],
        "key_orgs": [k[0] for k in keys], "keys": [k[1] for k in keys], "id_count": id_count,
    })
    lookup = Lookup()
    for kind, row_id, organisation_id, text1, text2, text3, start, end in rows:
        if kind == "a":
            lookup.accounts[row_id] = (organisation_id, text1, text2)
        elif kind == "f":
            lookup.funds[row_id] = (organisation_id, text1, text2, text3)
        elif kind == "p":
            lookup.closed_periods.setdefault(organisation_id, []).append((start, end))
        elif kind == "k":
            lookup.existing[(organisation_id, text1)] = (row_id, text2)
        else:
            lookup.new_ids.append(row_id)
    return lookup


_POSTGRES_WRITE = """
WITH b AS (
  INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
  SELECT * FROM unnest(%(b_account)s::bigint[], %(b_fund)s::bigint[], %(b_currency)s::varchar[],
                       %(b_organisation)s::bigint[], %(b_debits)s::bigint[], %(b_credits)s::bigint[])
  ON CONFLICT (account_id, fund_id, currency) DO UPDATE
    SET debits_minor = balances.debits_minor + excluded.debits_minor,
        credits_minor = balances.credits_minor + excluded.credits_minor
  RETURNING account_id, fund_id, currency, debits_minor, credits_minor
), e AS (
  INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,
                       payload_digest, recorded_by, reverses_entry_id)
  SELECT * FROM unnest(%(e_id)s::bigint[], %(e_organisation)s::bigint[], %(e_kind)s::varchar[],
                       %(e_date)s::date[], %(e_posted)s::timestamptz[], %(e_description)s::varchar[],
                       %(e_key)s::varchar[], %(e_digest)s::varchar[], %(e_by)s::varchar[],
                       %(e_reverses)s::bigint[])
), p AS (
  INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,
                        credit_account_id, amount_minor, currency)
  SELECT * FROM unnest(%(p_entry)s::bigint[], %(p_organisation)s::bigint[], %(p_date)s::date[],
                       %(p_fund)s::bigint[], %(p_debit)s::bigint[], %(p_credit)s::bigint[],
                       %(p_amount)s::bigint[], %(p_currency)s::varchar[])
)
SELECT account_id, fund_id, currency, debits_minor, credits_minor FROM b
"""


def _columns(prefix: str, names: tuple[str, ...], rows: list[tuple]) -> dict[str, list]:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return {f"{prefix}_{name}": list(column) for name, column in zip(names, columns, strict=True)}


def _postgres_write(session, balance_deltas, entries, postings) -> list[BalanceTotals]:
    parameters = {
        **_columns("b", ("account", "fund", "currency", "organisation", "debits", "credits"), balance_deltas),
        **_columns("e", ("id", "organisation", "kind", "date", "posted", "description", "key", "digest", "by",
                         "reverses"), entries),
        **_columns("p", ("entry", "organisation", "date", "fund", "debit", "credit", "amount", "currency"),
                   postings),
    }
    return [tuple(row) for row in session.connection().exec_driver_sql(_POSTGRES_WRITE, parameters)]


def _sqlite_cursor(session: Session):
    return session.connection().connection.driver_connection.cursor()


def _in_chunks(cursor, sql: str, values: list) -> list[tuple]:
    """Runs ``sql`` (with one ``{marks}`` for an IN list) over ``values`` in chunks."""
    rows = []
    for start in range(0, len(values), _SQLITE_CHUNK):
        chunk = values[start:start + _SQLITE_CHUNK]
        rows += cursor.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows


def _sqlite_lookup(session, account_ids, fund_ids, date_ranges, keys, id_count) -> Lookup:
    cursor = _sqlite_cursor(session)
    lookup = Lookup()
    for row_id, organisation_id, code, limit in _in_chunks(
            cursor, "SELECT id, organisation_id, code, balance_limit FROM accounts WHERE id IN ({marks})",
            account_ids):
        lookup.accounts[row_id] = (organisation_id, code, limit)
    for row_id, organisation_id, code, status, currency in _in_chunks(
            cursor, "SELECT id, organisation_id, code, status, currency FROM funds WHERE id IN ({marks})",
            fund_ids):
        lookup.funds[row_id] = (organisation_id, code, status, currency)
    for organisation_id, (first, last) in date_ranges.items():
        for start, end in cursor.execute(
                "SELECT start_date, end_date FROM periods WHERE organisation_id = ? AND status = 'closed' "
                "AND start_date <= ? AND end_date >= ?", (organisation_id, last.isoformat(), first.isoformat())):
            lookup.closed_periods.setdefault(organisation_id, []).append(
                (dt.date.fromisoformat(start), dt.date.fromisoformat(end)))
    _sqlite_existing_keys(cursor, keys, lookup)
    # BEGIN IMMEDIATE gave this transaction SQLite's only write lock: no other writer can take these ids.
    highest = cursor.execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()[0]
    lookup.new_ids = list(range(highest + 1, highest + 1 + id_count))
    return lookup


def _sqlite_existing_keys(cursor, keys: list[tuple[int, str]], lookup: Lookup) -> None:
    by_organisation: dict[int, list[str]] = {}
    for organisation_id, key in keys:
        by_organisation.setdefault(organisation_id, []).append(key)
    for organisation_id, organisation_keys in by_organisation.items():
        sql = (f"SELECT idempotency_key, id, payload_digest FROM entries WHERE organisation_id = {organisation_id:d}"
               " AND idempotency_key IN ({marks})")
        for key, row_id, digest in _in_chunks(cursor, sql, organisation_keys):
            lookup.existing[(organisation_id, key)] = (row_id, digest)


_SQLITE_UPSERT = """
INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id, fund_id, currency) DO UPDATE
  SET debits_minor = debits_minor + excluded.debits_minor, credits_minor = credits_minor + excluded.credits_minor
RETURNING account_id, fund_id, currency, debits_minor, credits_minor
"""


def _sqlite_write(session, balance_deltas, entries, postings) -> list[BalanceTotals]:
    cursor = _sqlite_cursor(session)
    totals = [tuple(cursor.execute(_SQLITE_UPSERT, delta).fetchone()) for delta in balance_deltas]
    cursor.executemany(
        "INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,"
        " payload_digest, recorded_by, reverses_entry_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*row[:3], row[3].isoformat(), _sqlite_datetime(row[4]), *row[5:]) for row in entries])
    cursor.executemany(
        "INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,"
        " credit_account_id, amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(row[0], row[1], row[2].isoformat(), *row[3:]) for row in postings])
    return totals


def _sqlite_datetime(moment: dt.datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime type reads back: UTC, without the zone.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
