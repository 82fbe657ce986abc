"""Peer benchmark: the FundLedger donation workload run through django-hordak 2.0 on PostgreSQL.

One "entry" is one hordak ``Transaction`` with two ``Leg`` rows: debit the Bank asset account,
credit the Donations income account, 100.00 CNY. Every run drops and recreates the database
``hordak_bench``, runs hordak's own migrations (triggers and constraints as shipped) and empties
the ledger before each case, so every case starts from zero legs.

Cases (each returns ``{"case", "entries", "seconds", "entries_per_s", ...}``):

a. one entry per DB transaction, single thread, via ``Account.transfer_to()``.
b. ``batch_b`` (1,000) entries per DB transaction: hordak's documented manual posting
   (``Transaction.objects.create()`` + two ``Leg.objects.create()``) inside one ``atomic()``.
   ``transfer_to()`` is not used here because it is itself ``@atomic`` and would add a
   SAVEPOINT/RELEASE pair per entry inside the outer block.
c. bulk import: ``bulk_create`` of Transactions then Legs in one ``atomic()``. This is the path
   hordak's own ``create_benchmark_transactions`` command uses. It skips ``Leg.save()``'s Python
   checks, but the balance check lives in a row-level database trigger, which also fires for
   multi-row INSERTs; the case proves that by committing an unbalanced bulk transaction and
   expecting an IntegrityError (``bulk_balance_check_enforced``).
d. ``threads`` (8) writer threads, one entry per DB transaction via ``transfer_to()``, all on the
   same two accounts. OperationalErrors (deadlock 40P01 / serialization 40001) are counted by
   SQLSTATE and retried, so the final Bank balance must equal exactly N x 100.00. Note the
   writers share one Python process (GIL), like a threaded Django worker would.
e. balance read: load ``legs`` legs (half of them on the hot Bank account) with a server-side
   ``INSERT ... SELECT generate_series`` in 50k-entry DB transactions (hordak's triggers stay on),
   ``VACUUM ANALYZE``, then time ``Account.get_balance()`` over ``reads`` calls (median/p99 ms).
   ``Account.objects.with_balances()`` (hordak's recommended ``GET_BALANCE()`` SQL function) is
   timed too. Here entries/seconds/entries_per_s describe the raw-SQL *load*, not hordak's API.

What hordak 2.0 enforces in PostgreSQL (read from hordak/migrations):

- ``check_leg_trigger``: CONSTRAINT TRIGGER, AFTER INSERT/UPDATE/DELETE ON hordak_leg,
  DEFERRABLE INITIALLY DEFERRED, FOR EACH ROW -> ``check_leg()`` (0052): exactly one of
  debit/credit set and > 0, then ``SUM(debit - credit)`` over *all* legs of the transaction,
  grouped by currency, must be 0. It runs at COMMIT once per leg, so a 2-leg entry re-sums its
  transaction twice. Nothing checks the hordak_transaction table: a transaction with no legs is
  accepted.
- ``check_leg_and_account_currency_match_trigger``: also deferred, per leg; the leg currency must
  be in the account's ``currencies`` JSON list (0052).
- CHECK constraints on hordak_leg: ``debit > 0``, ``credit > 0`` and ``<> 0`` (0003/0054); the FKs
  to account and transaction are DEFERRABLE INITIALLY DEFERRED (Django default).
- hordak_account: ``check_account_type_trigger`` (child accounts inherit the root's type),
  ``update_full_account_codes_trigger`` and CHECK ``bank_accounts_are_asset_accounts``.

How balances are computed: there is no stored balance, running total or per-account row to
lock. ``Account.get_balance()`` sums its MPTT descendants' legs on every call (one
``get_descendants`` query, then per account ``SELECT currency, SUM(credit), SUM(debit) ... WHERE
account_id = ? GROUP BY currency``) and signs the result by account type; ``hordak.utilities.
currency.Balance`` is only an in-memory multi-currency value. ``with_balances()`` does the same
sum inside the PL/pgSQL ``get_balance_table()`` function (0047). Read cost therefore grows with
the number of legs, while writers never contend on a shared row (no deadlocks expected in d).

CLI::

    python bench/hordak_peer.py --cases a,b,c,d,e --n-a 2000 --n-b 10000 --n-c 20000 \
        --n-d 4000 --legs 1000000 [--json]
"""

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from collections import Counter
from decimal import Decimal

import psycopg
from psycopg import sql

DB_NAME = "hordak_bench"
CURRENCY = "CNY"
AMOUNT = Decimal("100.00")
DEFAULT_DSN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": ""}
DEFAULT_SIZES = {
    "a": 2000,
    "b": 10_000,
    "batch_b": 1000,
    "c": 20_000,
    "d": 4000,
    "threads": 8,
    "legs": 1_000_000,
    "reads": 200,
}
BULK_BATCH = 10_000  # rows per INSERT statement in bulk_create
LOAD_CHUNK = 50_000  # entries per DB transaction while loading case e (bounds the deferred-trigger queue)
WARMUP_READS = 5  # untimed reads before case e's timed reads, so p99 is not the cold first read
MAX_ATTEMPTS = 20  # retries per entry in case d before giving up

LOAD_SQL = """
WITH txn AS (
    INSERT INTO hordak_transaction (uuid, timestamp, date, description)
    SELECT gen_random_uuid(), now(), current_date, '' FROM generate_series(1, %(entries)s)
    RETURNING id
)
INSERT INTO hordak_leg (uuid, transaction_id, account_id, debit, credit, currency, description)
SELECT gen_random_uuid(), txn.id, side.account_id, side.debit, side.credit, %(currency)s, ''
FROM txn CROSS JOIN (VALUES
    (%(bank)s::bigint, %(amount)s::numeric, NULL::numeric),
    (%(donations)s::bigint, NULL::numeric, %(amount)s::numeric)
) AS side (account_id, debit, credit)
"""


# --- database and Django setup ---------------------------------------------------------------


def recreate_database(dsn_params: dict) -> None:
    """Drop and recreate the bench database so every run starts fresh."""
    with psycopg.connect(dbname="postgres", autocommit=True, **dsn_params) as conn:
        name = sql.Identifier(DB_NAME)
        # FORCE (PG 13+) kicks out connections left over from an interrupted run.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def setup_django(dsn_params: dict) -> None:
    """Configure Django for hordak and migrate. settings.configure() can run once per process,
    so a second call only re-runs the migrations (the connection parameters stay the first ones)."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    if not settings.configured:
        settings.configure(
            # contenttypes: hordak migration 0018 depends on it; auth: its usual companion.
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "mptt",
                "djmoney",
                "hordak",
            ],
            DATABASES={"default": _django_db(dsn_params)},
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            USE_TZ=True,
            TIME_ZONE="UTC",
            DEBUG=False,  # DEBUG=True would keep every query in memory
            # hordak reads DEFAULT_CURRENCY (account default) and HORDAK_INTERNAL_CURRENCY (leg
            # default); djmoney restricts MoneyField choices to CURRENCIES.
            DEFAULT_CURRENCY=CURRENCY,
            HORDAK_INTERNAL_CURRENCY=CURRENCY,
            HORDAK_CURRENCIES=[CURRENCY],
            CURRENCIES=[CURRENCY],
        )
        django.setup()
    call_command("migrate", verbosity=0)


def _django_db(dsn_params: dict) -> dict:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DB_NAME,
        "HOST": dsn_params["host"],
        "PORT": str(dsn_params["port"]),
        "USER": dsn_params["user"],
        "PASSWORD": dsn_params.get("password", ""),
    }


def _close_django_connections() -> None:
    """Close this thread's Django connections (no-op before Django is configured)."""
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        connections.close_all()


# --- ledger helpers ---------------------------------------------------------------------------


def reset_ledger():
    """Empty hordak's tables and create the Bank (asset) and Donations (income) accounts."""
    from django.db import connection
    from hordak.models import Account, AccountType

    with connection.cursor() as cur:
        cur.execute("TRUNCATE hordak_leg, hordak_transaction, hordak_account RESTART IDENTITY CASCADE")
    bank = Account.objects.create(
        name="Bank", code="1", type=AccountType.asset, is_bank_account=True, currencies=[CURRENCY]
    )
    donations = Account.objects.create(
        name="Donations", code="4", type=AccountType.income, currencies=[CURRENCY]
    )
    return bank, donations


def donation_amount():
    from moneyed import Money

    return Money(AMOUNT, CURRENCY)


def post_donation(bank, donations, amount) -> None:
    """Hordak's documented manual posting (see the Transaction docstring); the caller owns atomic()."""
    from hordak.models import Leg, Transaction

    txn = Transaction.objects.create()
    Leg.objects.create(transaction=txn, account=bank, debit=amount)
    Leg.objects.create(transaction=txn, account=donations, credit=amount)


def transfer_donation(bank, donations, amount) -> None:
    """transfer_to() credits self and debits the target, inside its own atomic()."""
    donations.transfer_to(bank, amount)


def balance_ok(bank, entries: int) -> bool:
    """True when hordak reports exactly entries x 100.00 CNY on the Bank account and nothing else."""
    balance = bank.get_balance()
    return balance.currencies() == [CURRENCY] and balance[CURRENCY].amount == AMOUNT * entries


def _result(case: str, entries: int, seconds: float, **extra) -> dict:
    rate = entries / seconds if seconds > 0 else None
    return {
        "case": case,
        "entries": entries,
        "seconds": round(seconds, 4),
        "entries_per_s": round(rate, 1) if rate else None,
        **extra,
    }


# --- cases a-c: single-threaded writes --------------------------------------------------------


def case_a(sizes: dict) -> dict:
    n = sizes["a"]
    bank, donations = reset_ledger()
    amount = donation_amount()
    start = time.perf_counter()
    for _ in range(n):
        transfer_donation(bank, donations, amount)
    elapsed = time.perf_counter() - start
    return _result("a", n, elapsed, balance_ok=balance_ok(bank, n), api="Account.transfer_to")


def case_b(sizes: dict) -> dict:
    from django.db import transaction

    n, per_txn = sizes["b"], sizes["batch_b"]
    bank, donations = reset_ledger()
    amount = donation_amount()
    start = time.perf_counter()
    for first in range(0, n, per_txn):
        with transaction.atomic():
            for _ in range(min(per_txn, n - first)):
                post_donation(bank, donations, amount)
    elapsed = time.perf_counter() - start
    return _result(
        "b", n, elapsed, balance_ok=balance_ok(bank, n), entries_per_txn=per_txn, api="Transaction+Leg create"
    )


def bulk_post(bank, donations, amount, n: int) -> None:
    """Insert n entries with two bulk_create calls; PostgreSQL returns the Transaction ids the legs need."""
    from hordak.models import Leg, Transaction

    txns = Transaction.objects.bulk_create([Transaction() for _ in range(n)], batch_size=BULK_BATCH)
    legs = []
    for txn in txns:
        legs.append(Leg(transaction=txn, account=bank, debit=amount))
        legs.append(Leg(transaction=txn, account=donations, credit=amount))
    Leg.objects.bulk_create(legs, batch_size=BULK_BATCH)


def bulk_balance_check_enforced(bank, amount) -> bool:
    """Commit a one-legged (unbalanced) entry through bulk_create: the deferred check_leg trigger
    must reject it at COMMIT. Returns False if it slipped through."""
    from django.db import IntegrityError, transaction
    from hordak.models import Leg, Transaction

    try:
        with transaction.atomic():
            (txn,) = Transaction.objects.bulk_create([Transaction()])
            Leg.objects.bulk_create([Leg(transaction=txn, account=bank, debit=amount)])
    except IntegrityError:
        return True
    return False


def case_c(sizes: dict) -> dict:
    from django.db import transaction

    n = sizes["c"]
    bank, donations = reset_ledger()
    amount = donation_amount()
    start = time.perf_counter()
    with transaction.atomic():
        bulk_post(bank, donations, amount, n)
    elapsed = time.perf_counter() - start
    return _result(
        "c",
        n,
        elapsed,
        balance_ok=balance_ok(bank, n),
        bulk_balance_check_enforced=bulk_balance_check_enforced(bank, amount),
        api="bulk_create",
    )


# --- case d: concurrent writers ---------------------------------------------------------------


def _sqlstate(exc: Exception) -> str:
    return getattr(exc.__cause__, "sqlstate", None) or "unknown"


def _post_with_retry(bank, donations, amount, errors: Counter) -> None:
    """Deadlocks (40P01) and serialization failures (40001) surface as OperationalError; anything
    else is a real bug and propagates."""
    from django.db import OperationalError

    for _ in range(MAX_ATTEMPTS):
        try:
            transfer_donation(bank, donations, amount)
            return
        except OperationalError as exc:
            errors[_sqlstate(exc)] += 1
    raise RuntimeError(f"entry still failing after {MAX_ATTEMPTS} attempts: {dict(errors)}")


def _writer(account_ids: tuple, count: int, barrier: threading.Barrier, out: dict) -> None:
    from hordak.models import Account

    try:
        # Each thread gets its own Django connection and its own model instances.
        bank, donations = (Account.objects.get(pk=pk) for pk in account_ids)
        amount = donation_amount()
        barrier.wait()
        for _ in range(count):
            _post_with_retry(bank, donations, amount, out["errors"])
    except BaseException as exc:
        out["failure"] = exc
        barrier.abort()  # do not leave the other threads waiting for us
    finally:
        # Django only closes connections at the end of a request; a bare thread must do it.
        _close_django_connections()


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def case_d(sizes: dict) -> dict:
    n, threads = sizes["d"], sizes["threads"]
    bank, donations = reset_ledger()
    barrier = threading.Barrier(threads + 1)  # +1: the timer starts when every writer is ready
    outs = [{"errors": Counter(), "failure": None} for _ in range(threads)]
    workers = [
        threading.Thread(target=_writer, args=((bank.pk, donations.pk), count, barrier, out))
        for count, out in zip(_split(n, threads), outs, strict=True)
    ]
    for worker in workers:
        worker.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()  # broken only if a writer failed during setup; reported below
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    failures = [out["failure"] for out in outs if out["failure"] is not None]
    if failures:
        raise RuntimeError(f"{len(failures)} writer thread(s) failed") from failures[0]
    errors = sum((out["errors"] for out in outs), Counter())
    return _result(
        "d",
        n,
        elapsed,
        balance_ok=balance_ok(bank, n),
        threads=threads,
        errors=sum(errors.values()),
        errors_by_sqlstate=dict(errors),
    )


# --- case e: balance read over many legs ------------------------------------------------------


def load_legs(bank, donations, legs: int) -> int:
    """Server-side bulk load (fastest path, no Python per row); returns the entries loaded.
    Every chunk commits separately, so hordak's deferred triggers validate each chunk."""
    from django.db import connection, transaction

    entries = (legs + 1) // 2
    params = {"currency": CURRENCY, "amount": AMOUNT, "bank": bank.pk, "donations": donations.pk}
    for first in range(0, entries, LOAD_CHUNK):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(LOAD_SQL, {**params, "entries": min(LOAD_CHUNK, entries - first)})
    with connection.cursor() as cur:
        # Production tables are autovacuumed/analysed; without this the first plans are guesses.
        cur.execute("VACUUM ANALYZE hordak_transaction, hordak_leg")
    return entries


def _time_ms(func, reads: int) -> list[float]:
    for _ in range(WARMUP_READS):
        func()
    timings = []
    for _ in range(reads):
        start = time.perf_counter()
        func()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def _latency(prefix: str, timings: list[float]) -> dict:
    p99 = statistics.quantiles(timings, n=100)[98] if len(timings) > 1 else timings[0]
    return {f"{prefix}_median_ms": round(statistics.median(timings), 3), f"{prefix}_p99_ms": round(p99, 3)}


def case_e(sizes: dict) -> dict:
    from hordak.models import Account

    bank, donations = reset_ledger()
    start = time.perf_counter()
    entries = load_legs(bank, donations, sizes["legs"])
    load_seconds = time.perf_counter() - start
    reads = sizes["reads"]
    get_balance = _time_ms(bank.get_balance, reads)
    with_balances = _time_ms(lambda: Account.objects.filter(pk=bank.pk).with_balances().get().balance, reads)
    return _result(
        "e",
        entries,
        load_seconds,
        balance_ok=balance_ok(bank, entries),
        legs=entries * 2,
        hot_account_legs=entries,
        reads=reads,
        **_latency("get_balance", get_balance),
        **_latency("with_balances", with_balances),
        api="load: INSERT..SELECT (raw SQL); read: Account.get_balance",
    )


CASES = {"a": case_a, "b": case_b, "c": case_c, "d": case_d, "e": case_e}


# --- entry points -----------------------------------------------------------------------------


def run(cases: list[str], sizes: dict | None = None, dsn_params: dict | None = None) -> list[dict]:
    """Run the given cases (subset of a-e) on a freshly created hordak_bench database."""
    unknown = [case for case in cases if case not in CASES]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    dsn = {**DEFAULT_DSN, **(dsn_params or {})}
    _close_django_connections()  # a previous run() in this process may still hold a connection
    recreate_database(dsn)
    setup_django(dsn)
    results = []
    for case in cases:
        print(f"hordak_peer: running case {case}", file=sys.stderr, flush=True)
        results.append(CASES[case](sizes))
    _close_django_connections()
    return results


def format_table(results: list[dict]) -> str:
    core = ("case", "entries", "seconds", "entries_per_s")
    lines = [f"{'case':<5} {'entries':>9} {'seconds':>10} {'entries/s':>11}  details"]
    for row in results:
        details = ", ".join(f"{key}={value}" for key, value in row.items() if key not in core)
        rate = "-" if row["entries_per_s"] is None else f"{row['entries_per_s']:.1f}"
        lines.append(f"{row['case']:<5} {row['entries']:>9} {row['seconds']:>10.3f} {rate:>11}  {details}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="django-hordak peer benchmark (PostgreSQL)")
    parser.add_argument("--cases", default="a,b,c,d,e", help="comma-separated subset of a,b,c,d,e")
    for case in "abcd":
        parser.add_argument(
            f"--n-{case}", type=int, default=DEFAULT_SIZES[case], help=f"entries for case {case}"
        )
    parser.add_argument("--batch-b", type=int, default=DEFAULT_SIZES["batch_b"], help="entries per txn in b")
    parser.add_argument("--threads", type=int, default=DEFAULT_SIZES["threads"], help="writer threads in d")
    parser.add_argument("--legs", type=int, default=DEFAULT_SIZES["legs"], help="legs loaded for case e")
    parser.add_argument("--reads", type=int, default=DEFAULT_SIZES["reads"], help="timed balance reads in e")
    parser.add_argument("--host", default=DEFAULT_DSN["host"])
    parser.add_argument("--port", type=int, default=DEFAULT_DSN["port"])
    parser.add_argument("--user", default=DEFAULT_DSN["user"])
    parser.add_argument("--password", default=DEFAULT_DSN["password"])
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per case instead of a table"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = {
        "a": args.n_a,
        "b": args.n_b,
        "c": args.n_c,
        "d": args.n_d,
        "batch_b": args.batch_b,
        "threads": args.threads,
        "legs": args.legs,
        "reads": args.reads,
    }
    dsn = {"host": args.host, "port": args.port, "user": args.user, "password": args.password}
    cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    results = run(cases, sizes, dsn)
    if args.json:
        for row in results:
            print(json.dumps(row, default=str))
    else:
        print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
