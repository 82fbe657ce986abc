"""Receipts: PDFs rendered per second on one core, side by side with reportlab's own QR widget; and annual
receipts for many donors end to end on PostgreSQL (numbering, PDF, stored).

    .venv/bin/python bench/receipts_bench.py            # 600 PDFs each way; annual receipts for 100,000 donors
    .venv/bin/python bench/receipts_bench.py --quick    # 100 PDFs each way; 2,000 donors
    .venv/bin/python bench/receipts_bench.py --only pdf # the rendering table alone

Rendering: one receipt (Chinese, the embedded CJK font, a verification address of the real length) rendered N
times with the donor and number changing, in this one process (one core), alternating in two rounds between
FundLedger's way (the QR code as vector runs from segno's matrix, a fixed mask) and reportlab's stock
``QrCodeWidget`` drawn on the same page.

Annual: a fresh database ``fl_receipts_bench``; one foundation; N donors, each with one gift of the year (posted
through the bulk import, the donation rows written beside them), then ``receipts.annual.issue_annual`` as `flask
receipts issue-annual` runs it: each donor's receipt numbered in the series, its PDF rendered and stored with its
SHA-256, batch by batch. Checked afterwards: N receipts numbered 1…N, each with its PDF.

Targets (issue 11): at least 150 PDFs per second on one core; 100,000 annual receipts in 15 minutes or less.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reportlab.graphics import renderPDF  # noqa: E402
from reportlab.graphics.barcode.qr import QrCodeWidget  # noqa: E402
from reportlab.graphics.shapes import Drawing  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

import receipts.pdf as pdf  # noqa: E402
from bench.webhook_bench import fresh_postgres  # noqa: E402
from ledger.books.bulk import import_entries  # noqa: E402
from ledger.books.charts import load_chart  # noqa: E402
from ledger.books.organisations import create_fund, create_organisation  # noqa: E402
from ledger.core.money import Money  # noqa: E402
from ledger.core.recipes import Particulars, offline_donation  # noqa: E402
from ledger.core.registration import unified_social_credit_code  # noqa: E402
from ledger.db.engine import Database  # noqa: E402
from ledger.db.schema import migrate  # noqa: E402
from receipts.annual import issue_annual  # noqa: E402
from receipts.documents import verify_address  # noqa: E402
from receipts.models import Receipt, ReceiptDocument  # noqa: E402

YEAR = 2025
SECRET = b"bench receipt signing secret"
VIEW = pdf.ReceiptView(
    number="CDCF-2026-000123", issued_on=dt.date(2026, 11, 30), language="zh-CN", jurisdiction="CN",
    organisation_name="成都市社区发展基金会", registration_number="53510100MJ0123456X", fund_name="玉林社区基金",
    donor_name="张三", donor_address="成都市锦江区某路 1 号", donor_tax_id="510104199001011234", amount_minor=1_234_567,
    currency="CNY", lines=((dt.date(2026, 11, 28), 1_234_567, "bank gift"),),
    verify_url="https://give.example.org/verify/CDCF-2026-000123?t=" + "x" * 86)


def widget_qr(canvas, text_, *, x, y, size):
    """reportlab's stock QR widget, as the peer: the same code, drawn by reportlab.graphics."""
    widget = QrCodeWidget(text_, barLevel="M")
    left, bottom, right, top = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)


def render_rate(count: int, way) -> float:
    original = pdf._qr
    pdf._qr = way
    try:
        pdf.render(VIEW)
        start = time.perf_counter()
        for n in range(count):
            pdf.render(dataclasses.replace(VIEW, number=f"CDCF-2026-{n:06d}", donor_name=f"张{n}"))
        return count / (time.perf_counter() - start)
    finally:
        pdf._qr = original


def annual(server: str, donors: int, processes: int) -> dict:
    database = Database(fresh_postgres(server, "fl_receipts_bench"))
    migrate(database.engine)
    organisation_id, fund_id = database.write(lambda session: _foundation(session))
    chart = database.write(lambda session: load_chart(session, organisation_id))
    started = time.perf_counter()
    import_entries(database, (offline_donation(chart, fund_id, Money(10_000 + n, "CNY"), "bank", Particulars(
        dt.date(YEAR, 1 + n % 12, 1 + n % 28), f"bench-{n}", "bench")) for n in range(donors)))
    database.write(lambda session: _donors_and_gifts(session, organisation_id, fund_id))
    setup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = issue_annual(database, organisation_id, YEAR, created_by="bench", render_processes=processes,
                           address_of=functools.partial(verify_address, "https://give.example.org", SECRET))
    seconds = time.perf_counter() - started
    with database.read() as session:
        numbers = session.execute(select(func.count(), func.min(Receipt.sequence), func.max(Receipt.sequence))
                                  .where(Receipt.organisation_id == organisation_id)).one()
        documents = session.scalar(select(func.count()).select_from(ReceiptDocument))
    database.dispose()
    exact = tuple(numbers) == (donors, 1, donors) and documents == donors == summary.receipts
    return {"seconds": seconds, "setup": setup_seconds, "receipts": summary.receipts, "exact": exact}


def _foundation(session) -> tuple[int, int]:
    organisation = create_organisation(
        session, name="Receipts Bench Foundation", kind="foundation", base_currency="CNY", jurisdiction="CN",
        registration_number=unified_social_credit_code("53510100MJ0123456"), books_opened_on=dt.date(YEAR, 1, 1))
    fund = create_fund(session, organisation.id, code="RB", name="bench fund", kind="community", restricted=False)
    return organisation.id, fund.id


def _donors_and_gifts(session, organisation_id: int, fund_id: int) -> None:
    """One donor for each entry imported, and the donation row that records the entry's gift."""
    session.execute(text("""
        INSERT INTO donors (organisation_id, kind, name, email, address, tax_id, public_name_consent, created_at,
                            created_by)
        SELECT :org, 'individual', '捐赠人 ' || n, 'donor' || n || '@example.org', '成都市锦江区 ' || n || ' 号',
               NULL, false, now(), 'bench'
          FROM generate_series(1, (SELECT count(*) FROM entries WHERE organisation_id = :org)) AS n"""),
                    {"org": organisation_id})
    session.execute(text("""
        INSERT INTO donations (organisation_id, fund_id, donor_id, channel, amount_minor, currency, received_on,
                               reference, description, in_kind_description, valuation_basis, refunded_minor,
                               entry_id, created_at, created_by)
        SELECT :org, :fund, d.id, 'bank', p.amount_minor, 'CNY', e.effective_date, '', 'bank gift', '', '', 0, e.id,
               now(), 'bench'
          FROM (SELECT id, effective_date, row_number() OVER (ORDER BY id) AS n FROM entries
                 WHERE organisation_id = :org) AS e
          JOIN postings p ON p.entry_id = e.id
          JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM donors WHERE organisation_id = :org) AS d
            ON d.n = e.n"""), {"org": organisation_id, "fund": fund_id})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=600)
    parser.add_argument("--donors", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/"))
    parser.add_argument("--processes", type=int, default=2, help="processes rendering the annual receipts' PDFs")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["pdf", "annual"], help="run one part only")
    args = parser.parse_args()
    count, donors = (100, 2_000) if args.quick else (args.pdfs, args.donors)
    if args.only != "annual":
        print_render_rates(count)
    if args.only != "pdf":
        print_annual(args, donors)
    return 0


def print_render_rates(count: int) -> None:
    rates = {"FundLedger (vector runs)": [], "reportlab QrCodeWidget": []}
    for _ in range(2):
        rates["FundLedger (vector runs)"].append(render_rate(count, pdf._qr))
        rates["reportlab QrCodeWidget"].append(render_rate(count, widget_qr))
    print(f"\nPDF receipts rendered in one process (one core), {count} per round, two rounds alternating\n")
    print("| QR code drawn by | receipts/s, round 1 | round 2 | target (≥ 150/s) |")
    print("|---|---|---|---|")
    for name, (first, second) in rates.items():
        met = "met" if min(first, second) >= 150 else "missed"
        print(f"| {name} | {first:,.1f} | {second:,.1f} | {met if name.startswith('FundLedger') else '—'} |")


def print_annual(args, donors: int) -> None:
    result = annual(args.pg, donors, args.processes)
    print(f"\nAnnual receipts for {donors:,} donors on PostgreSQL (numbering, PDF, stored), PDFs rendered in "
          f"{args.processes} process(es)\n")
    print("| donors | receipts | minutes | receipts/s | books | target (100,000 in ≤ 15 min) | set-up (not counted) |")
    print("|---|---|---|---|---|---|---|")
    met = "met" if result["seconds"] / donors * 100_000 <= 900 else "missed"
    print(f"| {donors:,} | {result['receipts']:,} | {result['seconds'] / 60:.1f} | "
          f"{result['receipts'] / result['seconds']:,.0f} | {'exact' if result['exact'] else 'NOT EXACT'} | "
          f"{met}{' (scaled)' if donors != 100_000 else ''} | {result['setup']:.0f} s |")


if __name__ == "__main__":
    raise SystemExit(main())
