"""Closing a reconciled month: refused, writing nothing, while anything is unexplained; once closed, the ledger's month
takes no entry and the month's report is frozen (later matches, unmatches and imports leave it byte for byte as it
was) until the month is reopened; closed again, the next version. The frozen rows cannot be changed, by the code or
by raw SQL on either engine; and the report as a PDF, the same bytes each time."""

from __future__ import annotations

import io
import uuid

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ledger.core.errors import InvalidState
from ledger.db.models import Period, ReconciliationClose
from tests.api.support import snapshot
from tests.reconciliation.test_imports import account, upload
from tests.reconciliation.test_matching import STATEMENT, first_match, gift

OCTOBER = "start=2026-10-01&end=2026-10-31"
PLAIN = {"date": "date", "amount": "amount", "reference": "reference", "counterparty": "counterparty",
         "bank_id": "id", "balance": "balance"}
# The bank's October closing balance says 100.00 more than its lines: nothing in the books explains it.
MISSTATED = STATEMENT.replace("2450.30,payout po_1,STRIPE,B4,12235.30", "2450.30,payout po_1,STRIPE,B4,12335.30")
LATE_GIFT = "date,amount,reference,counterparty,id,balance\n2026-10-28,500.00,gift,王芳,B5,12735.30\n"


def october(world, statement: str = STATEMENT) -> int:
    """The bank account with October's gifts recorded, its statement imported and matched automatically: a fee only
    the bank has and a gift only the books have (matching tests/reconciliation/test_matching.py's)."""
    bank = account(world, "1002")
    for amount, day in ((100_000, "2026-10-03"), (880_000, "2026-10-07"), (145_030, "2026-10-20"),
                        (100_000, "2026-10-20"), (50_000, "2026-10-25")):
        gift(world, amount, day)
    world.call("org_admin", "PUT", world.url("/statement-mappings/plain"), PLAIN)
    assert upload(world, "org_admin", statement.encode(), "oct.csv", account_id=bank, format="csv",
                  mapping="plain").status_code == 201
    world.call("org_admin", "POST", world.url("/reconciliation/auto-match"), {"account_id": bank})
    return bank


def close(world, bank: int, month: int = 10, role: str = "org_admin"):
    return world.call(role, "POST", world.url("/reconciliation/close"),
                      {"account_id": bank, "year": 2026, "month": month}, key=uuid.uuid4().hex)


def report(world, bank: int, period: str = OCTOBER):
    return world.call("auditor", "GET", world.url(f"/reconciliation/report?account_id={bank}&{period}"))


def pdf(world, bank: int, period: str = OCTOBER):
    return world.call("auditor", "GET", world.url(f"/reconciliation/report.pdf?account_id={bank}&{period}"))


def pdf_text(answer) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.data)).pages)


def kept(world) -> dict:
    """What a refused close must leave as it was: the ledger's rows, the org's periods and the frozen reports."""
    with world.db.read() as session:
        return {**snapshot(world.db),
                "periods": session.scalar(select(func.count()).select_from(Period)
                                          .where(Period.organisation_id == world.org)),
                "closes": session.scalar(select(func.count()).select_from(ReconciliationClose))}


def test_a_month_that_does_not_reconcile_is_refused_naming_the_amount_and_nothing_is_written(world):
    bank = october(world, MISSTATED)
    cash = account(world, "1001")
    before = kept(world)

    unexplained = close(world, bank)
    no_statement = close(world, cash)
    not_ended = close(world, bank, month=11)

    assert unexplained.status_code == 409 and unexplained.json["code"] == "invalid_state"
    assert "CNY 100.00" in unexplained.json["detail"] and "unexplained" in unexplained.json["detail"]
    assert list(unexplained.json["errors"]) == ["month"]
    assert no_statement.status_code == 409 and list(no_statement.json["errors"]) == ["account_id"]
    assert "closing balance" in no_statement.json["detail"]
    assert not_ended.status_code == 422 and list(not_ended.json["errors"]) == ["month"]
    assert kept(world) == before
    assert report(world, bank).json["frozen"] is False and report(world, bank).json["unexplained_minor"] == 10_000


def test_a_reconciled_month_closes_and_its_report_stays_frozen_until_reopened(world):
    bank = october(world)
    live = report(world, bank).json

    closed = close(world, bank)
    frozen = report(world, bank)
    late_entry = world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": 7_000, "currency": "CNY", "channel": "bank",
        "received_on": "2026-10-30"}, key=uuid.uuid4().hex)

    assert closed.status_code == 201, closed.json
    assert closed.json["frozen"] is True and closed.json["version"] == 1 and len(closed.json["sha256"]) == 64
    assert closed.json["closed_at"] and closed.json["reconciled"] is True
    assert {key: value for key, value in closed.json.items() if key not in ("frozen", "closed_at", "sha256",
                                                                            "version")} == \
        {key: value for key, value in live.items() if key not in ("frozen", "closed_at", "sha256", "version")}
    assert frozen.json == closed.json
    assert late_entry.status_code == 422 and late_entry.json["code"] == "period_closed"  # the ledger's month too

    matched = world.db.write(lambda session: first_match(session, bank))
    assert world.call("org_admin", "POST", world.url(f"/reconciliation/matches/{matched['id']}/unmatch"),
                      {}).status_code == 200
    assert upload(world, "org_admin", LATE_GIFT.encode(), "oct-late.csv", account_id=bank, format="csv",
                  mapping="plain").status_code == 201
    assert gift(world, 9_900, "2026-11-02")  # (an entry after the month: the books go on)

    assert report(world, bank).get_data() == frozen.get_data()  # byte for byte
    part = report(world, bank, "start=2026-10-01&end=2026-10-30").json  # not the whole month: live
    assert part["frozen"] is False and part["bank_closing_minor"] == 1_273_530

    assert world.call("org_admin", "POST", world.url("/periods/2026/10/reopen"), {},
                      key=uuid.uuid4().hex).status_code == 200
    reopened = report(world, bank).json
    again = close(world, bank)
    still = close(world, bank)  # (closed already: the same frozen report, no new version)

    assert reopened["frozen"] is False and reopened["closed_at"] is None and reopened["sha256"] is None
    assert reopened["bank_closing_minor"] == 1_273_530 and len(reopened["unmatched_lines"]) > 1
    assert again.status_code == 201 and again.json["version"] == 2 and again.json["frozen"] is True
    assert again.json["sha256"] != closed.json["sha256"] and again.json["bank_closing_minor"] == 1_273_530
    assert still.status_code == 201 and still.json == again.json
    assert report(world, bank).json == again.json


def test_the_frozen_reports_cannot_be_changed_by_the_code_or_by_the_database(world):
    bank = october(world)
    assert close(world, bank).status_code == 201
    with world.db.read() as session:
        row_id = session.scalars(select(ReconciliationClose.id).where(ReconciliationClose.account_id == bank)).one()

    for statement in ("UPDATE reconciliation_closes SET report = '{}' WHERE id = :id",
                      "UPDATE reconciliation_closes SET version = 7 WHERE id = :id",
                      "DELETE FROM reconciliation_closes WHERE id = :id"):
        with pytest.raises(DBAPIError, match="append-only"), world.db.engine.begin() as connection:
            connection.execute(text(statement), {"id": row_id})
    if world.db.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), world.db.engine.begin() as connection:
            connection.execute(text("TRUNCATE reconciliation_closes"))

    def change(session):
        session.get(ReconciliationClose, row_id).closed_by = "someone else"
        session.flush()

    def forget(session):
        session.delete(session.get(ReconciliationClose, row_id))
        session.flush()

    for work in (change, forget):
        with pytest.raises(InvalidState, match="never changed"):
            world.db.write(work)
    assert report(world, bank).json["frozen"] is True


def test_the_report_as_a_pdf_gives_its_figures_and_the_same_bytes_each_time(world):
    bank = october(world)
    live, live_again = pdf(world, bank), pdf(world, bank)
    assert close(world, bank).status_code == 201
    frozen, frozen_again = pdf(world, bank), pdf(world, bank)
    sha = report(world, bank).json["sha256"]

    assert live.status_code == 200 and live.mimetype == "application/pdf"
    assert live.data == live_again.data and frozen.data == frozen_again.data and frozen.data != live.data
    words = pdf_text(frozen)
    for figure in ("¥12,235.30", "¥12,750.30", "-¥15.00", "¥500.00", "¥0.00", "1002", "2026-10-01", "2026-10-31",
                   "Bank statement balance", "银行对账单余额", "Unexplained remainder", "是 Yes", sha):
        assert figure in words, figure
    with world.db.read() as session:
        assert session.scalar(text("SELECT name FROM organisations WHERE id = :id"), {"id": world.org}) in words
    assert "Closed at" in words and "Closed at" not in pdf_text(live)


def test_a_month_not_reconciled_reads_no_in_its_pdf(world):
    bank = october(world, MISSTATED)

    words = pdf_text(pdf(world, bank))

    assert "否 No" in words and "¥100.00" in words and "Not closed" in words


def test_the_console_closes_a_reconciled_month(world):
    bank = october(world)
    runner = world.app.test_cli_runner()

    refused = runner.invoke(args=["reconcile", "close", "--organisation", str(world.org), "--account", str(bank),
                                  "--month", "2026-11"])
    done = runner.invoke(args=["reconcile", "close", "--organisation", str(world.org), "--account", str(bank),
                               "--month", "2026-10"])

    assert refused.exit_code != 0 and "has not ended" in refused.output
    assert done.exit_code == 0, done.output
    assert "2026-10 closed as reconciled (version 1" in done.output
    assert report(world, bank).json["sha256"] in done.output
