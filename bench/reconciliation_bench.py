"""Importing and auto-matching a bank statement of 100,000 lines against 100,000 entries, on PostgreSQL.

    .venv/bin/python bench/reconciliation_bench.py           # 100,000 lines and entries
    .venv/bin/python bench/reconciliation_bench.py --quick   # 10,000

Set-up (not counted): a fresh database ``fl_reconciliation_bench``; one foundation, one fund; N bank gifts posted
through the bulk import; the bank's export of the same N gifts written as a GBK-encoded CSV in the common Chinese
layout (``cn_bank``), each on its day or the day after, with its bank id.

Measured, in a child process (so that its peak memory is the work's alone): ``import_statement`` (the file read,
decoded, parsed, fingerprinted, its lines written) and ``auto_match`` (every line and entry read back, proposals
made, the unambiguous ones kept in bulk), each in one transaction, as ``flask reconcile import`` and
``POST …/reconciliation/auto-match`` run them.

Target (issue 13): both in 60 s or less with peak memory under 500 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhook_bench import fresh_postgres  # noqa: E402
from ledger.books.bulk import import_entries  # noqa: E402
from ledger.books.charts import load_chart  # noqa: E402
from ledger.books.organisations import create_fund, create_organisation  # noqa: E402
from ledger.core.chart import Role  # noqa: E402
from ledger.core.money import Money  # noqa: E402
from ledger.core.recipes import Particulars, offline_donation  # noqa: E402
from ledger.core.registration import unified_social_credit_code  # noqa: E402
from ledger.db.engine import Database  # noqa: E402
from ledger.db.schema import migrate  # noqa: E402
from ledger.reconciliation.imports import import_statement  # noqa: E402
from ledger.reconciliation.matches import auto_match  # noqa: E402
from ledger.reconciliation.statements import CN_BANK  # noqa: E402

START = dt.date(2025, 1, 1)


def amount(n: int) -> int:
    return 10_000 + (n * 7_919) % 9_000_000  # distinct enough that most gifts have an amount of their own


def build(url: str, count: int) -> tuple[int, int, bytes]:
    database = Database(url)
    migrate(database.engine)

    def foundation(session):
        organisation = create_organisation(
            session, name="Reconciliation Bench Foundation", kind="foundation", base_currency="CNY",
            jurisdiction="CN", registration_number=unified_social_credit_code("53510100MJ0123456"),
            books_opened_on=START)
        fund = create_fund(session, organisation.id, code="RB", name="bench", kind="community", restricted=False)
        return organisation.id, fund.id

    organisation_id, fund_id = database.write(foundation)
    chart = database.write(lambda session: load_chart(session, organisation_id))
    import_entries(database, (offline_donation(chart, fund_id, Money(amount(n), "CNY"), "bank", Particulars(
        START + dt.timedelta(days=n % 360), f"gift-{n}", "bench", f"bank gift {n}")) for n in range(count)))
    rows = ["中国工商银行 账户交易明细", "账号：6222 0244 0000 1234 567", "",
            "交易日期,交易流水号,摘要,用途,借方发生额,贷方发生额,余额,对方户名"]
    rows += [f"{START + dt.timedelta(days=n % 360 + n % 2)},HX{n:09d},转账收入,捐赠,,"
             f"\"{amount(n) // 100:,}.{amount(n) % 100:02d}\",,捐赠人{n}" for n in range(count)]
    bank = chart.account(Role.BANK)
    database.dispose()
    return organisation_id, bank, "\r\n".join(rows).encode("gbk")


def measured(url: str, organisation_id: int, bank: int, content: bytes, results) -> None:
    database = Database(url)
    started = time.perf_counter()
    imported = database.write(lambda session: import_statement(
        session, organisation_id, bank, filename="icbc.csv", content=content, file_format="csv", mapping=CN_BANK,
        imported_by="bench"), attempts=1)
    middle = time.perf_counter()
    matched = database.write(lambda session: auto_match(session, organisation_id, bank, "bench").matches,
                             attempts=1)
    results.put({"import": middle - started, "match": time.perf_counter() - middle, "lines": imported.new_lines,
                 "matched": matched})
    database.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 10_000 if args.quick else args.count
    url = fresh_postgres(args.pg, "fl_reconciliation_bench")
    started = time.perf_counter()
    organisation_id, bank, content = build(url, count)
    setup = time.perf_counter() - started
    results = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(target=measured, args=(url, organisation_id, bank, content,
                                                                                results))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the measured run failed (exit {child.exitcode}): see its traceback above")
    result = results.get(timeout=5)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    total = result["import"] + result["match"]
    print(f"\nA {len(content) / 1e6:.1f} MB GBK statement of {count:,} lines against {count:,} entries on PostgreSQL "
          f"(set-up {setup:.0f} s, not counted)\n")
    print("| lines | entries | import s | auto-match s | total s | matched | peak MB | target (≤ 60 s, < 500 MB) |")
    print("|---|---|---|---|---|---|---|---|")
    met = "met" if total <= 60 and peak_mb < 500 else "missed"
    print(f"| {result['lines']:,} | {count:,} | {result['import']:.1f} | {result['match']:.1f} | {total:.1f} | "
          f"{result['matched']:,} | {peak_mb:.0f} | {met} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
