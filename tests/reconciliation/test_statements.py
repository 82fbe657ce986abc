"""Bank statements read from the files banks give: a GBK-encoded CSV in a common Chinese bank export layout (a
preamble, 借/贷 columns, 全角 digits, thousands separators, four ways of writing a date, a totals row), an OFX file
and a camt.053 file, each with its expected lines; and bad files refused with the file and the line named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ledger.reconciliation import statements
from ledger.reconciliation.statements import CN_BANK, CsvMapping, StatementUnreadable, amount_minor, read_statement

SAMPLES = Path(__file__).resolve().parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_a_chinese_banks_gbk_export_is_read_with_its_preamble_and_totals_passed_over():
    statement = read_statement("icbc-2026-10.gbk.csv", sample("icbc-2026-10.gbk.csv"), "csv", CN_BANK)

    assert [(line.line, line.booked_on.day, line.amount_minor, line.counterparty) for line in statement.lines] == [
        (6, 3, 100_000, "张伟"), (7, 8, 880_000, "成都锦城科技有限公司"), (8, 10, -1_500, "中国工商银行"),
        (9, 20, 245_030, "STRIPE PAYMENTS UK LTD"), (10, 31, 1_234, "中国工商银行")]
    assert statement.lines[0].bank_id == "HX20261003001" and statement.lines[0].reference == "捐赠 玉林社区基金"
    assert (statement.period_start, statement.period_end) == (dt.date(2026, 10, 3), dt.date(2026, 10, 31))
    assert sum(line.amount_minor for line in statement.lines) == 1_226_264 - 1_500  # the totals row: 12,262.64 in


def test_an_ofx_statement_is_read_through_ofxtools():
    statement = read_statement("us.ofx", sample("us-bank-2026-10.ofx"), "ofx")

    assert statement.currency == "USD" and statement.account == "987654321"
    assert [(line.booked_on, line.amount_minor, line.bank_id, line.counterparty) for line in statement.lines] == [
        (dt.date(2026, 10, 5), 25_000, "2026100501", "JANE DOE"),
        (dt.date(2026, 10, 12), 123_456, "2026101202", "STRIPE TRANSFER"),
        (dt.date(2026, 10, 20), -50_000, "2026102003", "Riverside Shelter"),
        (dt.date(2026, 10, 31), -1_200, "2026103104", "BANK FEE")]
    assert statement.closing_minor == 1_097_256
    assert (statement.period_start, statement.period_end) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


def test_a_camt_053_statement_is_read_with_its_balances():
    statement = read_statement("uk.xml", sample("uk-bank-2026-10.camt053.xml"), "camt053")

    assert statement.account == "GB33BUKB20201555555555" and statement.currency == "GBP"
    assert (statement.opening_minor, statement.closing_minor) == (500_000, 523_050)
    assert [(line.amount_minor, line.counterparty, line.reference, line.bank_id) for line in statement.lines] == [
        (30_000, "Alice Smith", "GIFT-ALICE-1", "BUKB-0001"), (-6_950, "Print Co Ltd", "INV-332", "BUKB-0002")]
    assert statement.opening_minor + sum(line.amount_minor for line in statement.lines) == statement.closing_minor


@pytest.mark.parametrize(("text", "minor"), [
    ("1,234.50", 123_450), ("１，２３４．５０", 123_450), ("¥88", 8_800), ("-12.30", -1_230), ("(7.00)", -700),
    ("CNY 1 000.01", 100_001)])
def test_amounts_as_banks_write_them(text, minor):
    assert amount_minor(text, "CNY") == minor


@pytest.mark.parametrize("text", ["1.234", "abc", "", "1,2x"])
def test_what_is_not_an_amount_in_fen_is_refused(text):
    with pytest.raises(ValueError):
        amount_minor(text, "CNY")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>&lol2;</Stmt></BkToCstmrStmt>
</Document>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&e;</Document>"""


@pytest.mark.parametrize(("name", "content", "file_format", "mapping", "says"), [
    ("latin.csv", b"\xff\xfe\xff\xff date", "csv", CN_BANK, "neither UTF-8 nor GBK"),
    ("short.csv", "交易日期,摘要\n2026-10-01,x\n".encode("gbk"), "csv", CN_BANK, "no header row with the columns"),
    ("bad-date.csv", "交易日期,借方发生额,贷方发生额\n2026-13-40,,5.00\n".encode(), "csv", CN_BANK,
     "bad-date.csv, line 2: “2026-13-40” is not a date"),
    ("bad-amount.csv", "交易日期,借方发生额,贷方发生额\n2026-10-01,,5.001\n".encode(), "csv", CN_BANK,
     "bad-amount.csv, line 2: “5.001” has more than 2 decimals"),
    ("bomb.xml", BILLION_LAUGHS, "camt053", None, "declares a document type"),
    ("external.xml", EXTERNAL, "camt053", None, "declares a document type"),
    ("broken.xml", b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><Stmt>", "camt053", None,
     "broken.xml, line 1: not well-formed XML"),
    ("other.xml", b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'/>", "camt053", None,
     "not a camt.053 statement"),
    ("broken.ofx", b"OFXHEADER:100\nDATA:OFXSGML\n\n<OFX><BANKMSGSRSV1>", "ofx", None, "not readable OFX"),
    ("empty.ofx", b"   ", "ofx", None, "empty"),
])
def test_a_bad_file_is_refused_naming_the_file_and_line(name, content, file_format, mapping, says):
    with pytest.raises(StatementUnreadable) as refused:
        read_statement(name, content, file_format, mapping)

    assert says in str(refused.value) and name in str(refused.value) and refused.value.field == "file"


def test_an_oversized_file_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setattr(statements, "MAX_STATEMENT_BYTES", 100)

    with pytest.raises(StatementUnreadable, match=r"big\.csv: larger than"):
        read_statement("big.csv", b"date,amount\n" + b"2026-10-01,1.00\n" * 20, "csv",
                       CsvMapping(date="date", amount="amount"))
