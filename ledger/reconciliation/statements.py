"""Bank statements read into lines, from the files banks give: CSV (any column layout, by a mapping; UTF-8, GBK or
GB18030; dates and amounts as Chinese banks write them), OFX (through ofxtools) and ISO 20022 camt.053 (through
defusedxml: no entities, no external references). Pure: bytes in, a ``Statement`` out, or a ``StatementUnreadable``
naming the file and the line.

A line's amount is signed, in minor units: money into the account positive, money out negative.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import partial

from defusedxml import ElementTree as SafeTree
from defusedxml.common import DefusedXmlException

from ledger.core.errors import InvalidInput
from ledger.core.money import currency_exponent

MAX_STATEMENT_BYTES = 64 * 1024 * 1024
ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 reads GBK and GB2312 too
TOTALS = ("合计", "总计", "本页合计", "累计", "Total", "TOTAL")  # a bank's totals rows under the lines
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日", "%d/%m/%Y")


class StatementUnreadable(InvalidInput):
    """A statement file that cannot be read: the message names the file and, where there is one, the line."""


@dataclass(frozen=True, slots=True)
class StatementLine:
    line: int  # where it is in the file (a CSV row, an OFX or camt entry's ordinal), for errors and for people
    booked_on: dt.date
    amount_minor: int
    currency: str
    reference: str = ""
    counterparty: str = ""
    description: str = ""
    bank_id: str = ""  # the bank's own id of the transaction, when it gives one


@dataclass(frozen=True, slots=True)
class Statement:
    lines: tuple[StatementLine, ...]
    currency: str
    account: str = ""  # the account's number as the file gives it
    opening_minor: int | None = None
    closing_minor: int | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """How one bank's CSV export is laid out: which column holds what (by its header's text), and how it writes
    dates. ``amount``: one signed column; or ``debit`` (借方, money out) and ``credit`` (贷方, money in)."""

    date: str
    amount: str = ""
    debit: str = ""
    credit: str = ""
    reference: str = ""
    counterparty: str = ""
    description: str = ""
    bank_id: str = ""
    balance: str = ""
    date_format: str = ""
    delimiter: str = ","
    currency: str = "CNY"  # "": the books' (``read_statement`` is told which)
    extra: Mapping[str, str] = field(default_factory=dict)

    def required(self) -> list[str]:
        return [self.date, *([self.amount] if self.amount else [self.debit, self.credit])]


# A common layout of Chinese banks' account statements (对账单/交易明细): a preamble, then this header row.
CN_BANK = CsvMapping(date="交易日期", debit="借方发生额", credit="贷方发生额", counterparty="对方户名",
                     description="摘要", reference="用途", bank_id="交易流水号", balance="余额")
PRESETS = {"cn_bank": CN_BANK,
           "generic": CsvMapping(date="date", amount="amount", reference="reference", counterparty="counterparty",
                                 description="description", bank_id="id", currency="")}


def _unreadable(filename: str, what: str, line: int | None = None) -> StatementUnreadable:
    where = f"{filename}, line {line}" if line is not None else filename
    return StatementUnreadable(f"{where}: {what}", field="file")


def _checked_size(filename: str, content: bytes) -> None:
    if len(content) > MAX_STATEMENT_BYTES:
        raise _unreadable(filename, f"larger than {MAX_STATEMENT_BYTES // (1024 * 1024)} MB")
    if not content.strip():
        raise _unreadable(filename, "empty")


def decoded(filename: str, content: bytes) -> str:
    """The file's text: UTF-8 (with or without its mark), else GB18030 (which reads GBK); neither is an error."""
    for encoding in ENCODINGS:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _unreadable(filename, "neither UTF-8 nor GBK/GB18030 text")


def amount_minor(text: str, currency: str) -> int:
    """An amount as a bank writes it (全角 digits, thousands separators, a currency sign, a minus or brackets) in
    minor units, exactly; more decimals than the currency has is an error."""
    plain = unicodedata.normalize("NFKC", text).strip().replace(",", "").replace(" ", "")
    plain = re.sub(r"^(?:[¥￥$€£]|CNY|RMB|USD|EUR|GBP|CAD)", "", plain)
    negative = plain.startswith("(") and plain.endswith(")")
    plain = plain.strip("()")
    try:
        value = Decimal(plain)
    except InvalidOperation as error:
        raise ValueError(f"“{text}” is not an amount") from error
    exponent = currency_exponent(currency)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"“{text}” has more than {exponent} decimals")
    return -int(minor) if negative else int(minor)


def date_of(text: str, fmt: str = "") -> dt.date:
    plain = unicodedata.normalize("NFKC", text).strip()
    plain = plain.split(" ")[0].split("T")[0] if not fmt else plain
    for candidate in ((fmt,) if fmt else DATE_FORMATS):
        try:
            return dt.datetime.strptime(plain, candidate).date()
        except ValueError:
            continue
    raise ValueError(f"“{text}” is not a date")


def read_csv(filename: str, content: bytes, mapping: CsvMapping) -> Statement:
    """A CSV export: the header row is the first whose cells hold every column the mapping requires (a bank's
    preamble above it, its totals below the lines, are passed over)."""
    _checked_size(filename, content)
    rows = csv.reader(io.StringIO(decoded(filename, content)), delimiter=mapping.delimiter)
    header, start = _header(filename, rows, mapping)
    lines, balances = [], []
    for number, row in enumerate(rows, start=start + 1):
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        if not cells.get(mapping.date) or cells[mapping.date].startswith(TOTALS):
            continue  # a totals or signature row under the lines
        lines.append(_csv_line(filename, number, cells, mapping))
        if cells.get(mapping.balance):
            balances.append((lines[-1], _balance(filename, number, cells[mapping.balance], mapping.currency)))
    if not lines:
        raise _unreadable(filename, "no transactions under the header row")
    return _with_period(Statement(tuple(lines), mapping.currency, *_opening_and_closing(balances)))


def _balance(filename: str, number: int, text: str, currency: str) -> int:
    try:
        return amount_minor(text, currency)
    except ValueError as error:
        raise _unreadable(filename, str(error), number) from error


def _opening_and_closing(balances: list[tuple[StatementLine, int]]) -> tuple[str, int | None, int | None]:
    """The balance before the earliest line and after the latest (a bank lists its lines oldest or newest first)."""
    if not balances:
        return "", None, None
    earliest = min(balances, key=lambda pair: (pair[0].booked_on, pair[0].line))
    latest = max(balances, key=lambda pair: (pair[0].booked_on, pair[0].line))
    return "", earliest[1] - earliest[0].amount_minor, latest[1]


def _header(filename: str, rows: Iterator[list[str]], mapping: CsvMapping) -> tuple[list[str], int]:
    wanted = [name for name in mapping.required() if name]
    for number, row in enumerate(rows, start=1):
        cells = [unicodedata.normalize("NFKC", cell).strip() for cell in row]
        if all(name in cells for name in wanted):
            return cells, number
        if number >= 50:
            break
    raise _unreadable(filename, f"no header row with the columns {', '.join(wanted)} in its first 50 lines")


def _csv_line(filename: str, number: int, cells: dict[str, str], mapping: CsvMapping) -> StatementLine:
    try:
        booked_on = date_of(cells[mapping.date], mapping.date_format)
        if mapping.amount:
            amount = amount_minor(cells.get(mapping.amount, ""), mapping.currency)
        else:
            out = cells.get(mapping.debit, "") or "0"
            into = cells.get(mapping.credit, "") or "0"
            amount = amount_minor(into, mapping.currency) - amount_minor(out, mapping.currency)
    except (ValueError, KeyError) as error:
        raise _unreadable(filename, str(error), number) from error
    if amount == 0:
        raise _unreadable(filename, "a transaction of nothing", number)
    return StatementLine(number, booked_on, amount, mapping.currency, cells.get(mapping.reference, "")[:200],
                         cells.get(mapping.counterparty, "")[:200], cells.get(mapping.description, "")[:500],
                         cells.get(mapping.bank_id, "")[:100])


def _with_period(statement: Statement) -> Statement:
    days = [line.booked_on for line in statement.lines]
    return Statement(statement.lines, statement.currency, statement.account, statement.opening_minor,
                     statement.closing_minor, statement.period_start or min(days), statement.period_end or max(days))


def _refuse_document_types(filename: str, content: bytes) -> None:
    # Neither format needs a DTD; one in the file can only be an entity bomb or an external reference.
    if re.search(rb"<!(?:DOCTYPE|ENTITY)", content[:65536], re.IGNORECASE):
        raise _unreadable(filename, "declares a document type or entities, which a statement never needs")


def read_ofx(filename: str, content: bytes) -> Statement:
    """An OFX file (1.x SGML or 2.x XML), read by ofxtools: its first bank or card statement."""
    from ofxtools.Parser import OFXTree  # (imported here: only an OFX import needs it)

    _checked_size(filename, content)
    _refuse_document_types(filename, content)
    parser = OFXTree()
    try:
        parser.parse(io.BytesIO(content))
        ofx = parser.convert()
        found = ofx.statements[0]
    except Exception as error:  # ofxtools raises many kinds; each means the file is not readable OFX
        raise _unreadable(filename, f"not readable OFX ({type(error).__name__}: {error})") from error
    currency = str(found.curdef)
    lines = [StatementLine(number, transaction.dtposted.date(), amount_minor(str(transaction.trnamt), currency),
                           currency, str(transaction.checknum or transaction.refnum or "")[:200],
                           str(transaction.name or getattr(transaction, "payee", "") or "")[:200],
                           str(transaction.memo or "")[:500], str(transaction.fitid or "")[:100])
             for number, transaction in enumerate(found.banktranlist, start=1)]
    if not lines:
        raise _unreadable(filename, "no transactions")
    closing = amount_minor(str(found.ledgerbal.balamt), currency) if found.ledgerbal is not None else None
    account = getattr(found.account, "acctid", "") or ""
    return _with_period(Statement(tuple(lines), currency, str(account), None, closing,
                                  found.banktranlist.dtstart.date(), found.banktranlist.dtend.date()))


def read_camt053(filename: str, content: bytes) -> Statement:
    """An ISO 20022 camt.053 bank-to-customer statement (any version): its first ``Stmt``."""
    _checked_size(filename, content)
    _refuse_document_types(filename, content)
    try:
        root = SafeTree.fromstring(content, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (SafeTree.ParseError, DefusedXmlException) as error:
        raise _unreadable(filename, f"not well-formed XML ({error})", getattr(error, "position", (None,))[0]) \
            from error
    namespace = root.tag.partition("}")[0] + "}" if root.tag.startswith("{") else ""
    if "camt.053" not in namespace:
        raise _unreadable(filename, "not a camt.053 statement (its namespace is not camt.053's)")
    statement = root.find(f".//{namespace}Stmt")
    if statement is None:
        raise _unreadable(filename, "no Stmt element")
    return _camt_statement(filename, statement, namespace)


def _text(element, path: str, ns: str) -> str:
    """The text at a path of camt element names (``Acct/Id/IBAN``), in the document's namespace; '' if absent."""
    found = element.find("/".join(f"{ns}{part}" for part in path.split("/")))
    return (found.text or "").strip() if found is not None else ""


def _camt_statement(filename: str, statement, ns: str) -> Statement:
    text = partial(_text, ns=ns)

    account = text(statement, "Acct/Id/IBAN") or text(statement, "Acct/Id/Othr/Id")
    balances = {}
    for balance in statement.findall(f"{ns}Bal"):
        kind = text(balance, "Tp/CdOrPrtry/Cd")
        amount = balance.find(f"{ns}Amt")
        if amount is None:
            continue
        sign = -1 if text(balance, "CdtDbtInd") == "DBIT" else 1
        balances[kind] = sign * amount_minor(amount.text or "", amount.get("Ccy", "CNY"))
    lines, currency = [], None
    for number, entry in enumerate(statement.findall(f"{ns}Ntry"), start=1):
        line = _camt_line(filename, number, entry, text, ns)
        currency = currency or line.currency
        lines.append(line)
    if not lines:
        raise _unreadable(filename, "no Ntry entries")
    return _with_period(Statement(tuple(lines), currency, account, balances.get("OPBD", balances.get("PRCD")),
                                  balances.get("CLBD")))


def _camt_line(filename: str, number: int, entry, text, ns: str) -> StatementLine:
    amount = entry.find(f"{ns}Amt")
    try:
        if amount is None:
            raise ValueError("no Amt")
        currency = amount.get("Ccy", "")
        value = amount_minor(amount.text or "", currency)
        sign = {"CRDT": 1, "DBIT": -1}.get(text(entry, "CdtDbtInd"))
        if sign is None:
            raise ValueError("CdtDbtInd is neither CRDT nor DBIT")
        booked_on = date_of(text(entry, "BookgDt/Dt") or text(entry, "BookgDt/DtTm") or text(entry, "ValDt/Dt"))
    except ValueError as error:
        raise _unreadable(filename, f"entry {number}: {error}") from error
    counterparty = text(entry, "NtryDtls/TxDtls/RltdPties/Dbtr/Nm") if sign > 0 else \
        text(entry, "NtryDtls/TxDtls/RltdPties/Cdtr/Nm")
    reference = text(entry, "NtryDtls/TxDtls/Refs/EndToEndId") or text(entry, "NtryDtls/TxDtls/RmtInf/Ustrd")
    return StatementLine(number, booked_on, sign * value, currency, reference[:200], counterparty[:200],
                         (text(entry, "AddtlNtryInf") or text(entry, "NtryDtls/TxDtls/RmtInf/Ustrd"))[:500],
                         (text(entry, "AcctSvcrRef") or text(entry, "NtryRef"))[:100])


def read_statement(filename: str, content: bytes, file_format: str, mapping: CsvMapping | None = None,
                   books_currency: str = "CNY") -> Statement:
    """The statement in the file, by its format: ``csv`` (with a mapping; a mapping that names no currency reads the
    books'), ``ofx`` or ``camt053``."""
    if file_format == "csv":
        mapping = mapping or PRESETS["generic"]
        return read_csv(filename, content, mapping if mapping.currency else replace(mapping, currency=books_currency))
    if file_format == "ofx":
        return read_ofx(filename, content)
    if file_format == "camt053":
        return read_camt053(filename, content)
    raise InvalidInput("must be csv, ofx or camt053", field="format")
