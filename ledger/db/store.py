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

PostgreSQL, one entry of today whose balances another writer of this process is moving now (``_contended``: eight
writers on one fund): the statement writes the entry and its postings only, the code judges what it read, and the
balances and months go in a statement of their own that the connection holds until the transaction's next statement
or sends with its COMMIT in the same round trip (``ledger.db.held``). The balance rows are then locked only while the
server writes them and commits, not while the answer travels to the client and the client, behind its other threads,
judges it. When a balance's row is missing or a limited one's last day is not the entry's date, that statement is
sent at once and the days judged as above; when another writer moves such a day on between the read and the COMMIT,
the held statement refuses itself with a serialization failure, and ``Database.write`` retries.

Limits on every date (``daily_balances``): each balance row records the latest day it moved (``last_day``), and
its totals are that day's, so ``daily_balances`` keeps only the days before it. An entry dated on its balance's
last day (the commonest write: a gift recorded today) writes no day row at all. The first entry of a later day
closes the balance's previous last day, a row written once with the totals before it (``_CLOSED_DAYS``: the day
read from the row the write just locked, so a later day committed by another writer meanwhile is seen; for one
entry, ``_TO_CLOSE`` returns it and ``_close_days`` writes it, only when there is one). The days of a backdated
entry are rewritten by the days statement (``_POSTGRES_DAYS``): pipelined after each write of a batch, and for one
entry sent in a second round trip only when it is needed.

PostgreSQL, many batches (the bulk import): everything goes out in one pipeline, so this process
prepares the next chunk while the server writes the previous one; the checks then run on what each read
returned, and a savepoint taken at the start is rolled back on any refusal. When the database refuses a write
of the pipeline (which cannot say whose), the batches are judged again one by one, each read and checked before
its write is sent, so that the refusal names its entry.

SQLite, in-process, where round trips cost little: the same work in a few plain statements on the
driver's cursor, inside a savepoint, in the transaction that BEGIN IMMEDIATE opened.

Rows cross this module's boundary as NamedTuples (``EntryRow``, ``PostingRow``, ``BalanceDelta`` and the
``ledger.core.facts`` rows), which the drivers take as they would plain tuples.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from typing import NamedTuple

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ledger.core.drafts import EntryDraft
from ledger.core.errors import AccountLimitExceeded, ConcurrentWrite, PeriodClosed
from ledger.core.facts import (
    AccountFacts,
    BalanceKey,
    ClosedPeriod,
    Cumulative,
    DailyFacts,
    DayChanges,
    DayTotals,
    EntryKey,
    FundFacts,
    KeptEntry,
    Lookup,
    LookupRequest,
)
from ledger.core.limits import days_after
from ledger.db import held
from ledger.db.engine import unique_violation_on
from ledger.db.types import sqlite_text

_SQLITE_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit
_SAVEPOINT = "ledger_batch"
_LIMIT_DETAIL = re.compile(r"account (\d+) in fund (\d+)")


def _compact(sql: str) -> str:
    """The statement on one line, each run of spaces one space: fewer bytes on the wire for every gift."""
    assert "--" not in sql, "a comment would swallow the rest of a statement kept on one line"
    return " ".join(sql.split())


_NAMED = re.compile(r"%\((\w+)\)s")


@cache
def _positional(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """The statement with PostgreSQL's own placeholders ($1, $2, …; a name used twice is one), and the names in
    their order. psycopg parses a statement with named placeholders on every execution once it is over 4 KiB (as
    the one-entry statement is), which costs more than a quarter of a millisecond here; a raw cursor sends the
    statement as it is."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    converted = _NAMED.sub(number, sql)
    assert "%" not in converted, "a placeholder psycopg would have read but this conversion did not"
    return converted.encode(), tuple(names)


def _run(connection, sql: str, parameters: dict) -> psycopg.RawCursor:
    """Executes a named-placeholder statement on a new raw cursor (see ``_positional``)."""
    statement, names = _positional(sql)
    cursor = psycopg.RawCursor(connection)
    cursor.execute(statement, [parameters[name] for name in names])
    return cursor


def _executed(connection, sql: str, parameters: dict) -> list[tuple]:
    """The rows of a named-placeholder statement, prepared once per session where the connection can (a held
    connection sends it with the transaction's BEGIN, see ``held.Connection.execute_prepared``)."""
    if not isinstance(connection, held.Connection):
        return _run(connection, sql, parameters).fetchall()
    statement, names = _positional(sql)
    return connection.execute_prepared(_prepared_name(statement), statement, [parameters[name] for name in names])


@cache
def _prepared_name(statement: bytes) -> bytes:
    return b"ledger_" + hashlib.blake2s(statement, digest_size=8).hexdigest().encode()


class EntryRow(NamedTuple):
    """An entry to insert, its columns in the order of the INSERT (see ``ledger.core.drafts.EntryDraft``)."""

    organisation_id: int
    kind: str
    effective_date: dt.date
    posted_at: dt.datetime
    description: str
    idempotency_key: str
    payload_digest: str
    recorded_by: str
    reverses_entry_id: int | None


class PostingRow(NamedTuple):
    """A posting to insert. It names its entry by the entry's key: the id is known only once the entry is in."""

    organisation_id: int
    idempotency_key: str
    effective_date: dt.date
    fund_id: int
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    currency: str


class BalanceDelta(NamedTuple):
    """What a batch adds to one cumulative balance, in the column order of the balances upsert."""

    account_id: int
    fund_id: int
    currency: str
    organisation_id: int
    debits_minor: int
    credits_minor: int
    last_day: dt.date  # the latest date of the batch's postings on it (``balances.last_day``)


EntryIds = dict[EntryKey, int]  # by key (a plain (organisation, key) tuple is an equal key)


@dataclass(slots=True)
class Batch:
    """One batch to post: what to read, what to write, and the caller's two callbacks. ``check`` judges
    what was read and raises a typed refusal; ``finish`` receives the ids of the entries inserted, by key."""

    request: LookupRequest
    entries: list[EntryRow]
    postings: list[PostingRow]
    check: Callable[[Lookup], None]
    finish: Callable[[EntryIds], None]
    check_days: Callable[[DailyFacts], None]
    # What the batch adds to each limited balance by day, once ``check`` has judged it (``check_limits``).
    day_changes: Callable[[], DayChanges]

    @classmethod
    def of(cls, drafts: Sequence[EntryDraft], digests: Sequence[str], posted_at: dt.datetime,
           check: Callable[[Lookup], None], finish: Callable[[EntryIds], None],
           check_days: Callable[[DailyFacts], None], day_changes: Callable[[], DayChanges]) -> Batch:
        # tuple.__new__ straight: on the bulk path (a million rows) the generated constructor's call costs more
        # than the row itself.
        entries, postings = [], []
        entry_row, posting_row = partial(tuple.__new__, EntryRow), partial(tuple.__new__, PostingRow)
        for draft, digest in zip(drafts, digests, strict=True):
            # str(kind): an EntryKind member is a str subclass, which sqlite3 binds only after asking it for an
            # adapter (an AttributeError per row: a quarter of the bulk import's insert time).
            entries.append(entry_row((draft.organisation_id, str(draft.kind), draft.effective_date, posted_at,
                                      draft.description, draft.idempotency_key, digest, draft.recorded_by,
                                      draft.reverses_entry_id)))
            postings.extend(posting_row((draft.organisation_id, draft.idempotency_key, draft.effective_date,
                                         posting.fund_id, posting.debit_account_id, posting.credit_account_id,
                                         posting.amount_minor, posting.currency)) for posting in draft.postings)
        return cls(LookupRequest.of(drafts), entries, postings, check, finish, check_days, day_changes)


def post_batches(session: Session, batches: Iterable[Batch], pipelined: bool = False) -> None:
    """Posts the batches in order in the caller's transaction, all or none (see the module's docstring)."""
    if session.get_bind().dialect.name != "postgresql":
        _sqlite_post(session, batches)
        return
    connection = session.connection().connection.driver_connection
    if isinstance(connection, held.Connection):
        connection.send_held()  # an earlier entry's balances, held for the COMMIT, go first
    if pipelined:
        _postgres_pipelined(connection, batches)
    else:
        for batch in batches:
            batch.finish(_postgres_one(connection, batch))


def _wrapped(error: Exception, driver_base: type[Exception]) -> Exception:
    """The driver's error as the caller should see it: a typed refusal where the database's own guard
    speaks for a domain rule (a period closed, or money spent, by a transaction that committed after this
    batch's read; an entry reversed, or its key used, by one that committed first), else the error as
    SQLAlchemy would have raised it (IntegrityError, OperationalError, …), so that Database.write's retry sees
    one kind of database error whichever path raised it."""
    message = str(error)
    if message.startswith("period_closed"):
        return PeriodClosed("the entry is dated inside a period closed while it was being posted",
                            field="effective_date")
    if message.startswith("account_limit_exceeded"):
        found = _LIMIT_DETAIL.search(message)  # PostgreSQL's trigger names the balance; SQLite's cannot
        details = {"account_id": int(found[1]), "fund_id": int(found[2])} if found else {}
        return AccountLimitExceeded("a balance would break its account's limit: a concurrent write spent the "
                                    "same money first", field="postings", **details)
    if unique_violation_on(error, "entries"):
        # The only unique keys of entries: (organisation, idempotency key) and the entry a reversal reverses.
        # Another transaction got there first; the retry finds its entry and answers with it (a replay) or with
        # the typed refusal (entry_already_reversed).
        return ConcurrentWrite("a concurrent write used the same idempotency key or reversed the same entry",
                               field="idempotency_key")
    return DBAPIError.instance("posting batch", None, error, driver_base)


# What a batch reads, every kind of row under one UNION ALL, its kind (``what``) in the first column. The other
# columns, by kind (one union, so generic names):
#   what      id          owner            text_a            text_b           text_c    start_date  end_date
#   account   account id  organisation id  code              balance limit    -         -           -
#   fund      fund id     organisation id  code              status           currency  -           -
#   period    period id   organisation id  -                 -                -         first day   last day
#   key       entry id    organisation id  idempotency key   payload digest   -         -           -
#   balance   account id  fund id          currency          debits (text)    credits   -           -
_POSTGRES_LOOKUP = """
SELECT 'account' AS what, id, organisation_id AS owner, code::text AS text_a, balance_limit::text AS text_b,
       NULL::text AS text_c, NULL::date AS start_date, NULL::date AS end_date
  FROM accounts WHERE id = ANY(%(account_ids)s::bigint[])
UNION ALL
SELECT 'fund', id, organisation_id, code::text, status::text, currency::text, NULL, NULL
  FROM funds WHERE id = ANY(%(fund_ids)s::bigint[])
UNION ALL
SELECT 'period', p.id, p.organisation_id, NULL, NULL, NULL, p.start_date, p.end_date
  FROM periods p
  JOIN unnest(%(range_organisations)s::bigint[], %(range_firsts)s::date[], %(range_lasts)s::date[])
       AS r(organisation_id, first, last)
    ON p.organisation_id = r.organisation_id AND p.status = 'closed' AND p.start_date <= r.last
   AND p.end_date >= r.first
UNION ALL
SELECT 'key', e.id, e.organisation_id, e.idempotency_key::text, e.payload_digest::text, NULL, NULL, NULL
  FROM entries e
  JOIN unnest(%(key_organisations)s::bigint[], %(keys)s::text[]) AS k(organisation_id, key)
    ON e.organisation_id = k.organisation_id AND e.idempotency_key = k.key
UNION ALL
SELECT 'balance', b.account_id, b.fund_id, b.currency::text, b.debits_minor::text, b.credits_minor::text, NULL,
       NULL
  FROM balances b
  JOIN unnest(%(balance_account_id)s::bigint[], %(balance_fund_id)s::bigint[], %(balance_currency)s::text[])
       AS k(account_id, fund_id, currency)
    ON b.account_id = k.account_id AND b.fund_id = k.fund_id AND b.currency = k.currency
"""

# One entry: the same read with plain parameters (the first part of _checked_single_entry_sql); a balance's row
# carries its last day too (``start_date``), for ``_balances_apart``.
_POSTGRES_LOOKUP_ONE = """
SELECT 'account' AS what, id, organisation_id AS owner, code::text AS text_a, balance_limit::text AS text_b,
       NULL::text AS text_c, NULL::date AS start_date, NULL::date AS end_date
  FROM accounts WHERE id = ANY(%(account_ids)s::bigint[])
UNION ALL
SELECT 'fund', id, organisation_id, code, status, currency, NULL, NULL
  FROM funds WHERE id = ANY(%(fund_ids)s::bigint[])
UNION ALL
SELECT 'period', id, organisation_id, NULL, NULL, NULL, start_date, end_date
  FROM periods WHERE organisation_id = %(organisation_id)s::bigint AND status = 'closed'
                 AND start_date <= %(effective_date)s::date AND end_date >= %(effective_date)s::date
UNION ALL
SELECT 'key', id, organisation_id, idempotency_key, payload_digest, NULL, NULL, NULL
  FROM entries WHERE organisation_id = %(organisation_id)s::bigint
                 AND idempotency_key = %(idempotency_key)s::varchar
UNION ALL
SELECT 'balance', account_id, fund_id, currency, debits_minor::text, credits_minor::text, last_day, NULL
  FROM balances WHERE account_id = ANY(%(account_ids)s::bigint[]) AND fund_id = ANY(%(fund_ids)s::bigint[])
"""


def _postgres_lookup(rows: Iterable[tuple]) -> Lookup:
    """The lookup's rows, by the kind each one names (see _POSTGRES_LOOKUP for the columns)."""
    lookup = Lookup()
    for what, row_id, owner, text_a, text_b, text_c, start_date, end_date in rows:
        if what == "account":
            lookup.accounts[row_id] = AccountFacts(owner, text_a, text_b)
        elif what == "fund":
            lookup.funds[row_id] = FundFacts(owner, text_a, text_b, text_c)
        elif what == "period":
            lookup.closed_periods.setdefault(owner, []).append(ClosedPeriod(start_date, end_date))
        elif what == "key":
            lookup.existing[EntryKey(owner, text_a)] = KeptEntry(row_id, text_b)
        elif what == "balance":
            lookup.balances[BalanceKey(row_id, owner, text_a)] = Cumulative(int(text_b), int(text_c))
        else:
            raise AssertionError(f"the lookup read a row of an unknown kind: {what}")
    return lookup


# In the statement that writes a batch's balances (``b``, each row as its lock left it, ``last_day_before`` the day
# it held before this write): a limited balance that the batch moves on from its last day, every posting later
# than that day, closes the day with its row, the totals before the batch (a balance's last day has no row of its
# own: its totals are the balance's). The statement then returns each balance whose postings in the batch all fall
# on its (new) last day: no day row moves for it, and the code judges its one day on the balance's totals; the
# days statement (``_POSTGRES_DAYS``) rewrites the others' days.
_CLOSED_DAYS = """closed AS (
  INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor, credits_minor,
                              balance_limit)
  SELECT b.account_id, b.fund_id, b.currency, b.last_day_before, b.organisation_id, b.debits_minor - d.debits,
         b.credits_minor - d.credits, a.balance_limit
    FROM b JOIN delta d ON d.account_id = b.account_id AND d.fund_id = b.fund_id AND d.currency = b.currency
    JOIN accounts a ON a.id = b.account_id AND a.balance_limit <> 'none'
   WHERE b.last_day_before < d.first_day
), kept AS (
  SELECT b.account_id, b.fund_id, b.currency, b.debits_minor, b.credits_minor
    FROM b JOIN delta d ON d.account_id = b.account_id AND d.fund_id = b.fund_id AND d.currency = b.currency
   WHERE b.last_day = d.first_day"""
# One entry's statement returns the days to close instead (``to_close``), and the code writes them in a second
# statement only when there are some (the first entry of a day on a balance): an INSERT in a statement costs it 20-
# 30 µs on the server even when it inserts nothing. This transaction holds the balance rows' locks from the upsert on,
# so the totals it returns are still the balance's when the code writes them.
_TO_CLOSE = """to_close AS (
  SELECT b.account_id, b.fund_id, b.currency, b.last_day_before AS day, b.debits_minor - d.debits AS debits,
         b.credits_minor - d.credits AS credits
    FROM b JOIN delta d ON d.account_id = b.account_id AND d.fund_id = b.fund_id AND d.currency = b.currency
   WHERE b.balance_limit <> 'none' AND b.last_day_before < d.first_day
), kept AS (
  SELECT b.account_id, b.fund_id, b.currency, b.debits_minor, b.credits_minor
    FROM b JOIN delta d ON d.account_id = b.account_id AND d.fund_id = b.fund_id AND d.currency = b.currency
   WHERE b.last_day = d.first_day"""
_CLOSE_DAYS = _compact("""
INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor, credits_minor,
                            balance_limit)
SELECT c.account_id, c.fund_id, c.currency, c.day, a.organisation_id, c.debits, c.credits, a.balance_limit
  FROM unnest(%(accounts)s::bigint[], %(funds)s::bigint[], %(currencies)s::varchar[], %(days)s::date[],
              %(debits)s::bigint[], %(credits)s::bigint[]) AS c(account_id, fund_id, currency, day, debits, credits)
  JOIN accounts a ON a.id = c.account_id
""")
# Every balances upsert (a batch's, one entry's, a contended entry's apart): the rows, and what a conflict adds.
_INTO_BALANCES = ("INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor,"
                  " last_day, balance_limit)")
_ADD_TO_BALANCE = ("ON CONFLICT (account_id, fund_id, currency) DO UPDATE\n"
                   "    SET debits_minor = balances.debits_minor + excluded.debits_minor,\n"
                   "        credits_minor = balances.credits_minor + excluded.credits_minor,")
# The balances upsert's own SET keeps the day it moves from (see _CLOSED_DAYS).
_LAST_DAYS = ("last_day = greatest(balances.last_day, excluded.last_day),\n"
              "        last_day_before = balances.last_day")
# What a batch adds to each balance's month (``monthly_balances``, the public figures' months): written by the store's
# own statements on both engines, like the balances (a statement trigger on postings cost a fifth of a gift's time on
# the server), after the balances in the same key order, so writers meeting on a month never deadlock.
_ADD_TO_MONTH = ("ON CONFLICT (account_id, fund_id, currency, month) DO UPDATE\n"
                 "    SET debits_minor = m.debits_minor + excluded.debits_minor,\n"
                 "        credits_minor = m.credits_minor + excluded.credits_minor")
# One entry's balances, in its own statement (the CTEs after ``p``; the statement closes the last one). Its month goes
# on the balance row (revision 0020), which the upsert rewrites anyway: an upsert of ``monthly_balances`` cost a gift a
# twenty-fifth of its server time. A row holding another month adds nothing to its month here: the statement returns
# it (``_OTHER_MONTHS``) and the code moves the months (``_MOVE_MONTHS``), once a month per balance or for an entry
# dated in an earlier month.
_BALANCES_OF_ONE = f"""), b AS (
  INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor, last_day,
                        balance_limit, month, month_debits_minor, month_credits_minor)
  SELECT d.account_id, d.fund_id, d.currency, e.organisation_id, d.debits, d.credits, %(effective_date)s::date,
         a.text_b, date_trunc('month', %(effective_date)s::date)::date, d.debits, d.credits
    FROM delta d JOIN lookup a ON a.what = 'account' AND a.id = d.account_id, e
   ORDER BY d.account_id, d.fund_id, d.currency
  {_ADD_TO_BALANCE}
        {_LAST_DAYS},
        month = coalesce(balances.month, excluded.month),
        month_debits_minor = balances.month_debits_minor + CASE WHEN coalesce(balances.month, excluded.month)
                                                                     = excluded.month
                                                                THEN excluded.month_debits_minor ELSE 0 END,
        month_credits_minor = balances.month_credits_minor + CASE WHEN coalesce(balances.month, excluded.month)
                                                                       = excluded.month
                                                                  THEN excluded.month_credits_minor ELSE 0 END
  RETURNING *
), {_TO_CLOSE}"""
_OTHER_MONTHS = """
UNION ALL
SELECT 'month', account_id, fund_id, currency, NULL, NULL, month, NULL FROM b
 WHERE month <> date_trunc('month', %(effective_date)s::date)"""
# An entry whose balance rows hold another month (``_OTHER_MONTHS``; this transaction holds those rows' locks, so
# this statement reads them as they are): a row holding an earlier month sends that month's totals to
# ``monthly_balances`` and starts the entry's month with the entry; a row holding a later month keeps it, and the
# entry goes to ``monthly_balances``. In key order, as every writer of months.
_MOVE_MONTHS = _compact(f"""
WITH moving AS (
  SELECT b.account_id, b.fund_id, b.currency, b.organisation_id, b.month AS held, b.month_debits_minor AS held_debits,
         b.month_credits_minor AS held_credits, d.debits, d.credits
    FROM unnest(%(accounts)s::bigint[], %(funds)s::bigint[], %(currencies)s::varchar[], %(debits)s::bigint[],
                %(credits)s::bigint[]) AS d(account_id, fund_id, currency, debits, credits)
    JOIN balances b ON b.account_id = d.account_id AND b.fund_id = d.fund_id AND b.currency = d.currency
), started AS (
  UPDATE balances b SET month = %(month)s::date, month_debits_minor = v.debits, month_credits_minor = v.credits
    FROM moving v
   WHERE b.account_id = v.account_id AND b.fund_id = v.fund_id AND b.currency = v.currency AND v.held < %(month)s::date
)
INSERT INTO monthly_balances AS m (account_id, fund_id, currency, month, organisation_id, debits_minor, credits_minor)
SELECT account_id, fund_id, currency, held, organisation_id, held_debits, held_credits FROM moving
 WHERE held < %(month)s::date
UNION ALL
SELECT account_id, fund_id, currency, %(month)s::date, organisation_id, debits, credits FROM moving
 WHERE held > %(month)s::date
ORDER BY 1, 2, 3, 4
{_ADD_TO_MONTH}
""")
_KEPT_AND_CLOSED = """
SELECT 'day', account_id, fund_id, currency, debits_minor::text, credits_minor::text, NULL::date, NULL::date FROM kept
UNION ALL
SELECT 'close', account_id, fund_id, currency, debits::text, credits::text, day, NULL FROM to_close"""


@cache
def _balances_sql(delta_count: int) -> str:
    """A contended entry's balances and months, after its statement wrote the entry (``_balances_apart``): the same
    upserts as the one statement's, in the same key order, the limits given (the code read them). ``held``: the
    write goes with the COMMIT, no code judging its days, so a limited balance whose last day is not the entry's
    date any more (a writer moved it on since the read) refuses it with a serialization failure, which
    ``Database.write`` retries; the retry reads the new day and judges the days."""
    deltas = ", ".join(
        f"(%(account_{j})s::bigint, %(balance_fund_{j})s::bigint, %(balance_currency_{j})s::varchar,"
        f" %(debits_{j})s::bigint, %(credits_{j})s::bigint, %(limit_{j})s::varchar)" for j in range(delta_count))
    return _compact(f"""
WITH delta AS (
  SELECT *, %(effective_date)s::date AS first_day
    FROM (VALUES {deltas}) AS v(account_id, fund_id, currency, debits, credits, lim)
), b AS (
  {_INTO_BALANCES}
  SELECT d.account_id, d.fund_id, d.currency, %(organisation_id)s::bigint, d.debits, d.credits, d.first_day, d.lim
    FROM delta d ORDER BY d.account_id, d.fund_id, d.currency
  {_ADD_TO_BALANCE}
        last_day = CASE WHEN %(held)s::boolean AND balances.balance_limit <> 'none'
                             AND balances.last_day IS DISTINCT FROM excluded.last_day
                        THEN ledger_day_moved(balances.account_id, balances.fund_id)
                        ELSE greatest(balances.last_day, excluded.last_day) END,
        last_day_before = balances.last_day
  RETURNING *
), {_TO_CLOSE}
), months AS (
  INSERT INTO monthly_balances AS m (account_id, fund_id, currency, month, organisation_id, debits_minor, credits_minor)
  SELECT d.account_id, d.fund_id, d.currency, date_trunc('month', d.first_day)::date, %(organisation_id)s::bigint,
         d.debits, d.credits
    FROM delta d ORDER BY d.account_id, d.fund_id, d.currency
  {_ADD_TO_MONTH}
){_KEPT_AND_CLOSED}
""")


# Many entries: every column as an array. Replayed keys are skipped before the insert (so that its
# triggers don't judge a retry as a new entry); ON CONFLICT covers a key committed meanwhile. The postings
# join the entries actually inserted, and the balance deltas are summed from those postings.
_POSTGRES_WRITE = f"""
WITH e AS (
  INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,
                       payload_digest, recorded_by, reverses_entry_id)
  SELECT nextval('entries_id_seq'), u.*
    FROM unnest(%(entry_organisation_id)s::bigint[], %(entry_kind)s::varchar[], %(entry_effective_date)s::date[],
                %(entry_posted_at)s::timestamptz[], %(entry_description)s::varchar[],
                %(entry_idempotency_key)s::varchar[], %(entry_payload_digest)s::varchar[],
                %(entry_recorded_by)s::varchar[], %(entry_reverses_entry_id)s::bigint[])
         AS u(organisation_id, kind, effective_date, posted_at, description, idempotency_key, digest, by, reverses)
   WHERE NOT EXISTS (SELECT 1 FROM entries x
                      WHERE x.organisation_id = u.organisation_id AND x.idempotency_key = u.idempotency_key)
  ON CONFLICT (organisation_id, idempotency_key) DO NOTHING
  RETURNING id, organisation_id, idempotency_key
), p AS (
  INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,
                        credit_account_id, amount_minor, currency)
  SELECT e.id, u.organisation_id, u.effective_date, u.fund_id, u.debit, u.credit, u.amount, u.currency
    FROM unnest(%(posting_organisation_id)s::bigint[], %(posting_idempotency_key)s::varchar[],
                %(posting_effective_date)s::date[], %(posting_fund_id)s::bigint[],
                %(posting_debit_account_id)s::bigint[], %(posting_credit_account_id)s::bigint[],
                %(posting_amount_minor)s::bigint[], %(posting_currency)s::varchar[], %(posting_position)s::int[])
         AS u(organisation_id, key, effective_date, fund_id, debit, credit, amount, currency, position)
    JOIN e ON e.organisation_id = u.organisation_id AND e.idempotency_key = u.key
   ORDER BY u.position
  RETURNING organisation_id, fund_id, debit_account_id, credit_account_id, amount_minor, currency, effective_date
), sides AS (
  SELECT debit_account_id AS account_id, fund_id, currency, organisation_id, amount_minor AS debit, 0 AS credit,
         effective_date AS day FROM p
  UNION ALL
  SELECT credit_account_id, fund_id, currency, organisation_id, 0, amount_minor, effective_date FROM p
), delta AS (
  SELECT account_id, fund_id, currency, organisation_id, sum(debit) AS debits, sum(credit) AS credits,
         max(day) AS last_day, min(day) AS first_day
    FROM sides GROUP BY account_id, fund_id, currency, organisation_id
), b AS (
  {_INTO_BALANCES}
  SELECT d.account_id, d.fund_id, d.currency, d.organisation_id, d.debits, d.credits, d.last_day, a.balance_limit
    FROM delta d JOIN accounts a ON a.id = d.account_id ORDER BY d.account_id, d.fund_id, d.currency
  {_ADD_TO_BALANCE}
        {_LAST_DAYS}
  RETURNING *
), {_CLOSED_DAYS}
), months AS (
  INSERT INTO monthly_balances AS m (account_id, fund_id, currency, month, organisation_id, debits_minor, credits_minor)
  SELECT account_id, fund_id, currency, date_trunc('month', day)::date AS month, min(organisation_id), sum(debit),
         sum(credit)
    FROM sides GROUP BY account_id, fund_id, currency, month ORDER BY account_id, fund_id, currency, month
  {_ADD_TO_MONTH}
)
SELECT 'inserted', id, organisation_id, idempotency_key::text, NULL::bigint, NULL::bigint FROM e
UNION ALL
SELECT 'day', account_id, fund_id, currency::text, debits_minor, credits_minor FROM kept
"""


# After a batch's write (which locked its balances' rows, so no other writer moves the same balances until this
# transaction ends, and this statement's snapshot sees every one that did before): the days of each limited
# balance the batch moved, other than those the write statement saw it did not need to touch (``kept``). It reads
# back the batch's postings (its entries' keys and their posted_at: a replay's or a refused entry's are not there),
# sums them by balance and day (``delta``) and through each day (``run``), reads each balance's rows from the
# batch's first day on and the one before, with the balance's last day before the batch as one more row (its totals
# the balance's less the batch; unless it came before the batch's first day: then the write statement closed it, and
# it is read as stored) (``seen``, returned for the code to judge), computes every day's totals after the
# batch (``after``), and writes those before the balance's new last day only if no day ends further beyond its
# account's limit than before (``ok``, as ``ledger.core.limits.check_every_day``); a row of NULLs says it did not.
_POSTGRES_DAYS = _compact("""
WITH needed AS (
  SELECT EXISTS (
    SELECT 1 FROM unnest(%(day_accounts)s::bigint[], %(day_funds)s::bigint[], %(day_currencies)s::varchar[],
                         %(day_firsts)s::date[]) AS k(account_id, fund_id, currency, first_day)
      JOIN accounts a ON a.id = k.account_id AND a.balance_limit <> 'none'
      JOIN balances l ON l.account_id = k.account_id AND l.fund_id = k.fund_id AND l.currency = k.currency
     WHERE l.last_day IS DISTINCT FROM k.first_day) AS yes
), p AS (
  SELECT p.debit_account_id, p.credit_account_id, p.fund_id, p.currency, p.effective_date AS day, p.organisation_id,
         p.amount_minor
    FROM unnest(%(day_organisations)s::bigint[], %(day_keys)s::varchar[]) AS k(organisation_id, key)
    JOIN entries e ON e.organisation_id = k.organisation_id AND e.idempotency_key = k.key
                  AND e.posted_at = %(day_posted_at)s::timestamptz
    JOIN postings p ON p.entry_id = e.id
   WHERE (SELECT yes FROM needed)
), delta AS (
  SELECT s.account_id, s.fund_id, s.currency, s.day, min(s.organisation_id) AS organisation_id, a.balance_limit AS lim,
         sum(s.debit) AS debits, sum(s.credit) AS credits
    FROM (SELECT debit_account_id AS account_id, fund_id, currency, day, organisation_id, amount_minor AS debit,
                 0 AS credit FROM p
          UNION ALL
          SELECT credit_account_id, fund_id, currency, day, organisation_id, 0, amount_minor FROM p) AS s
    JOIN accounts a ON a.id = s.account_id AND a.balance_limit <> 'none'
   GROUP BY s.account_id, s.fund_id, s.currency, s.day, a.balance_limit
), run AS (
  SELECT x.*, l.last_day, l.last_day_before, l.debits_minor - x.all_debits AS was_debits,
         l.credits_minor - x.all_credits AS was_credits FROM (
    SELECT d.*, sum(d.debits) OVER w AS run_debits, sum(d.credits) OVER w AS run_credits,
           min(d.day) OVER k AS first_day, sum(d.debits) OVER k AS all_debits, sum(d.credits) OVER k AS all_credits
      FROM delta d WINDOW w AS (PARTITION BY d.account_id, d.fund_id, d.currency ORDER BY d.day),
                          k AS (PARTITION BY d.account_id, d.fund_id, d.currency)) AS x
    JOIN balances l ON l.account_id = x.account_id AND l.fund_id = x.fund_id AND l.currency = x.currency
   WHERE l.last_day IS DISTINCT FROM x.first_day
), k AS (
  SELECT DISTINCT account_id, fund_id, currency, first_day, lim, last_day, last_day_before, was_debits, was_credits,
         min(organisation_id) OVER (PARTITION BY account_id, fund_id, currency) AS organisation_id FROM run
), seen AS MATERIALIZED (
  SELECT x.account_id, x.fund_id, x.currency, x.day, x.debits_minor, x.credits_minor, k.lim, k.last_day,
         k.organisation_id, true AS stored
    FROM k CROSS JOIN LATERAL (
      SELECT * FROM daily_balances x
       WHERE x.account_id = k.account_id AND x.fund_id = k.fund_id AND x.currency = k.currency
         AND x.day >= coalesce((SELECT max(y.day) FROM daily_balances y WHERE y.account_id = k.account_id
                                  AND y.fund_id = k.fund_id AND y.currency = k.currency AND y.day < k.first_day),
                               k.first_day)) AS x
  UNION ALL
  SELECT k.account_id, k.fund_id, k.currency, k.last_day_before, k.was_debits, k.was_credits, k.lim, k.last_day,
         k.organisation_id, false
    FROM k WHERE k.last_day_before >= k.first_day
), after AS (
  SELECT s.account_id, s.fund_id, s.currency, s.day, s.organisation_id, s.lim, s.last_day,
         s.debits_minor + r.run_debits AS debits, s.credits_minor + r.run_credits AS credits, s.stored,
         s.debits_minor AS was_debits, s.credits_minor AS was_credits
    FROM seen s
    JOIN LATERAL (SELECT r.run_debits, r.run_credits FROM run r
                   WHERE r.account_id = s.account_id AND r.fund_id = s.fund_id AND r.currency = s.currency
                     AND r.day <= s.day ORDER BY r.day DESC LIMIT 1) AS r ON true
  UNION ALL
  SELECT r.account_id, r.fund_id, r.currency, r.day, r.organisation_id, r.lim, r.last_day,
         coalesce(b.debits_minor, 0) + r.run_debits, coalesce(b.credits_minor, 0) + r.run_credits, false,
         coalesce(b.debits_minor, 0), coalesce(b.credits_minor, 0)
    FROM run r
    LEFT JOIN LATERAL (SELECT s.debits_minor, s.credits_minor FROM seen s
                        WHERE s.account_id = r.account_id AND s.fund_id = r.fund_id AND s.currency = r.currency
                          AND s.day < r.day ORDER BY s.day DESC LIMIT 1) AS b ON true
   WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.account_id = r.account_id AND s.fund_id = r.fund_id
                       AND s.currency = r.currency AND s.day = r.day)
), ok AS (
  SELECT NOT EXISTS (
    SELECT 1 FROM after
     WHERE (lim = 'credits_must_not_exceed_debits' AND credits - debits > greatest(was_credits - was_debits, 0))
        OR (lim = 'debits_must_not_exceed_credits' AND debits - credits > greatest(was_debits - was_credits, 0))) AS ok
), u AS (
  UPDATE daily_balances x SET debits_minor = a.debits, credits_minor = a.credits
    FROM after a, ok
   WHERE ok.ok AND a.stored AND x.account_id = a.account_id AND x.fund_id = a.fund_id
     AND x.currency = a.currency AND x.day = a.day
), i AS (
  INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor, credits_minor,
                              balance_limit)
  SELECT a.account_id, a.fund_id, a.currency, a.day, a.organisation_id, a.debits, a.credits, a.lim
    FROM after a, ok WHERE ok.ok AND NOT a.stored AND a.day < a.last_day
)
SELECT account_id, fund_id, currency, day, debits_minor, credits_minor FROM seen
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL FROM ok WHERE NOT ok.ok
""")


def _days_parameters(batch: Batch) -> dict:
    # Each balance the batch's postings move, with their first day: when every limited one's is its last day, no
    # day row moves (``needed`` is false) and the statement reads back nothing. (Drafts, not the entries the
    # write inserted: a replay's earlier day can only make the statement read back when it need not.)
    firsts: dict[tuple[int, int, str], dt.date] = {}
    for row in batch.postings:
        for key in ((row.debit_account_id, row.fund_id, row.currency), (row.credit_account_id, row.fund_id,
                                                                          row.currency)):
            if key not in firsts or row.effective_date < firsts[key]:
                firsts[key] = row.effective_date
    keys = list(firsts)
    return {"day_organisations": [row.organisation_id for row in batch.entries],
            "day_keys": [row.idempotency_key for row in batch.entries],
            "day_posted_at": batch.entries[0].posted_at if batch.entries else None,
            "day_accounts": [key[0] for key in keys], "day_funds": [key[1] for key in keys],
            "day_currencies": [key[2] for key in keys], "day_firsts": list(firsts.values())}


def _judge_days(batch: Batch, kept: list[tuple], the_rest: Callable[[], list[tuple]]) -> None:
    """Judges the days the batch moved. ``kept``: (account, fund, currency, debits, credits) of each balance whose
    postings in the batch all fall on its last day (no day row moves for it: the day's totals are the balance's,
    and before the batch the same less the batch). ``the_rest``: the rows the day statement read for the other
    balances (fetched only when there are any); when that statement's own judgement refused to write them (a row of
    NULLs) the code must refuse too."""
    changes = batch.day_changes()
    if not changes:
        return
    if len(changes) <= len(kept) and changes.keys() <= {row[:3] for row in kept}:
        # Every limited balance moved on its last day only: that day's totals are the balance's, which ``check``
        # judged on the rows read and the balance's own guard on the row as the write left it: nothing more to judge.
        return
    facts: DailyFacts = {}
    for account_id, fund_id, currency, debits, credits in kept:
        by_day = changes.get((account_id, fund_id, currency))
        if by_day:  # (a balance the code calls unlimited is not judged on days; the statement agrees, same read)
            debits -= sum(added[0] for added in by_day.values())
            credits -= sum(added[1] for added in by_day.values())
            facts[(account_id, fund_id, currency)] = [DayTotals(min(by_day), debits, credits)]
    refused = False
    if len(facts) < len(changes):
        for account_id, fund_id, currency, day, debits, credits in the_rest():
            if account_id is None:
                refused = True
                continue
            facts.setdefault((account_id, fund_id, currency), []).append(DayTotals(day, debits, credits))
    for days in facts.values():
        days.sort()
    batch.check_days(facts)
    if refused:  # the statement saw a day break a limit that the code did not: never let it commit
        raise AccountLimitExceeded("a balance would break its account's limit at the end of a day after the entry's "
                                   "date", field="postings")


def _columns(prefix: str, row_type: type[NamedTuple], rows: Sequence[tuple]) -> dict[str, list]:
    """Rows as one array per column, each named ``<prefix>_<field>``."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(row_type._fields)
    return {f"{prefix}_{name}": list(column) for name, column in zip(row_type._fields, columns, strict=True)}


def _lookup_parameters(request: LookupRequest) -> dict:
    organisations = list(request.date_ranges)
    return {
        "account_ids": request.account_ids, "fund_ids": request.fund_ids, "range_organisations": organisations,
        "range_firsts": [request.date_ranges[organisation].first for organisation in organisations],
        "range_lasts": [request.date_ranges[organisation].last for organisation in organisations],
        "key_organisations": [key.organisation_id for key in request.keys],
        "keys": [key.idempotency_key for key in request.keys],
        **_columns("balance", BalanceKey, request.balance_keys),
    }


def _postgres_write(batch: Batch) -> tuple[str, dict]:
    """The write statement of a pipelined batch, every column an array."""
    # Entries go in idempotency-key order, so two batches that share keys meet them in the same order.
    ordered = sorted(batch.entries, key=lambda row: (row.organisation_id, row.idempotency_key))
    return _POSTGRES_WRITE, {
        **_columns("entry", EntryRow, ordered),
        **_columns("posting", PostingRow, batch.postings),
        "posting_position": list(range(len(batch.postings))),
    }


def _single_entry_parameters(entry: EntryRow, postings: list[PostingRow]) -> tuple[dict, int]:
    # With one entry the write is all or nothing: the deltas are summed here and applied only if the
    # entry was inserted (it is not, for a replay, a refusal, or a retry that raced with its original).
    deltas = _deltas(postings)
    parameters = entry._asdict()
    for i, posting in enumerate(postings):
        parameters.update({f"fund_{i}": posting.fund_id, f"debit_{i}": posting.debit_account_id,
                           f"credit_{i}": posting.credit_account_id, f"amount_{i}": posting.amount_minor,
                           f"currency_{i}": posting.currency})
    for j, delta in enumerate(deltas):
        parameters.update({f"account_{j}": delta.account_id, f"balance_fund_{j}": delta.fund_id,
                           f"balance_currency_{j}": delta.currency, f"debits_{j}": delta.debits_minor,
                           f"credits_{j}": delta.credits_minor})
    return parameters, len(deltas)


def _postgres_one(connection, batch: Batch) -> EntryIds:
    """One entry in one statement that reads, judges and writes (see _checked_single_entry_sql); then the
    code judges what it read. A refusal by the database aborts the statement, and PostgreSQL lets nothing
    of an aborted transaction commit. An entry whose balances another writer of this process is moving now
    writes them in a statement of their own (``_balances_apart``)."""
    if len(batch.entries) != 1:
        raise AssertionError("one statement writes one entry; batches go through the pipeline")
    apart = isinstance(connection, held.Connection) and _contended(connection, batch) and _of_today(batch) \
        and _HOLDING.pays()
    try:
        rows = _executed(connection, *_checked_single_entry(batch, not apart))
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error
    entry_ids, kept, to_close, other_months, read = _sorted_rows(rows)
    try:
        lookup = _postgres_lookup(read)
        batch.check(lookup)
        if apart and entry_ids:
            if _balances_apart(connection, batch, lookup, read):
                return entry_ids  # held for the COMMIT: every limited balance moves on its last day only
            kept, to_close = _balances_written(connection, batch, lookup)[1:]
        if to_close:
            _close_days(connection, to_close)
        if other_months:
            _move_months(connection, batch, other_months)
        if entry_ids:
            _judge_days(batch, kept, lambda: _days_of_the_rest(connection, batch))
    except Exception:
        if entry_ids:  # the statement's guard let through what the code refuses: make sure it cannot commit
            _abort(connection)
        raise
    return entry_ids


def _sorted_rows(rows: list[tuple]) -> tuple[EntryIds, list[tuple], list[tuple], set[tuple], list[tuple]]:
    """The rows of an entry's statement by the kind the first column names: the entry inserted, the balances kept
    on their last day, the days to close, the balances whose rows hold another month, and the rest (what the
    lookup read)."""
    entry_ids, kept, to_close, other_months, read = {}, [], [], set(), []
    for row in rows:
        if row[0] == "inserted":
            entry_ids[EntryKey(row[2], row[3])] = row[1]
        elif row[0] == "day":
            kept.append((row[1], row[2], row[3], int(row[4]), int(row[5])))
        elif row[0] == "close":
            to_close.append((row[1], row[2], row[3], row[6], int(row[4]), int(row[5])))
        elif row[0] == "month":
            other_months.add((row[1], row[2], row[3]))
        else:
            read.append(row)
    return entry_ids, kept, to_close, other_months, read


# How many of this process's writers are moving each balance now (until their transactions end).
_MOVING: dict[tuple, int] = {}
_MOVING_LOCK = threading.Lock()


def _contended(connection: held.Connection, batch: Batch) -> bool:
    """Counts the entry's balances as moving until its transaction ends, and says whether another writer of this
    process was moving one of them (then this one will most likely wait for that writer's COMMIT, and hold up the
    next). A count costs a gift a few microseconds; a weak reference per writer cost it a fiftieth of its time."""
    keys = {key for row in batch.postings for key in ((row.debit_account_id, row.fund_id, row.currency),
                                                      (row.credit_account_id, row.fund_id, row.currency))}
    with _MOVING_LOCK:
        contended = any(key in _MOVING for key in keys)
        for key in keys:
            _MOVING[key] = _MOVING.get(key, 0) + 1
    connection.at_end(partial(_moved, keys))
    return contended


def _moved(keys: set[tuple]) -> None:
    with _MOVING_LOCK:
        for key in keys:
            left = _MOVING.pop(key) - 1
            if left:
                _MOVING[key] = left


class _Holding:
    """Whether holding balances for the COMMIT has paid off lately in this process. It pays when the entry is its
    transaction's last hot write, as a bare entry's is; a service that writes its own record after the entry (a gift's
    donation row, which also moves the fund's gift counts) sends the held statement with that record's, a round trip
    more than the one statement and no shorter lock (measured through the API: a tenth fewer gifts a second). So the
    score goes up for a held write sent with its COMMIT and down for one sent before another statement; below zero,
    contended entries keep the one statement, but one in 64 is still held, so a process whose writes change can
    find its way back. (Counted without a lock: a lost update moves the score by one.)"""

    LIMIT = 8
    PROBE_EVERY = 64

    def __init__(self) -> None:
        self.score = 0
        self.declined = 0

    def pays(self) -> bool:
        if self.score >= 0:
            return True
        self.declined += 1
        return self.declined % self.PROBE_EVERY == 0

    def sent(self, with_commit: bool) -> None:
        self.score = max(-self.LIMIT, min(self.LIMIT, self.score + (1 if with_commit else -1)))


_HOLDING = _Holding()


def _of_today(batch: Batch) -> bool:
    """Whether the entry is dated today (UTC) or later. Only such an entry writes its balances apart: a backdated one
    would race every writer of today's gifts, which move its balances' last day on (see ``_balances_sql``)."""
    entry = batch.entries[0]
    return entry.effective_date >= entry.posted_at.date()


def _balances_apart(connection: held.Connection, batch: Batch, lookup: Lookup, read: list[tuple]) -> bool:
    """A contended entry's balances, written after its statement (which wrote the entry and its postings only). When
    each balance's row was there and every limited one's last day, as read, is the entry's date, nothing is left to
    judge on days: the write is held for the COMMIT (``ledger.db.held``), with a guard that refuses it, for a retry,
    if another writer moved such a day on meanwhile; returns True. Otherwise the balances are written now and their
    days judged as in the one statement."""
    date = batch.entries[0].effective_date
    last_days = {(row[1], row[2], row[3]): row[6] for row in read if row[0] == "balance"}
    for delta in _deltas(batch.postings):
        key = delta[:3]
        if key not in last_days or (lookup.accounts[delta.account_id].balance_limit != "none"
                                    and last_days[key] != date):
            return False
    connection.hold(partial(_send_balances, _balances_parameters(batch, lookup, for_commit=True)))
    return True


def _balances_parameters(batch: Batch, lookup: Lookup, for_commit: bool) -> dict:
    entry = batch.entries[0]
    parameters = {"organisation_id": entry.organisation_id, "effective_date": entry.effective_date,
                  "held": for_commit}
    for j, delta in enumerate(_deltas(batch.postings)):
        parameters.update({f"account_{j}": delta.account_id, f"balance_fund_{j}": delta.fund_id,
                           f"balance_currency_{j}": delta.currency, f"debits_{j}": delta.debits_minor,
                           f"credits_{j}": delta.credits_minor,
                           f"limit_{j}": lookup.accounts[delta.account_id].balance_limit})
    return parameters


def _balances_written(connection, batch: Batch, lookup: Lookup) -> tuple[EntryIds, list, list]:
    """Writes the entry's balances now, returning the balances kept on their last day and the days to close."""
    parameters = _balances_parameters(batch, lookup, for_commit=False)
    try:
        rows = _run(connection, _balances_sql(len(_deltas(batch.postings))), parameters).fetchall()
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error
    return _sorted_rows(rows)[:3]


def _send_balances(parameters: dict, connection: held.Connection, with_commit: bool) -> None:
    """Sends a held balances statement: before another statement of its transaction, or with its COMMIT in one
    round trip, so the rows it locks are locked only while the server writes and commits."""
    _HOLDING.sent(with_commit)
    delta_count = sum(1 for name in parameters if name.startswith("account_"))
    sql = _balances_sql(delta_count)
    try:
        if not with_commit:
            _run(connection, sql, parameters)
            return
        statement, names = _positional(sql)
        connection.execute_with_commit(b"ledger_balances_%d" % delta_count, statement,
                                       [parameters[name] for name in names])
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error


def _close_days(connection, to_close: list[tuple]) -> None:
    """Writes the days an entry closed (see ``_TO_CLOSE``): (account, fund, currency, day, debits, credits) each."""
    accounts, funds, currencies, days, debits, credits = (list(column) for column in zip(*to_close, strict=True))
    try:
        _run(connection, _CLOSE_DAYS, {"accounts": accounts, "funds": funds, "currencies": currencies, "days": days,
                                       "debits": debits, "credits": credits})
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error


def _move_months(connection, batch: Batch, other_months: set[tuple]) -> None:
    """Moves the months of the entry's balances whose rows hold another month (see ``_MOVE_MONTHS``)."""
    try:
        _run(connection, _MOVE_MONTHS, _months_parameters(batch, other_months))
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error


def _months_parameters(batch: Batch, other_months: set[tuple]) -> dict:
    deltas = [delta for delta in _deltas(batch.postings) if delta[:3] in other_months]
    return {"accounts": [delta.account_id for delta in deltas], "funds": [delta.fund_id for delta in deltas],
            "currencies": [delta.currency for delta in deltas], "debits": [delta.debits_minor for delta in deltas],
            "credits": [delta.credits_minor for delta in deltas],
            "month": batch.entries[0].effective_date.replace(day=1)}


def _days_of_the_rest(connection, batch: Batch) -> list[tuple]:
    """A backdated entry's days (a second round trip, taken only when the entry's statement could not keep them)."""
    try:
        return _run(connection, _POSTGRES_DAYS, _days_parameters(batch)).fetchall()
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error


def _abort(connection) -> None:
    # The failed statement leaves the transaction aborted: a COMMIT will roll it back.
    with contextlib.suppress(psycopg.Error):
        connection.execute("DO $$ BEGIN RAISE EXCEPTION 'refused by the ledger'; END $$")


def _checked_single_entry(batch: Batch, with_balances: bool = True) -> tuple[str, dict]:
    parameters, delta_count = _single_entry_parameters(batch.entries[0], batch.postings)
    request = batch.request
    parameters.update({"account_ids": _id_array(request.account_ids), "fund_ids": _id_array(request.fund_ids),
                       "account_count": len(request.account_ids), "fund_count": len(request.fund_ids)})
    return _checked_single_entry_sql(len(batch.postings), delta_count, with_balances), parameters


def _id_array(ids: Sequence[int]) -> str:
    """Ids as PostgreSQL's array literal, which the statement casts (``::bigint[]``): psycopg dumps a list in Python,
    element by element, and for one gift its two short lists cost more client time than any other parameter."""
    return "{" + ",".join(str(int(value)) for value in ids) + "}"


@cache
def _checked_single_entry_sql(posting_count: int, delta_count: int, with_balances: bool = True) -> str:
    """The read, the judgement and the write of one entry in one statement. The write happens only if the
    read finds every rule kept — the same rules the code then checks on the rows read, so that a refusal
    is typed and precise, and nothing is written for it. (Every CTE sees the snapshot taken when the
    statement began: ``lookup`` reads the ledger as it was before this entry.) Without balances: the entry and its
    postings only (``_balances_apart`` writes the rest)."""
    # Plain VALUES, not arrays: for the commonest write (a gift, a grant) unpacking a dozen arrays costs the
    # server more than the rows themselves.
    postings = ", ".join(
        f"(%(fund_{i})s::bigint, %(debit_{i})s::bigint, %(credit_{i})s::bigint, %(amount_{i})s::bigint,"
        f" %(currency_{i})s::varchar, {i})" for i in range(posting_count))
    deltas = ", ".join(
        f"(%(account_{j})s::bigint, %(balance_fund_{j})s::bigint, %(balance_currency_{j})s::varchar,"
        f" %(debits_{j})s::bigint, %(credits_{j})s::bigint)" for j in range(delta_count))
    return _compact(f"""
WITH lookup AS MATERIALIZED ({_POSTGRES_LOOKUP_ONE}
), posting AS (
  SELECT * FROM (VALUES {postings}) AS v(fund_id, debit, credit, amount, currency, position)
), delta AS (
  SELECT *, %(effective_date)s::date AS first_day FROM (VALUES {deltas}) AS v(account_id, fund_id, currency, debits,
                                                                               credits)
), allowed AS (
  SELECT (SELECT count(*) FROM lookup WHERE what = 'account' AND owner = %(organisation_id)s::bigint)
         = %(account_count)s
     AND (SELECT count(*) FROM lookup WHERE what = 'fund' AND owner = %(organisation_id)s::bigint
                                        AND text_b = 'open') = %(fund_count)s
     AND NOT EXISTS (SELECT 1 FROM posting v LEFT JOIN lookup f ON f.what = 'fund' AND f.id = v.fund_id
                      WHERE f.text_c IS DISTINCT FROM v.currency)
     AND NOT EXISTS (SELECT 1 FROM lookup WHERE what IN ('period', 'key'))
     AND NOT EXISTS (
       SELECT 1 FROM delta d
         JOIN lookup a ON a.what = 'account' AND a.id = d.account_id
         LEFT JOIN lookup b ON b.what = 'balance' AND b.id = d.account_id AND b.owner = d.fund_id
                           AND b.text_a = d.currency
        WHERE (a.text_b = 'credits_must_not_exceed_debits'
               AND coalesce(b.text_c::bigint, 0) + d.credits > coalesce(b.text_b::bigint, 0) + d.debits)
           OR (a.text_b = 'debits_must_not_exceed_credits'
               AND coalesce(b.text_b::bigint, 0) + d.debits > coalesce(b.text_c::bigint, 0) + d.credits)) AS ok
), e AS (
  INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,
                       payload_digest, recorded_by, reverses_entry_id)
  SELECT nextval('entries_id_seq'), %(organisation_id)s::bigint, %(kind)s::varchar, %(effective_date)s::date,
         %(posted_at)s::timestamptz, %(description)s::varchar, %(idempotency_key)s::varchar,
         %(payload_digest)s::varchar, %(recorded_by)s::varchar, %(reverses_entry_id)s::bigint
    FROM allowed WHERE allowed.ok
  ON CONFLICT (organisation_id, idempotency_key) DO NOTHING
  RETURNING id, organisation_id, idempotency_key
), p AS (
  INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,
                        credit_account_id, amount_minor, currency)
  SELECT e.id, e.organisation_id, %(effective_date)s::date, v.fund_id, v.debit, v.credit, v.amount, v.currency
    FROM e, posting v ORDER BY v.position
{_BALANCES_OF_ONE if with_balances else ""})
SELECT * FROM lookup
UNION ALL
SELECT 'inserted', id, organisation_id, idempotency_key, NULL, NULL, NULL, NULL FROM e
{"UNION ALL" + _KEPT_AND_CLOSED + _OTHER_MONTHS if with_balances else ""}
""")


def _postgres_pipelined(connection, batches: Iterable[Batch]) -> None:
    batches, sent = iter(batches), []
    try:
        written = _postgres_pipeline(connection, batches, sent)
    except psycopg.Error as error:
        # The database refused a statement of the pipeline, which cannot say whose (psycopg may raise it from a
        # later statement): judge every batch again, those sent and those not yet drawn, each read and judged
        # before its write, so that the code names the very entry; or, when the refusal was a concurrent
        # writer's doing, the database's refusal comes back, typed. Nothing of the pipeline is kept.
        written = _judged_again(connection, itertools.chain(sent, batches), error)
    except BaseException:
        connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise
    # Outside the pipeline: ``finish`` may run ordinary queries (a replay loads its original entry).
    for batch, entry_ids in written:
        batch.finish(entry_ids)


def _judged_again(connection, batches: Iterable[Batch], error: psycopg.Error) -> list[tuple[Batch, EntryIds]]:
    try:
        connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    except psycopg.Error:  # the connection itself is gone: the first error is the one to report
        raise _wrapped(error, psycopg.Error) from error
    try:
        return _postgres_judged_in_turn(connection, batches)
    except BaseException:
        with contextlib.suppress(psycopg.Error):
            connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise


def _postgres_pipeline(connection, batches: Iterable[Batch], sent: list[Batch]) -> list[tuple[Batch, EntryIds]]:
    """Every batch's read and write in one pipeline, so the server writes one batch while this process prepares
    the next; then each batch is judged on what its read returned (a typed refusal rolls everything back)."""
    with connection.pipeline():
        connection.execute(f"SAVEPOINT {_SAVEPOINT}")
        cursors = []
        for batch in batches:
            sent.append(batch)  # before its statements: a refusal raised from them must find it here
            cursors.append((_run(connection, _POSTGRES_LOOKUP, _lookup_parameters(batch.request)),
                            _run(connection, *_postgres_write(batch)),
                            _run(connection, _POSTGRES_DAYS, _days_parameters(batch))))
        results = [(reader.fetchall(), writer.fetchall(), days.fetchall()) for reader, writer, days in cursors]
    written = []
    for batch, (lookup_rows, write_rows, day_rows) in zip(sent, results, strict=True):
        batch.check(_postgres_lookup(lookup_rows))
        entry_ids, kept = _written(write_rows)
        _judge_days(batch, kept, lambda rows=day_rows: rows)
        written.append((batch, entry_ids))
    return written


def _postgres_judged_in_turn(connection, batches: Iterable[Batch]) -> list[tuple[Batch, EntryIds]]:
    """The batches again, each read and judged before its write is sent: slower than the pipeline, for the rare
    import the database refused."""
    written = []
    try:
        with connection.pipeline() as pipeline:
            for batch in batches:
                reader = _run(connection, _POSTGRES_LOOKUP, _lookup_parameters(batch.request))
                pipeline.sync()
                batch.check(_postgres_lookup(reader.fetchall()))
                writer = _run(connection, *_postgres_write(batch))
                days = _run(connection, _POSTGRES_DAYS, _days_parameters(batch))
                pipeline.sync()
                entry_ids, kept = _written(writer.fetchall())
                _judge_days(batch, kept, days.fetchall)
                written.append((batch, entry_ids))
            return written
    except psycopg.Error as error:
        raise _wrapped(error, psycopg.Error) from error


def _written(rows: list[tuple]) -> tuple[EntryIds, list[tuple]]:
    """The write statement's rows: the entries inserted, by key, and the days it kept (see ``_judge_days``)."""
    entry_ids, kept = {}, []
    for what, row_id, owner, text, debits, credits in rows:
        if what == "inserted":
            entry_ids[(owner, text)] = row_id
        else:
            kept.append((row_id, owner, text, debits, credits))
    return entry_ids, kept


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


_SQLITE_INSERT_ENTRY = (
    "INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, idempotency_key,"
    " payload_digest, recorded_by, reverses_entry_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SQLITE_INSERT_POSTING = (
    "INSERT INTO postings (entry_id, organisation_id, effective_date, fund_id, debit_account_id,"
    " credit_account_id, amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_SQLITE_UPSERT_BALANCE = """
INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor, last_day,
                      balance_limit)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id, fund_id, currency) DO UPDATE
  SET debits_minor = debits_minor + excluded.debits_minor, credits_minor = credits_minor + excluded.credits_minor,
      last_day = max(coalesce(last_day, excluded.last_day), excluded.last_day), last_day_before = last_day
"""


# SQLite's months (``monthly_balances``, see ``_ADD_TO_MONTH``): a row trigger's two UPSERTs a posting cost a third of
# a batch, so the store adds a batch's months here, one row per balance and month.
_SQLITE_UPSERT_MONTH = """
INSERT INTO monthly_balances (account_id, fund_id, currency, month, organisation_id, debits_minor, credits_minor)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id, fund_id, currency, month) DO UPDATE
  SET debits_minor = debits_minor + excluded.debits_minor, credits_minor = credits_minor + excluded.credits_minor
"""


def _month_deltas(postings: list[PostingRow], deltas: list[BalanceDelta]) -> list[tuple]:
    """What the postings add to each balance's month, in key order: (account, fund, currency, month, organisation,
    debits, credits). A batch within one month (a gift, most chunks of an import) adds its balances' deltas."""
    months_touched = {day.replace(day=1) for day in {row.effective_date for row in postings}}
    if len(months_touched) == 1:
        month = months_touched.pop().isoformat()
        return [(delta.account_id, delta.fund_id, delta.currency, month, delta.organisation_id, delta.debits_minor,
                 delta.credits_minor) for delta in deltas]
    sums: dict[tuple, list] = {}
    months: dict[dt.date, str] = {}  # one isoformat per day: the bulk path's postings share a few days
    for row in postings:
        day = row.effective_date
        month = months.get(day)
        if month is None:
            month = months[day] = day.replace(day=1).isoformat()
        debited = sums.setdefault((row.debit_account_id, row.fund_id, row.currency, month), [row.organisation_id, 0, 0])
        debited[1] += row.amount_minor
        credited = sums.setdefault((row.credit_account_id, row.fund_id, row.currency, month),
                                   [row.organisation_id, 0, 0])
        credited[2] += row.amount_minor
    return [(*key, *sums[key]) for key in sorted(sums)]


def _sqlite_batch(cursor, batch: Batch) -> EntryIds:
    lookup, last_days, highest = _sqlite_lookup(cursor, batch.request)
    batch.check(lookup)
    # Keys as plain (organisation, key) tuples, equal to EntryKeys: these lines run once per row of the import.
    fresh = [row for row in batch.entries if (row.organisation_id, row.idempotency_key) not in lookup.existing]
    entry_ids = {(row.organisation_id, row.idempotency_key): highest + offset
                 for offset, row in enumerate(fresh, start=1)}
    fresh_postings = [row for row in batch.postings if (row.organisation_id, row.idempotency_key) in entry_ids]
    deltas = _deltas(fresh_postings)
    cursor.executemany(_SQLITE_UPSERT_BALANCE, [
        (*delta[:6], delta.last_day.isoformat(), lookup.accounts[delta.account_id].balance_limit)
        for delta in deltas])
    posted_at = {moment: sqlite_text(moment) for moment in {row.posted_at for row in fresh}}  # one per batch
    cursor.executemany(_SQLITE_INSERT_ENTRY, [
        (entry_ids[(row.organisation_id, row.idempotency_key)], row.organisation_id, row.kind,
         row.effective_date.isoformat(), posted_at[row.posted_at], row.description, row.idempotency_key,
         row.payload_digest, row.recorded_by, row.reverses_entry_id) for row in fresh])
    cursor.executemany(_SQLITE_INSERT_POSTING, [
        (entry_ids[(row.organisation_id, row.idempotency_key)], row.organisation_id, row.effective_date.isoformat(),
         row.fund_id, row.debit_account_id, row.credit_account_id, row.amount_minor, row.currency)
        for row in fresh_postings])
    cursor.executemany(_SQLITE_UPSERT_MONTH, _month_deltas(fresh_postings, deltas))
    _sqlite_days(cursor, batch, fresh_postings, lookup, last_days)
    return entry_ids


_SQLITE_DAYS = """
SELECT day, debits_minor, credits_minor FROM daily_balances
 WHERE account_id = ?1 AND fund_id = ?2 AND currency = ?3
   AND day >= coalesce((SELECT max(day) FROM daily_balances WHERE account_id = ?1 AND fund_id = ?2 AND currency = ?3
                          AND day < ?4), ?4)
 ORDER BY day"""


def _sqlite_facts(cursor, lookup: Lookup, last_days: dict[tuple, dt.date | None], key: tuple,
                  first: dt.date) -> list[DayTotals]:
    """A balance's days from ``first`` on and the one before: its last day has no row, its totals are the balance's
    (as read before the batch), and only when that day is after ``first`` are the stored rows read (a balance not
    yet there has none)."""
    if key not in last_days:
        return []
    totals = lookup.balances[BalanceKey(*key)]
    last = DayTotals(last_days[key], totals.debits_minor, totals.credits_minor)
    if last.day <= first:
        return [last]
    return [*(DayTotals(dt.date.fromisoformat(day), debits, credits) for day, debits, credits
              in cursor.execute(_SQLITE_DAYS, (*key, first.isoformat()))), last]


_SQLITE_UPSERT_DAY = (
    "INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor, credits_minor,"
    " balance_limit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT balance_limit FROM accounts WHERE id = ?1))"
    " ON CONFLICT (account_id, fund_id, currency, day) DO UPDATE"
    " SET debits_minor = excluded.debits_minor, credits_minor = excluded.credits_minor")


def _sqlite_days(cursor, batch: Batch, fresh_postings: list[PostingRow], lookup: Lookup,
                 last_days: dict[tuple, dt.date | None]) -> None:
    """The days of each limited balance the batch moved: read (or known from the lookup), judged by the code, then
    written (this transaction holds SQLite's only write lock, so what it read is what it writes over): each day
    before the balance's new last day, and its old last day, closed, when the batch moved it on past that day."""
    changes = batch.day_changes()
    if not changes or not fresh_postings:
        return
    if all(len(by_day) == 1 and not _before_last_day(by_day, last_days.get(key)) for key, by_day in changes.items()):
        written = _closed_last_days(changes, lookup, last_days)
    else:
        facts: DailyFacts = {key: _sqlite_facts(cursor, lookup, last_days, key, min(by_day))
                             for key, by_day in changes.items()}
        batch.check_days(facts)
        new_last = {key: max(max(by_day), last_days.get(key) or dt.date.min) for key, by_day in changes.items()}
        written = [(day.key, day.after) for day in days_after(changes, facts) if day.after.day < new_last[day.key]]
        written += [(key, days[-1]) for key, days in facts.items()  # (the last day, read, is the facts' last row)
                    if days and days[-1].day < min(changes[key])]
    if written:
        organisations = {(row.debit_account_id, row.fund_id, row.currency): row.organisation_id
                         for row in fresh_postings}
        organisations.update({(row.credit_account_id, row.fund_id, row.currency): row.organisation_id
                              for row in fresh_postings})
        cursor.executemany(_SQLITE_UPSERT_DAY, [
            (*key, totals.day.isoformat(), organisations[key], totals.debits_minor, totals.credits_minor)
            for key, totals in written])


def _before_last_day(by_day: dict[dt.date, list[int]], last_day: dt.date | None) -> bool:
    return last_day is not None and min(by_day) < last_day


def _closed_last_days(changes: DayChanges, lookup: Lookup, last_days: dict[tuple, dt.date | None]
                      ) -> list[tuple[tuple, DayTotals]]:
    """The commonest batch (every limited balance moved on one day, its last or a later one): its one day's totals
    after the batch are the balance's, which ``check`` has just judged on totals this transaction's lock keeps current,
    so no day can end further beyond a limit and there is nothing more to judge. What it writes: each balance's
    previous last day, closed with the totals before the batch, when the batch moved on past it."""
    written = []
    for key, by_day in changes.items():
        last = last_days.get(key)
        if last is not None and last < min(by_day):
            totals = lookup.balances[BalanceKey(*key)]
            written.append((key, DayTotals(last, totals.debits_minor, totals.credits_minor)))
    return written


def _deltas(postings: list[PostingRow]) -> list[BalanceDelta]:
    """What the postings add to each balance they touch, in sorted key order (the order writers lock in)."""
    sums: dict[tuple[int, int, str], list] = {}  # [organisation, debits, credits, last day]; flat: the bulk path
    for row in postings:
        day = row.effective_date
        debited = sums.setdefault((row.debit_account_id, row.fund_id, row.currency), [row.organisation_id, 0, 0, day])
        debited[1] += row.amount_minor
        if day > debited[3]:
            debited[3] = day
        credited = sums.setdefault((row.credit_account_id, row.fund_id, row.currency), [row.organisation_id, 0, 0, day])
        credited[2] += row.amount_minor
        if day > credited[3]:
            credited[3] = day
    return [BalanceDelta(*key, *sums[key]) for key in sorted(sums)]


# SQLite's lookup: one UNION ALL of every kind of row, like PostgreSQL's (one statement instead of seven for a gift),
# its kind in the first column; a big batch's keys and balances go in statements of their own (``_SQLITE_CHUNK`` each).
_SQLITE_VALUES_PER_STATEMENT = 10_000
_SQLITE_LOOKUP = {
    "account": "SELECT 'account', id, organisation_id, code, balance_limit, NULL, NULL FROM accounts"
               " WHERE id IN ({marks})",
    "fund": "SELECT 'fund', id, organisation_id, code, status, currency, NULL FROM funds WHERE id IN ({marks})",
    "period": "SELECT 'period', NULL, organisation_id, start_date, end_date, NULL, NULL FROM periods"
              " WHERE organisation_id = ? AND status = 'closed' AND start_date <= ? AND end_date >= ?",
    "key": "SELECT 'key', e.id, e.organisation_id, e.idempotency_key, e.payload_digest, NULL, NULL FROM entries e"
           " WHERE e.organisation_id = ? AND e.idempotency_key IN ({marks})",
    "highest": "SELECT 'highest', coalesce(max(id), 0), NULL, NULL, NULL, NULL, NULL FROM entries",
    "balance": "SELECT 'balance', b.account_id, b.fund_id, b.currency, b.debits_minor, b.credits_minor, b.last_day"
               " FROM (VALUES {marks}) AS k JOIN balances b ON b.account_id = k.column1 AND b.fund_id = k.column2"
               " AND b.currency = k.column3",
}


def _sqlite_lookup_rows(cursor, request: LookupRequest) -> list[tuple]:
    """Every row of the lookup: one statement when the batch is small (a gift: its shape's text is made once),
    more for a big batch's keys and balances."""
    organisations = list(request.date_ranges)
    by_organisation: dict[int, list[str]] = {}
    for key in request.keys:
        by_organisation.setdefault(key.organisation_id, []).append(key.idempotency_key)
    values: list = [*request.account_ids, *request.fund_ids]
    for organisation_id in organisations:
        first, last = request.date_ranges[organisation_id]
        values += (organisation_id, last.isoformat(), first.isoformat())
    key_counts = []
    for organisation_id, keys in by_organisation.items():
        values.append(organisation_id)
        values += keys
        key_counts.append(len(keys))
    if len(values) + 3 * len(request.balance_keys) > _SQLITE_VALUES_PER_STATEMENT or max(key_counts, default=0) > \
            _SQLITE_CHUNK or len(request.balance_keys) > _SQLITE_CHUNK:
        return _sqlite_lookup_in_parts(cursor, request, by_organisation)
    for key in request.balance_keys:
        values += key
    sql = _sqlite_lookup_sql(len(request.account_ids), len(request.fund_ids), len(organisations), tuple(key_counts),
                             len(request.balance_keys))
    return cursor.execute(sql, values).fetchall()


@lru_cache(maxsize=256)  # a shape per batch size: a gift's few, a bulk import's chunks
def _sqlite_lookup_sql(accounts: int, funds: int, ranges: int, key_counts: tuple[int, ...], balances: int) -> str:
    parts = [_SQLITE_LOOKUP["highest"]]
    if accounts:
        parts.append(_SQLITE_LOOKUP["account"].format(marks=",".join("?" * accounts)))
    if funds:
        parts.append(_SQLITE_LOOKUP["fund"].format(marks=",".join("?" * funds)))
    parts += [_SQLITE_LOOKUP["period"]] * ranges
    parts += [_SQLITE_LOOKUP["key"].format(marks=",".join("?" * count)) for count in key_counts]
    if balances:
        parts.append(_SQLITE_LOOKUP["balance"].format(marks=",".join(["(?, ?, ?)"] * balances)))
    return " UNION ALL ".join(parts)


def _sqlite_lookup_in_parts(cursor, request: LookupRequest, by_organisation: dict[int, list[str]]) -> list[tuple]:
    """A big batch's lookup: the small parts in one statement, its keys and balances in chunks."""
    small = LookupRequest(request.account_ids, request.fund_ids, request.date_ranges, [], [])
    rows = _sqlite_lookup_rows(cursor, small)
    for organisation_id, keys in by_organisation.items():
        for start in range(0, len(keys), _SQLITE_CHUNK):
            chunk = keys[start:start + _SQLITE_CHUNK]
            rows += cursor.execute(_SQLITE_LOOKUP["key"].format(marks=",".join("?" * len(chunk))),
                                   [organisation_id, *chunk]).fetchall()
    for start in range(0, len(request.balance_keys), _SQLITE_CHUNK):
        chunk = request.balance_keys[start:start + _SQLITE_CHUNK]
        rows += cursor.execute(_SQLITE_LOOKUP["balance"].format(marks=",".join(["(?, ?, ?)"] * len(chunk))),
                               [value for key in chunk for value in key]).fetchall()
    return rows


def _sqlite_lookup(cursor, request: LookupRequest) -> tuple[Lookup, dict[tuple, dt.date | None], int]:
    """The lookup, the last day of each balance it read (``balances.last_day``), and the entries' highest id."""
    lookup, last_days, highest = Lookup(), {}, 0
    for what, row_id, owner, text_a, text_b, text_c, day in _sqlite_lookup_rows(cursor, request):
        if what == "account":
            lookup.accounts[row_id] = AccountFacts(owner, text_a, text_b)
        elif what == "fund":
            lookup.funds[row_id] = FundFacts(owner, text_a, text_b, text_c)
        elif what == "period":
            lookup.closed_periods.setdefault(owner, []).append(
                ClosedPeriod(dt.date.fromisoformat(text_a), dt.date.fromisoformat(text_b)))
        elif what == "key":
            lookup.existing[EntryKey(owner, text_a)] = KeptEntry(row_id, text_b)
        elif what == "highest":
            highest = row_id
        else:  # a balance: account, fund, currency, debits, credits, last day
            lookup.balances[BalanceKey(row_id, owner, text_a)] = Cumulative(text_b, text_c)
            last_days[(row_id, owner, text_a)] = day and dt.date.fromisoformat(day)
    return lookup, last_days, highest
