"""The public pages under concurrent readers, and publishing a year's report, over a fund with a million gifts on
PostgreSQL.

    .venv/bin/python bench/transparency_bench.py             # 1,000,000 gifts (set-up takes a few minutes)
    .venv/bin/python bench/transparency_bench.py --quick     # 50,000 gifts

Set-up (not counted): a fresh database ``fl_transparency_bench``; one foundation, one fund; N gifts of the year
(posted through the bulk import, so the database's triggers keep the months and the counts as they do for every
write), from N/5 donors (every third consenting to be named), the donation rows written beside them; twenty grants
approved and paid through the ledger's own lifecycle.

Reads: gunicorn (2 workers × 8 threads, as `make run` serves it) answers the fund's page, its data (JSON), the
organisation's page and the year's data to 16 readers at once on keep-alive connections, three ways in one run:
every answer made afresh from the aggregates (``FUNDLEDGER_PUBLIC_CACHE=0``); kept while the organisation's version
holds (the default); and kept while a gift is recorded every 100 ms in the same fund (each gift changes the version,
so answers are made again all the time). Side by side, the peer: the same fund figures computed the way a page
without aggregates would, scanning the gifts and the postings (one query each, timed in this process).

Publishing: ``ledger.reports.publishing.publish`` for the calendar year, as ``POST …/reports`` runs it (figures from
the months, every gift a Merkle leaf, the seal), then one donor's inclusion proof over the N-leaf tree.

Targets (issue 12): page and data at p50 ≤ 50 ms and p99 ≤ 200 ms under concurrent readers; the year's report
published in 60 s or less.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.webhook_bench import free_port, fresh_postgres  # noqa: E402
from ledger.access.users import create_user  # noqa: E402
from ledger.books.bulk import analyze, import_entries  # noqa: E402
from ledger.books.charts import load_chart  # noqa: E402
from ledger.books.integrity import seal_pending  # noqa: E402
from ledger.books.organisations import create_fund, create_organisation  # noqa: E402
from ledger.core.money import Money  # noqa: E402
from ledger.core.recipes import Particulars, offline_donation  # noqa: E402
from ledger.core.registration import unified_social_credit_code  # noqa: E402
from ledger.db.engine import Database  # noqa: E402
from ledger.db.schema import migrate  # noqa: E402
from ledger.giving.donations import GiftRecord, record_donation  # noqa: E402
from ledger.grants.lifecycle import GrantRequest, approve_grant, pay_grant, request_grant  # noqa: E402
from ledger.reports.merkle import GiftLeaf  # noqa: E402
from ledger.reports.publishing import Period, inclusion_proof, publish  # noqa: E402

YEAR = 2025
READERS = 16


def build(url: str, gifts: int) -> tuple[Database, int, int, float]:
    database = Database(url)
    migrate(database.engine)
    started = time.perf_counter()
    organisation_id, fund_id = database.write(_foundation)
    chart = database.write(lambda session: load_chart(session, organisation_id))
    import_entries(database, (offline_donation(chart, fund_id, Money(1_000 + n % 50_000, "CNY"), "bank", Particulars(
        dt.date(YEAR, 1, 1) + dt.timedelta(days=n % 365), f"gift-{n}", "bench")) for n in range(gifts)))
    database.write(lambda session: _donors_and_gifts(session, organisation_id, fund_id, gifts // 5))
    database.write(lambda session: _grants(session, organisation_id, fund_id))
    analyze(database)
    seal_pending(database)
    return database, organisation_id, fund_id, time.perf_counter() - started


def _foundation(session) -> tuple[int, int]:
    organisation = create_organisation(
        session, name="成都市透明基金会 Transparency Bench Foundation", kind="foundation", base_currency="CNY",
        jurisdiction="CN", registration_number=unified_social_credit_code("53510100MJ0123456"),
        books_opened_on=dt.date(YEAR, 1, 1))
    fund = create_fund(session, organisation.id, code="BIG", name="百万捐赠基金 a fund of a million gifts",
                       kind="community", restricted=False)
    for number in range(1, 3):
        create_user(session, email=f"bench{number}@example.org", password="bench-password-2026")
    return organisation.id, fund.id


def _donors_and_gifts(session, organisation_id: int, fund_id: int, donors: int) -> None:
    session.execute(text("""
        INSERT INTO donors (organisation_id, kind, name, email, public_name_consent, created_at, created_by)
        SELECT :org, 'individual', '捐赠人' || n, 'donor' || n || '@example.org', n % 3 = 0, now(), 'bench'
          FROM generate_series(1, :donors) AS n"""), {"org": organisation_id, "donors": donors})
    session.execute(text("""
        INSERT INTO donations (organisation_id, fund_id, donor_id, channel, amount_minor, currency, received_on,
                               reference, description, in_kind_description, valuation_basis, refunded_minor,
                               entry_id, created_at, created_by)
        SELECT :org, :fund, CASE WHEN e.n % 10 = 0 THEN NULL ELSE d.id END, 'bank', p.amount_minor, 'CNY',
               e.effective_date, '', 'bank gift', '', '', 0, e.id, now(), 'bench'
          FROM (SELECT id, effective_date, row_number() OVER (ORDER BY id) AS n FROM entries
                 WHERE organisation_id = :org) AS e
          JOIN postings p ON p.entry_id = e.id
          JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM donors WHERE organisation_id = :org) AS d
            ON d.n = 1 + (e.n % :donors)"""), {"org": organisation_id, "fund": fund_id, "donors": donors})


def _grants(session, organisation_id: int, fund_id: int) -> None:
    users = [row[0] for row in session.execute(text("SELECT id FROM users ORDER BY id DESC LIMIT 2"))]
    for number in range(20):
        grant = request_grant(session, organisation_id, GrantRequest(
            fund_id, 100_000 + number, "CNY", f"受助方 {number}" if number % 2 else f"王{number}",
            "社区项目 a neighbourhood project", "charitable_activities",
            "organisation" if number % 2 else "individual"), requested_by_user_id=users[0])
        day = dt.date(YEAR, 1 + number % 12, 15)
        approve_grant(session, organisation_id, grant.id, approver_user_id=users[1], effective_date=day,
                      idempotency_key=f"approve-{number}", recorded_by="bench")
        pay_grant(session, organisation_id, grant.id, paid_on=day + dt.timedelta(days=3),
                  idempotency_key=f"pay-{number}", recorded_by="bench", paid_by_user_id=users[1])


def serve(url: str, log: Path, cache: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": url, "FUNDLEDGER_RATELIMIT_DEFAULT": "10000000 per minute",
                   "FUNDLEDGER_PUBLIC_CACHE": "1" if cache else "0"}
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", "--worker-class", "gthread", "--threads", "8",
         "--bind", f"127.0.0.1:{port}", "--no-control-socket", "wsgi:app"],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2):
                return process, port
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"gunicorn did not start: see {log}")


def read(port: int, path: str, requests: int) -> dict:
    """``requests`` GETs of ``path`` from READERS keep-alive connections at once: latencies and errors."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    each = max(requests // READERS, 1)

    def reader() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(each):
            start = time.perf_counter()
            connection.request("GET", path, headers={"Accept": "text/html"})
            answer = connection.getresponse()
            answer.read()
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                if answer.status != 200:
                    errors.append(answer.status)
        connection.close()

    threads = [threading.Thread(target=reader) for _ in range(READERS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    ordered = sorted(latencies)
    return {"requests": len(ordered), "per_second": len(ordered) / seconds, "p50": statistics.median(ordered),
            "p99": ordered[max(0, int(len(ordered) * 0.99) - 1)], "errors": len(errors)}


class Writer(threading.Thread):
    """Records a bank gift in the fund every ``pause`` seconds, as a fund manager's office would, until stopped."""

    def __init__(self, database: Database, organisation_id: int, fund_id: int, pause: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.database, self.organisation_id, self.fund_id, self.pause = database, organisation_id, fund_id, pause
        self.stopped, self.written = threading.Event(), 0

    def run(self) -> None:
        while not self.stopped.wait(self.pause):
            self.written += 1
            gift = GiftRecord(self.fund_id, 5_000, "CNY", "bank", dt.date(YEAR + 1, 1, 5))
            self.database.write(lambda session, gift=gift, number=self.written: record_donation(
                session, self.organisation_id, gift, idempotency_key=f"live-{number}", recorded_by="bench"))


def reads(port: int, paths: dict[str, str], requests: int) -> dict[str, dict]:
    for path in paths.values():  # warm each worker's caches (the charts, the templates)
        read(port, path, READERS * 2)
    return {name: read(port, path, requests) for name, path in paths.items()}


def scan_peer(database: Database, fund_id: int) -> float:
    """The fund's figures the way a page without aggregates would get them: scanning its gifts and postings."""
    started = time.perf_counter()
    with database.read() as session:
        session.execute(text("SELECT count(*), count(DISTINCT donor_id), sum(amount_minor) FROM donations "
                             "WHERE fund_id = :fund"), {"fund": fund_id}).one()
        session.execute(text("SELECT date_trunc('month', effective_date), sum(amount_minor) FROM postings "
                             "WHERE fund_id = :fund GROUP BY 1"), {"fund": fund_id}).all()
    return (time.perf_counter() - started) * 1000


def publish_year(database: Database, organisation_id: int) -> tuple[float, object]:
    started = time.perf_counter()
    report = database.write(lambda session: publish(session, organisation_id, None, Period(
        dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)), published_by="bench"), attempts=1)
    return time.perf_counter() - started, report


def proof_time(database: Database, report, organisation_id: int) -> tuple[float, bool]:
    with database.read() as session:
        row = session.execute(text("SELECT id, fund_id, donor_id, amount_minor, currency, received_on FROM donations "
                                   "WHERE organisation_id = :org AND received_on <= :end ORDER BY id DESC LIMIT 1"),
                              {"org": organisation_id, "end": dt.date(YEAR, 12, 31)}).one()
    started = time.perf_counter()
    proof = inclusion_proof(report, GiftLeaf(row.id, organisation_id, row.fund_id, row.donor_id, row.amount_minor,
                                             row.currency, row.received_on))
    return (time.perf_counter() - started) * 1000, proof is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3_200, help="GETs of each address")
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    gifts = 50_000 if args.quick else args.gifts
    url = fresh_postgres(args.pg, "fl_transparency_bench")
    database, organisation_id, fund_id, setup = build(url, gifts)
    paths = {"fund page (HTML)": f"/o/{organisation_id}/f/{fund_id}?lang=zh-CN",
             "fund data (JSON)": f"/data/o/{organisation_id}/f/{fund_id}.json",
             "organisation page (HTML)": f"/o/{organisation_id}?year={YEAR}&lang=zh-CN",
             "organisation's year (JSON)": f"/data/o/{organisation_id}/{YEAR}.json"}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        fresh, fresh_port = serve(url, Path(folder) / "fresh.log", cache=False)
        kept, kept_port = serve(url, Path(folder) / "kept.log", cache=True)
        try:
            results["made afresh"] = reads(fresh_port, paths, args.requests)
            results["kept"] = reads(kept_port, paths, args.requests)
            writer = Writer(database, organisation_id, fund_id)
            writer.start()
            results["kept, a gift every 100 ms"] = reads(kept_port, paths, args.requests)
            writer.stopped.set()
            writer.join()
        finally:
            for server in (fresh, kept):
                server.terminate()
                server.wait()
    peer = statistics.median(scan_peer(database, fund_id) for _ in range(5))
    seconds, report = publish_year(database, organisation_id)
    proof_ms, proven = proof_time(database, report, organisation_id)
    database.dispose()
    print_tables(gifts, setup, results, peer, seconds, report, proof_ms, proven, writer.written)
    return 0


def print_tables(gifts, setup, results, peer, seconds, report, proof_ms, proven, written) -> None:
    print(f"\nA fund with {gifts:,} gifts on PostgreSQL; gunicorn 2 workers × 8 threads; {READERS} readers at once "
          f"(set-up {setup:.0f} s, not counted; {written} gifts recorded during the third way)\n")
    print("| answers | what | requests | per second | p50 ms | p99 ms | errors | target (p50 ≤ 50, p99 ≤ 200) |")
    print("|---|---|---|---|---|---|---|---|")
    for way, by_path in results.items():
        for name, result in by_path.items():
            met = "met" if result["p50"] <= 50 and result["p99"] <= 200 else "missed"
            print(f"| {way} | {name} | {result['requests']:,} | {result['per_second']:,.0f} | {result['p50']:.1f} | "
                  f"{result['p99']:.1f} | {result['errors']} | {met} |")
    print(f"| peer | the fund's figures by scanning its gifts and postings (one reader, median of 5) | 5 | — | "
          f"{peer:.1f} | — | — | — |")
    print(f"\nPublishing the year's report over {report.donation_count:,} gifts\n")
    print("| step | seconds | target |")
    print("|---|---|---|")
    print(f"| publish (figures, {report.donation_count:,} Merkle leaves, seal) | {seconds:.1f} | "
          f"{'met' if seconds <= 60 else 'missed'} (≤ 60 s) |")
    print(f"| one donor's inclusion proof | {proof_ms / 1000:.2f} | {'proven' if proven else 'NOT FOUND'} |")


if __name__ == "__main__":
    raise SystemExit(main())
