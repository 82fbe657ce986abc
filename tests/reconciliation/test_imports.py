"""Statements imported for an account of money from the console: every line once, however often or overlapping the
statements come; a bad file or a wrong account imports nothing and says why."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import func, select

from ledger.db.models import BankStatement, StatementLine
from tests.reconciliation.test_statements import SAMPLES


def account(world, code: str) -> int:
    return next(row["id"] for row in world.call("auditor", "GET", world.url("/accounts")).json if row["code"] == code)


def counts(world) -> tuple[int, int]:
    with world.db.read() as session:
        return (session.scalar(select(func.count()).select_from(BankStatement)),
                session.scalar(select(func.count()).select_from(StatementLine)))


def run_import(world, path: Path, account_id: int, *options: str):
    return world.app.test_cli_runner().invoke(args=["reconcile", "import", str(path), "--organisation",
                                                    str(world.org), "--account", str(account_id), *options])


def test_a_statement_imported_again_or_overlapping_adds_only_what_is_new(world, tmp_path):
    bank = account(world, "1002")
    text = (SAMPLES / "icbc-2026-10.gbk.csv").read_bytes().decode("gbk")
    overlapping = tmp_path / "icbc-2026-10b.csv"  # its last two lines again, and one more, in UTF-8 this time
    head, *lines = [row for row in text.splitlines() if row.startswith(("交易日期", "2026"))]
    overlapping.write_text("\n".join([head, *lines[-2:], "2026-11-02,HX20261102006,转账收入,捐赠,,50.00,,李娜"]))

    first = run_import(world, SAMPLES / "icbc-2026-10.gbk.csv", bank)
    again = run_import(world, SAMPLES / "icbc-2026-10.gbk.csv", bank)
    later = run_import(world, overlapping, bank)

    assert first.exit_code == 0 and "5 new line(s), 0 already imported" in first.output, first.output
    assert again.exit_code == 0 and "0 new line(s), 5 already imported" in again.output
    assert later.exit_code == 0 and "1 new line(s), 2 already imported" in later.output
    with world.db.read() as session:
        amounts = sorted(session.scalars(select(StatementLine.amount_minor).where(StatementLine.account_id == bank)))
    assert amounts == sorted([100_000, 880_000, -1_500, 245_030, 1_234, 5_000])


def test_lines_without_the_banks_ids_are_told_apart_by_their_place_among_twins(world, tmp_path):
    bank = account(world, "1002")
    twins = tmp_path / "twins.csv"  # two identical gifts the same day: both are lines
    twins.write_text("date,amount,reference\n2026-10-01,10.00,gift\n2026-10-01,10.00,gift\n")

    first = run_import(world, twins, bank, "--mapping", "generic")
    again = run_import(world, twins, bank, "--mapping", "generic")

    assert "2 new line(s)" in first.output and "0 new line(s), 2 already imported" in again.output


def test_a_bad_file_or_account_imports_nothing_and_says_why(world, tmp_path):
    bank, revenue = account(world, "1002"), account(world, "4101")
    broken = tmp_path / "broken.csv"
    broken.write_text("交易日期,借方发生额,贷方发生额\n2026-10-01,,5.00\n2026-10-02,,five\n")
    before = counts(world)

    bad_line = run_import(world, broken, bank)
    not_money = run_import(world, SAMPLES / "icbc-2026-10.gbk.csv", revenue)
    no_such = run_import(world, SAMPLES / "icbc-2026-10.gbk.csv", 999_999)

    assert bad_line.exit_code == 2 and "broken.csv, line 3: “five” is not an amount" in bad_line.output
    assert not_money.exit_code == 2 and "account_id" in not_money.output and "account of money" in not_money.output
    assert no_such.exit_code == 2 and "does not exist" in no_such.output
    assert counts(world) == before  # the good first line of the broken file is not kept either


def upload(world, role: str, content: bytes, filename: str, **form):
    return world.app.test_client().post(
        world.url("/statements"), headers={"Authorization": f"Bearer {world.tokens[role]}"},
        content_type="multipart/form-data", data={**{key: str(value) for key, value in form.items()},
                                                  "file": (io.BytesIO(content), filename)})


def test_a_statement_is_uploaded_through_the_api_with_a_saved_layout(world):
    bank = account(world, "1002")
    saved = world.call("org_admin", "PUT", world.url("/statement-mappings/icbc"), {
        "date": "交易日期", "debit": "借方发生额", "credit": "贷方发生额", "counterparty": "对方户名",
        "bank_id": "交易流水号"})
    content = (SAMPLES / "icbc-2026-10.gbk.csv").read_bytes()

    first = upload(world, "org_admin", content, "icbc.csv", account_id=bank, format="csv", mapping="icbc")
    again = upload(world, "org_admin", content, "icbc.csv", account_id=bank, format="csv", mapping="icbc")
    lines = world.call("auditor", "GET", world.url(f"/statement-lines?account_id={bank}")).json["items"]
    layouts = {row["name"] for row in world.call("fund_manager", "GET", world.url("/statement-mappings")).json}

    assert saved.status_code == 200 and {"cn_bank", "generic", "icbc"} <= layouts
    assert first.status_code == 201, first.json
    assert (first.json["line_count"], first.json["new_line_count"]) == (5, 5)
    assert (again.json["line_count"], again.json["new_line_count"]) == (5, 0)
    assert [(line["amount_minor"], line["counterparty"]) for line in lines][:2] == [
        (100_000, "张伟"), (880_000, "成都锦城科技有限公司")]


def test_a_refused_upload_names_the_file_and_line_and_writes_nothing(world):
    bank = account(world, "1002")
    before = counts(world)

    bad = upload(world, "org_admin", "交易日期,借方发生额,贷方发生额\n2026-10-01,,x\n".encode("gbk"), "bad.csv",
                 account_id=bank, format="csv")
    manager = upload(world, "fund_manager", b"date,amount\n2026-10-01,1.00\n", "x.csv", account_id=bank,
                     format="csv", mapping="generic")
    unknown = upload(world, "org_admin", b"x", "x.csv", account_id=bank, format="csv", mapping="no-such-bank")
    hostile = upload(world, "org_admin", b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
                     "h.xml", account_id=bank, format="camt053")

    assert bad.status_code == 422 and bad.json["errors"] == {"file": ["bad.csv, line 2: “x” is not an amount"]}
    assert manager.status_code == 403 and unknown.status_code == 404 and "mapping" in unknown.json["errors"]
    assert hostile.status_code == 422 and "document type" in hostile.json["detail"]
    assert counts(world) == before


def test_the_console_matches_what_is_unambiguous(world, tmp_path):
    bank = account(world, "1002")
    world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": 100_000, "currency": "CNY", "channel": "bank",
        "received_on": "2026-10-03"}, key="console-gift")
    run_import(world, SAMPLES / "icbc-2026-10.gbk.csv", bank)

    matched = world.app.test_cli_runner().invoke(args=["reconcile", "auto-match", "--organisation", str(world.org),
                                                       "--account", str(bank)])

    assert matched.exit_code == 0 and "1 match(es): 1 line(s) to 1 entr(ies) (1 one to one)" in matched.output
