"""FundLedger's write and read benchmark, side by side with django-hordak in one run.

    .venv/bin/python bench/ledger_bench.py                 # every case, SQLite and PostgreSQL, with the peer
    .venv/bin/python bench/ledger_bench.py --quick         # small sizes, to check the script itself

The workload is the same for both ledgers: one entry is one gift of CNY 100.00 received today into one hot
fund (Dr bank / Cr donation revenue), each with its own idempotency key. Cases:

  a  one entry per database transaction, one writer
  b  1,000 entries per database transaction
  c  the bulk-import path (ledger.books.bulk.import_entries; hordak: bulk_create)
  d  8 writer threads, one entry per transaction, all on the same fund (so the same balance rows)
  e  balance read latency as history grows to 1,000,000 postings (hordak: 1,000,000 legs)

PostgreSQL runs use a fresh database ``fundledger_bench`` (hordak gets ``hordak_bench``), on the server
at --pg (default: the local one). Nothing here is a timed test: it prints a table for the README.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.books.balances import balance  # noqa: E402
from ledger.books.bulk import analyze, import_entries  # noqa: E402
from ledger.books.charts import load_chart  # noqa: E402
from ledger.books.entries import post_entries, post_entry  # noqa: E402
from ledger.books.organisations import create_fund, create_organisation  # noqa: E402
from ledger.core.chart import Chart, Role  # noqa: E402
from ledger.core.drafts import EntryDraft  # noqa: E402
from ledger.core.money import Money  # noqa: E402
from ledger.core.recipes import Particulars, offline_donation  # noqa: E402
from ledger.core.registration import unified_social_credit_code  # noqa: E402
from ledger.db.engine import Database  # noqa: E402
from ledger.db.schema import migrate  # noqa: E402

GIFT = Money(10_000, "CNY")
# Today (UTC), as a gift recorded now is: an entry dated earlier is a backdated one, which the store treats apart
# (eight writers of backdated entries on one fund do not hold their balances for the COMMIT, see ledger.db.store).
DAY = dt.datetime.now(dt.UTC).date()
FULL = {"a": 2_000, "b": 20_000, "c": 100_000, "d": 4_000, "threads": 8,
        "checkpoints": (10_000, 100_000, 1_000_000), "reads": 1_000}
QUICK = {"a": 200, "b": 2_000, "c": 5_000, "d": 400, "threads": 8, "checkpoints": (1_000, 10_000), "reads": 200}
TARGETS = {"a": "PostgreSQL ≥ 1.5× hordak; SQLite ≥ 2,000/s", "b": "PostgreSQL ≥ 6,000/s; SQLite ≥ 50,000/s",
           "c": "PostgreSQL ≥ 15,000/s", "d": "PostgreSQL ≥ 500/s, exact, 0 errors", "e": "≤ 1 ms median, flat"}


@dataclass
class Bench:
    """One engine's database with a foundation and its hot fund."""

    name: str
    db: Database
    chart: Chart
    fund_id: int
    keys: itertools.count

    def gift(self) -> EntryDraft:
        key = f"bench-{next(self.keys)}"
        return offline_donation(self.chart, self.fund_id, GIFT, "bank", Particulars(DAY, key, "bench"))

    def bank_totals(self):
        with self.db.read() as session:
            return balance(session, self.chart.account(Role.BANK), self.fund_id, "CNY")


def fresh_postgres(server_url: str, name: str) -> str:
    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname="postgres",
                         autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def prepare(name: str, url: str) -> Bench:
    db = Database(url)
    migrate(db.engine)

    def setup(session):
        organisation = create_organisation(
            session, name="Bench Foundation", kind="foundation", base_currency="CNY", jurisdiction="CN",
            registration_number=unified_social_credit_code("53510100MJ0123456"),
            books_opened_on=dt.date(2000, 1, 1))
        fund = create_fund(session, organisation.id, code="HOT", name="hot fund", kind="community",
                           restricted=False)
        return load_chart(session, organisation.id), fund.id

    chart, fund_id = db.write(setup)
    return Bench(name, db, chart, fund_id, itertools.count(1))


def settle(bench: Bench) -> None:
    """Between cases: fresh statistics and fresh connections, as a server that has run a while has."""
    analyze(bench.db)
    bench.db.engine.dispose()


def rate(count: int, seconds: float) -> dict:
    return {"entries": count, "seconds": round(seconds, 3), "entries_per_s": round(count / seconds, 1)}


def case_a(bench: Bench, sizes: dict) -> dict:
    drafts = [bench.gift() for _ in range(sizes["a"])]
    start = time.perf_counter()
    for draft in drafts:
        bench.db.write(lambda session, d=draft: post_entry(session, d))
    return rate(len(drafts), time.perf_counter() - start)


def case_b(bench: Bench, sizes: dict) -> dict:
    drafts = [bench.gift() for _ in range(sizes["b"])]
    start = time.perf_counter()
    for offset in range(0, len(drafts), 1_000):
        bench.db.write(lambda session, o=offset: post_entries(session, drafts[o:o + 1_000]))
    return rate(len(drafts), time.perf_counter() - start)


def case_c(bench: Bench, sizes: dict) -> dict:
    drafts = [bench.gift() for _ in range(sizes["c"])]
    start = time.perf_counter()
    import_entries(bench.db, drafts)
    return rate(len(drafts), time.perf_counter() - start)


def case_d(bench: Bench, sizes: dict) -> dict:
    threads, per_thread = sizes["threads"], sizes["d"] // sizes["threads"]
    before = bench.bank_totals().debits_minor
    drafts = [[bench.gift() for _ in range(per_thread)] for _ in range(threads)]
    errors: list[str] = []

    def writer(own: list[EntryDraft]) -> None:
        for draft in own:
            try:
                bench.db.write(lambda session, d=draft: post_entry(session, d))
            except Exception as error:  # counted and reported: the target is zero
                errors.append(f"{type(error).__name__}: {error}")

    workers = [threading.Thread(target=writer, args=(own,)) for own in drafts]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    expected = before + threads * per_thread * GIFT.amount_minor
    exact = bench.bank_totals().debits_minor == expected and not errors
    return {**rate(threads * per_thread, seconds), "errors": len(errors), "exact": exact,
            "first_error": errors[0] if errors else None}


def case_e(bench: Bench, sizes: dict) -> dict:
    """Grows the hot fund's history and reads its bank balance at each checkpoint."""
    readings = {}
    loaded = bench.bank_totals().debits_minor // GIFT.amount_minor
    load_start = time.perf_counter()
    for checkpoint in sizes["checkpoints"]:
        while loaded < checkpoint:
            chunk = min(100_000, checkpoint - loaded)
            import_entries(bench.db, (bench.gift() for _ in range(chunk)))
            loaded += chunk
        settle(bench)
        readings[checkpoint] = read_latency(bench, sizes["reads"])
    return {"postings": loaded, "load_seconds": round(time.perf_counter() - load_start, 1),
            "readings": readings}


def read_latency(bench: Bench, reads: int) -> dict:
    account = bench.chart.account(Role.BANK)
    timings = []
    with bench.db.read() as session:
        for _ in range(20):
            balance(session, account, bench.fund_id, "CNY")
        for _ in range(reads):
            start = time.perf_counter()
            balance(session, account, bench.fund_id, "CNY")
            timings.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(timings), 3),
            "p99_ms": round(statistics.quantiles(timings, n=100)[98], 3)}


RUNNERS = {"a": case_a, "b": case_b, "c": case_c, "d": case_d, "e": case_e}


def run_peer(case: str, sizes: dict) -> dict | None:
    """Runs hordak's side of one case in its own process (Django configures itself once per process)."""
    arguments = [sys.executable, str(ROOT / "bench" / "hordak_peer.py"), "--cases", case, "--json",
                 "--threads", str(sizes["threads"]), "--legs", str(2 * sizes["checkpoints"][-1]),
                 "--reads", str(min(sizes["reads"], 200))]
    if case in "abcd":
        arguments += [f"--n-{case}", str(sizes[case])]
    done = subprocess.run(arguments, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        print(f"hordak case {case} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def rate_text(result: dict) -> str:
    """The median rate, then every round's, in the order they ran."""
    text = f"{result['entries_per_s']:,.0f}/s"
    if "rounds" in result:
        text += f" ({'/'.join(f'{rate:,}' for rate in result['rounds'])})"
    return text


def cell(result: dict | None, case: str) -> str:
    if result is None:
        return "—"
    if case == "e":
        last = result["readings"][max(result["readings"])]
        return f"{last['median_ms']:.3f} ms (p99 {last['p99_ms']:.3f})"
    text = rate_text(result)
    if case == "d":
        text += f", {result['errors']} errors, {'exact' if result['exact'] else 'NOT EXACT'}"
    return text


def peer_cell(result: dict | None, case: str) -> str:
    if result is None:
        return "—"
    if case == "e":
        return f"{result['get_balance_median_ms']:.1f} ms (p99 {result['get_balance_p99_ms']:.1f})"
    return rate_text(result) + (f", {result.get('errors', 0)} errors" if case == "d" else "")


def ratio(ours: dict | None, peer: dict | None, case: str) -> str:
    if not ours or not peer:
        return "—"
    if case == "e":
        return f"{peer['get_balance_median_ms'] / ours['readings'][max(ours['readings'])]['median_ms']:,.0f}× faster"
    return f"{ours['entries_per_s'] / peer['entries_per_s']:.2f}×"


def print_table(results: dict, cases: list[str]) -> None:
    names = {"a": "(a) 1 entry / transaction", "b": "(b) 1,000 entries / transaction", "c": "(c) bulk import",
             "d": "(d) 8 writers, one hot fund", "e": "(e) balance read, 10^6 postings"}
    print("\n| case | SQLite | PostgreSQL | django-hordak (PostgreSQL) | ours / hordak | target |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        sqlite, postgres, peer = (results.get((engine, case)) for engine in ("sqlite", "postgresql", "hordak"))
        print(f"| {names[case]} | {cell(sqlite, case)} | {cell(postgres, case)} | {peer_cell(peer, case)} "
              f"| {ratio(postgres, peer, case)} | {TARGETS[case]} |")
    if "e" in cases:
        print("\nBalance read as history grows (median / p99 ms):\n\n| postings | SQLite | PostgreSQL |\n|---|---|---|")
        readings = {engine: (results.get((engine, "e")) or {}).get("readings", {}) for engine in ("sqlite",
                                                                                                   "postgresql")}
        for checkpoint in sorted({c for r in readings.values() for c in r}):
            row = [f"{readings[e][checkpoint]['median_ms']:.3f} / {readings[e][checkpoint]['p99_ms']:.3f}"
                   if checkpoint in readings[e] else "—" for e in ("sqlite", "postgresql")]
            print(f"| {checkpoint:,} | {row[0]} | {row[1]} |")


ROUNDS = {"a": 3, "b": 3, "d": 3}


def run_round(case: str, benches: dict[str, Bench], sizes: dict, peer: bool) -> dict:
    done = {}
    for engine, bench in benches.items():
        settle(bench)
        print(f"running ({case}) on {engine}", file=sys.stderr, flush=True)
        done[engine] = RUNNERS[case](bench, sizes)
    if peer and "postgresql" in benches:
        print(f"running ({case}) on django-hordak", file=sys.stderr, flush=True)
        done["hordak"] = run_peer(case, sizes)
    return done


def median_round(results: list[dict], case: str) -> dict | None:
    if not results or case == "e":
        return results[0] if results else None
    ordered = sorted(results, key=lambda result: result["entries_per_s"])
    median = dict(ordered[len(ordered) // 2])
    if len(results) > 1:
        median["rounds"] = [round(result["entries_per_s"]) for result in results]
    if case == "d":  # every round must be exact and free of errors, not only the median one
        median["errors"] = sum(result.get("errors", 0) for result in results)
        median["exact"] = all(result.get("exact", True) for result in results)
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="a,b,c,d,e")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/"))
    parser.add_argument("--no-peer", action="store_true", help="skip django-hordak")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    cases = args.cases.split(",")
    benches = {}
    with tempfile.TemporaryDirectory() as folder:
        for engine in args.engines.split(","):
            url = f"sqlite:///{folder}/bench.sqlite3" if engine == "sqlite" else fresh_postgres(
                args.pg, "fundledger_bench")
            benches[engine] = prepare(engine, url)
        results: dict = {}
        for case in cases:
            # Short cases run several rounds, ours and the peer's alternating, and the table shows the median
            # round: on a noisy 2-core machine one round can land on a slow moment for one side only.
            rounds = [run_round(case, benches, sizes, not args.no_peer) for _ in range(ROUNDS.get(case, 1))]
            for engine in (*benches, "hordak"):
                results[(engine, case)] = median_round([r[engine] for r in rounds if r.get(engine)], case)
        for bench in benches.values():
            bench.db.dispose()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({f"{k[0]}:{k[1]}": v for k, v in results.items()}, indent=1,
                                                default=str))
    print_table(results, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
