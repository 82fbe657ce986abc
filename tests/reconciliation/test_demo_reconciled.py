"""The demo's bank account reconciled: loading the demo (as `make run` does) imports its bank's statements for the
autumn, one a month, matches every line, and records the interest and the bank's charge from their lines, so the
account's report balances with nothing left on either side and each ended month can be closed as reconciled; and the
committed statements are still what the demo's books make."""

from __future__ import annotations

import datetime as dt
import fnmatch
import importlib.util
import json
import sys
import tomllib
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ledger.books.charts import load_chart
from ledger.core.chart import Role
from ledger.db.engine import Database
from ledger.db.models import BankStatement, Fund, Posting, ReconciliationMatch, StatementLine
from ledger.db.schema import migrate
from ledger.demo import DEMO_STATEMENTS, load_demo_if_empty
from ledger.reconciliation.closes import close_reconciled_month
from ledger.reconciliation.matches import report
from ledger.reconciliation.statements import CN_BANK, read_csv

ROOT = Path(__file__).resolve().parents[2]
AUTUMN = (dt.date(2026, 9, 1), dt.date(2026, 11, 30))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request, tmp_path_factory) -> Iterator[tuple[Database, int]]:
    """The demo loaded into an empty database of its own, once per engine: (the database, the organisation's id)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.sqlite3'}")
        migrate(database.engine)
        yield database, load_demo_if_empty(database)
        database.dispose()
        return
    server = request.getfixturevalue("postgres_db")
    name = f"fundledger_demo_{uuid.uuid4().hex[:12]}"
    with server.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(server.engine.url.set(database=name).render_as_string(hide_password=False))
    try:
        migrate(database.engine)
        yield database, load_demo_if_empty(database)
    finally:
        database.dispose()
        with server.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_the_demo_bank_account_reconciles_with_every_line_matched(demo):
    database, organisation_id = demo
    with database.read() as session:
        bank = load_chart(session, organisation_id).account(Role.BANK)
        reconciliation = report(session, organisation_id, bank, *AUTUMN)
        statements = session.scalars(select(BankStatement).where(BankStatement.account_id == bank)
                                     .order_by(BankStatement.id)).all()
        unmatched = session.scalar(select(func.count()).select_from(StatementLine).where(
            StatementLine.account_id == bank, StatementLine.match_id.is_(None)))
        rules = dict(session.execute(select(ReconciliationMatch.rule, func.count())
                                     .where(ReconciliationMatch.account_id == bank)
                                     .group_by(ReconciliationMatch.rule)).all())

    assert reconciliation.reconciled and reconciliation.unexplained_minor == 0
    assert reconciliation.unmatched_lines == [] and reconciliation.unmatched_items == []
    assert [statement.filename for statement in statements] == list(DEMO_STATEMENTS)
    assert statements[0].opening_minor == 0  # the account opened with the books, on 1 September
    assert [statement.opening_minor for statement in statements[1:]] == [
        statement.closing_minor for statement in statements[:-1]]  # each month starts where the last one ended
    assert [statement.period_end.month for statement in statements] == [9, 10, 11]
    last = statements[-1]
    assert reconciliation.bank_closing_minor == last.closing_minor == reconciliation.books_closing_minor > 0
    lines = sum(statement.line_count for statement in statements)
    assert unmatched == 0 and reconciliation.matched_lines == lines == sum(s.new_line_count for s in statements)
    assert reconciliation.matched_minor == last.closing_minor
    assert rules["one_to_one"] >= 20 and rules["created"] == 2  # most by the matcher; interest and charge recorded


def test_the_interest_and_the_charge_are_the_general_funds_fundraising_costs(demo):
    """《民间非营利组织会计制度》 5301 筹资费用: the bank's charge debited, the interest on deposits credited to it."""
    database, organisation_id = demo
    with database.read() as session:
        chart = load_chart(session, organisation_id)
        bank, costs = chart.account(Role.BANK), chart.by_code["5301"]
        general = session.scalars(select(Fund.id).where(Fund.organisation_id == organisation_id,
                                                        Fund.kind == "general")).one()
        created = [entry_id for ids in session.scalars(select(ReconciliationMatch.entry_ids).where(
            ReconciliationMatch.account_id == bank, ReconciliationMatch.rule == "created"))
            for entry_id in json.loads(ids)]
        postings = session.execute(select(Posting.debit_account_id, Posting.credit_account_id, Posting.fund_id,
                                          Posting.amount_minor).where(Posting.entry_id.in_(created))).all()

    assert sorted(tuple(row) for row in postings) == [(bank, costs, general, 315), (costs, bank, general, 200)]


def _script():
    """scripts/demo_bank_statement.py, which made the committed file (a script, not a module of the package)."""
    if "demo_bank_statement" not in sys.modules:
        spec = importlib.util.spec_from_file_location("demo_bank_statement",
                                                      ROOT / "scripts" / "demo_bank_statement.py")
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules["demo_bank_statement"]


def test_the_committed_statements_are_what_the_demo_books_make(demo):
    database, organisation_id = demo
    committed = [(files("ledger") / "demo_data" / name).read_bytes() for name in DEMO_STATEMENTS]
    with database.read() as session:
        made = _script().demo_statements(session, organisation_id)

    assert made == committed, "the demo's books changed: run scripts/demo_bank_statement.py and commit its files"
    statements = [read_csv(name, content, CN_BANK) for name, content in zip(DEMO_STATEMENTS, committed, strict=True)]
    assert [(statement.period_start, statement.period_end) for statement in statements] == [
        (dt.date(2026, 9, 2), dt.date(2026, 9, 28)), (dt.date(2026, 10, 5), dt.date(2026, 10, 30)),
        (dt.date(2026, 11, 1), dt.date(2026, 11, 20))]
    assert {"手续费", "利息"} <= {line.description for statement in statements for line in statement.lines}
    with pytest.raises(UnicodeDecodeError):  # GBK, as the bank gives it
        committed[0].decode("utf-8")


def test_the_statements_ship_with_the_package():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]

    assert all(any(fnmatch.fnmatch(f"demo_data/{name}", pattern) for pattern in package_data["ledger"])
               for name in DEMO_STATEMENTS)


def test_each_ended_month_of_the_demo_closes_as_reconciled(demo):
    """What the manager's screen offers a newcomer: September and October close, each report frozen and
    reconciled. (The last test of the module: it closes the demo's months.)"""
    database, organisation_id = demo
    with database.read() as session:
        bank = load_chart(session, organisation_id).account(Role.BANK)

    closed = [database.write(lambda session, month=month: close_reconciled_month(
        session, organisation_id, bank, 2026, month, closed_by="test")) for month in (9, 10)]

    assert [(report.end, report.unexplained_minor, report.unmatched_lines) for report in closed] == [
        (dt.date(2026, 9, 30), 0, []), (dt.date(2026, 10, 31), 0, [])]
