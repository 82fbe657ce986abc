#!/usr/bin/env python3
"""Writes the demo's bank statements (ledger/demo_data/), the files the demo's bank would give for its account 1002
(银行存款), one a month from September to November 2026: GBK, in the layout of a Chinese bank's 账户交易明细 (the
``cn_bank`` preset), with a running balance carried from one month to the next. One a month, as a bank issues them:
each states its month's closing balance, so a reconciled month can be closed. Run it once after changing the demo's
books, from the repository's root:

    .venv/bin/python scripts/demo_bank_statement.py          # rewrites the files
    .venv/bin/python scripts/demo_bank_statement.py --check  # exits 1 when a file no longer agrees

It is made of what the bank saw of the demo's books: each gift by bank transfer the day it arrived, each cheque the
first weekday after it was received (when it was paid in), the refund paid back, the grant paid and the
processor's payout arriving; and of two things only the bank knew until the statement came: the quarter's
interest (结息, credited on the 21st of the quarter's last month) and the charge for the grant's transfer
(手续费). The demo imports these files, matches them and records those two from their lines.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.core.chart import Role
from ledger.db.engine import Database
from ledger.db.models import Donation, Donor, Entry, Grant, GrantPayment, Refund
from ledger.db.schema import migrate
from ledger.demo import DEMO_STATEMENTS, load_books
from ledger.reconciliation.matches import ledger_items

FOLDER = Path(__file__).resolve().parents[1] / "ledger" / "demo_data"
BANK = "中国工商银行"
ACCOUNT = "4402 2089 0910 0123 456"
HOLDER = "成都市锦城社区发展基金会"
MONTHS = (dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1))  # each file's month, DEMO_STATEMENTS' order
PROCESSOR = "财付通支付科技有限公司"
# The payers of gifts the foundation recorded without a name: the bank shows every payer.
UNNAMED_PAYERS = ("周建国", "吴秀英", "郑晓明")


@dataclass(frozen=True, slots=True)
class BankLine:
    booked_on: dt.date
    amount_minor: int  # money in positive
    summary: str  # 摘要
    purpose: str  # 用途 (what the payer wrote)
    counterparty: str  # 对方户名


# What only the bank knew: the quarter's interest, and the charge for sending the grant to another bank.
BANK_ONLY = (
    BankLine(dt.date(2026, 9, 21), 315, "利息", "第三季度结息", BANK),
    BankLine(dt.date(2026, 11, 10), -200, "手续费", "网银跨行汇款手续费", BANK),
)


def _chinese(name: str) -> str:
    """A bilingual demo name as a Chinese bank prints it: its Chinese words only."""
    return name.split(" ")[0]


def _paid_in(received_on: dt.date) -> dt.date:
    """A cheque is paid in on the first weekday after the day it was received."""
    day = received_on + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def books_lines(session: Session, organisation_id: int) -> list[BankLine]:
    """The bank's side of each record the books hold on the bank account (entries made from the bank's own lines,
    like the interest and the charge, are left out: they come from this statement)."""
    bank = load_chart(session, organisation_id).account(Role.BANK)
    lines, unnamed = [], iter(UNNAMED_PAYERS)
    for item in ledger_items(session, organisation_id, bank, unmatched=False):
        kind = session.get(Entry, item.id).kind
        if kind == "donation":
            gift = session.scalars(select(Donation).where(Donation.entry_id == item.id)).one()
            payer = _chinese(session.get(Donor, gift.donor_id).name) if gift.donor_id else next(unnamed)
            lines.append(BankLine(gift.received_on, item.amount_minor, "转账收入", "捐赠", payer)
                         if gift.channel == "bank" else
                         BankLine(_paid_in(gift.received_on), item.amount_minor, "支票进账", "捐赠", payer))
        elif kind == "refund":
            refund = session.scalars(select(Refund).where(Refund.entry_id == item.id)).one()
            donor_id = session.get(Donation, refund.donation_id).donor_id
            lines.append(BankLine(refund.refunded_on, item.amount_minor, "转账支出", "退还误转捐款",
                                  _chinese(session.get(Donor, donor_id).name)))
        elif kind == "grant_paid":
            payment = session.scalars(select(GrantPayment).where(GrantPayment.entry_id == item.id)).one()
            lines.append(BankLine(payment.paid_on, item.amount_minor, "转账支出", "资助款",
                                  _chinese(session.get(Grant, payment.grant_id).payee)))
        elif kind == "payout":
            lines.append(BankLine(item.day, item.amount_minor, "转账收入", "结算款", PROCESSOR))
    return lines


def _yuan(minor: int) -> str:
    """An amount as the bank prints it (1,234.50), from its minor units: no float near money."""
    return "" if not minor else _money(minor)


def _money(minor: int) -> str:
    yuan, fen = divmod(abs(minor), 100)
    return f"{'-' if minor < 0 else ''}{yuan:,}.{fen:02d}"


def _month_end(first: dt.date) -> dt.date:
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def statements_bytes(lines: list[BankLine]) -> list[bytes]:
    """The month's statement for each of ``MONTHS``: a preamble, the header, the month's lines oldest first with the
    balance after each (carried over from the month before), the month's totals; GBK, rows ended by CRLF, as the
    bank's export is. The bank's serial numbers run on across the months."""
    ordered = sorted(lines, key=lambda line: (line.booked_on, line.amount_minor < 0))  # in, then out: as listed
    if any(not MONTHS[0] <= line.booked_on <= _month_end(MONTHS[-1]) for line in ordered):
        raise ValueError("a line of the demo's bank falls outside the statements' months")
    files, balance, number = [], 0, 0
    for first in MONTHS:
        last = _month_end(first)
        text = io.StringIO()
        rows = csv.writer(text, lineterminator="\r\n")
        rows.writerows([[f"{BANK} 账户交易明细"], [f"账号：{ACCOUNT}", f"户名：{HOLDER}"],
                        [f"起始日期：{first}", f"终止日期：{last}"], [],
                        ["交易日期", "交易流水号", "摘要", "用途", "借方发生额", "贷方发生额", "余额", "对方户名"]])
        month = [line for line in ordered if first <= line.booked_on <= last]
        for line in month:
            balance, number = balance + line.amount_minor, number + 1
            rows.writerow([line.booked_on.isoformat(), f"GH{line.booked_on:%Y%m%d}{number:04d}", line.summary,
                           line.purpose, _yuan(max(-line.amount_minor, 0)), _yuan(max(line.amount_minor, 0)),
                           _money(balance), line.counterparty])
        rows.writerow(["合计", "", "", "", _yuan(sum(-line.amount_minor for line in month if line.amount_minor < 0)),
                       _yuan(sum(line.amount_minor for line in month if line.amount_minor > 0)), "", ""])
        files.append(text.getvalue().encode("gbk"))
    return files


def demo_statements(session: Session, organisation_id: int) -> list[bytes]:
    return statements_bytes([*books_lines(session, organisation_id), *BANK_ONLY])


def _made() -> list[bytes]:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'demo.sqlite3'}")
        try:
            migrate(db.engine)
            organisation_id = db.write(load_books)
            with db.read() as session:
                return demo_statements(session, organisation_id)
        finally:
            db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file differs")
    made = dict(zip(DEMO_STATEMENTS, _made(), strict=True))
    if parser.parse_args().check:
        differ = [name for name, content in made.items()
                  if not (FOLDER / name).exists() or (FOLDER / name).read_bytes() != content]
        print("; ".join(f"{name}: differs from the demo: run this script" for name in differ)
              or f"{len(made)} statements agree with the demo")
        return 1 if differ else 0
    FOLDER.mkdir(exist_ok=True)
    for name, content in made.items():
        (FOLDER / name).write_bytes(content)
        print(f"wrote {FOLDER / name} ({len(content)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
