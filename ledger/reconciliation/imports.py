"""A bank statement's lines brought into the books' reconciliation, all or nothing, each line once per account.

The statement is read (``ledger.reconciliation.statements``), its account must be one of the organisation's
accounts of money (bank, cash or a processor's clearing account), and every line gets a fingerprint: the bank's own
id of the transaction when the file gives one, else a digest of its date, amount, currency, texts and its place
among identical lines of that day in the file. A line whose fingerprint the account already has is not added
again, so the same statement, or one overlapping an earlier one, adds only what is new. Everything happens in the
caller's transaction: a refusal anywhere leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.organisations import get_organisation
from ledger.core.chart import Role
from ledger.core.errors import InvalidInput, NotFound
from ledger.core.money import currency_exponent
from ledger.db.listing import Page, keyset_page
from ledger.db.models import BankStatement, StatementLine
from ledger.db.types import utc_now
from ledger.reconciliation.statements import CsvMapping, Statement, read_statement

MONEY_ROLES = (Role.BANK, Role.CASH, Role.PROCESSOR_CLEARING)
CHUNK = 2_000


@dataclass(frozen=True, slots=True)
class Imported:
    statement: BankStatement
    new_lines: int
    known_lines: int


def fingerprints(statement: Statement) -> list[str]:
    """Each line's fingerprint, in order (see the module's docstring)."""
    seen: dict[tuple, int] = {}
    prints = []
    for line in statement.lines:
        if line.bank_id:
            prints.append(f"id:{line.bank_id}"[:100])
            continue
        says = (line.booked_on.isoformat(), str(line.amount_minor), line.currency, line.reference, line.counterparty,
                line.description)
        seen[says] = seen.get(says, 0) + 1
        digest = hashlib.sha256("\x1f".join([*says, str(seen[says])]).encode()).hexdigest()
        prints.append(f"sha:{digest}")
    return prints


def money_account(session: Session, organisation_id: int, account_id: int) -> None:
    chart = load_chart(session, organisation_id)
    if not any(account_id in chart.by_role.get(role, ()) for role in MONEY_ROLES):
        if account_id not in chart.by_code.values():
            raise NotFound(f"account {account_id} does not exist", field="account_id")
        raise InvalidInput("must be an account of money: a bank, cash or a processor's clearing account",
                           field="account_id")


def import_statement(session: Session, organisation_id: int, account_id: int, *, filename: str, content: bytes,
                     file_format: str, mapping: CsvMapping | None, imported_by: str,
                     progress: Callable[[int], None] = lambda _done: None) -> Imported:
    """Reads the file and records its statement and its new lines (``progress`` hears how many lines are done)."""
    money_account(session, organisation_id, account_id)
    books = get_organisation(session, organisation_id).base_currency
    statement = read_statement(filename, content, file_format, mapping, books)
    currency_exponent(statement.currency)  # (a currency the ledger does not know is refused here)
    _in_the_books_currency(filename, statement, books)
    prints = fingerprints(statement)
    known = _known(session, account_id, prints)
    record = BankStatement(
        organisation_id=organisation_id, account_id=account_id, currency=statement.currency, format=file_format,
        filename=filename[:300], sha256=hashlib.sha256(content).hexdigest(), bank_account=statement.account[:100],
        period_start=statement.period_start, period_end=statement.period_end, opening_minor=statement.opening_minor,
        closing_minor=statement.closing_minor, line_count=len(prints), new_line_count=0, imported_at=utc_now(),
        imported_by=imported_by)
    fresh = [(line, fingerprint) for line, fingerprint in zip(statement.lines, prints, strict=True)
             if fingerprint not in known]
    record.new_line_count = len({fingerprint for _, fingerprint in fresh})
    session.add(record)
    session.flush()
    _insert_lines(session, record, fresh, progress)
    return Imported(record, record.new_line_count, len(prints) - len(fresh))


def _in_the_books_currency(filename: str, statement: Statement, books: str) -> None:
    """A statement is reconciled against the books in their currency: one in another currency (a foreign-currency
    account) would be compared amount for amount with money it is not, so it is refused."""
    foreign = next((line.currency for line in statement.lines if line.currency != books), None)
    if statement.currency != books or foreign is not None:
        raise InvalidInput(f"{filename}: the statement is in {foreign or statement.currency}, the books in {books}; "
                           f"only statements in {books} are reconciled here", field="file")


def _known(session: Session, account_id: int, prints: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(prints), CHUNK):
        known.update(session.scalars(select(StatementLine.fingerprint).where(
            StatementLine.account_id == account_id, StatementLine.fingerprint.in_(prints[start:start + CHUNK]))))
    return known


def _insert_lines(session: Session, record: BankStatement, fresh: Iterable, progress: Callable[[int], None]) -> None:
    rows, done, taken = [], 0, set()
    for line, fingerprint in fresh:
        if fingerprint in taken:  # the bank's id twice in one file: the line is the same transaction
            continue
        taken.add(fingerprint)
        rows.append({"organisation_id": record.organisation_id, "account_id": record.account_id,
                     "statement_id": record.id, "booked_on": line.booked_on, "amount_minor": line.amount_minor,
                     "currency": line.currency, "reference": line.reference, "counterparty": line.counterparty,
                     "description": line.description, "bank_id": line.bank_id, "fingerprint": fingerprint})
        if len(rows) == CHUNK:
            session.execute(insert(StatementLine), rows)
            done += len(rows)
            progress(done)
            rows = []
    if rows:
        session.execute(insert(StatementLine), rows)
        progress(done + len(rows))


def list_statements(session: Session, organisation_id: int, *, after: int | None, limit: int) -> Page:
    return keyset_page(session, select(BankStatement).where(BankStatement.organisation_id == organisation_id),
                       BankStatement.id, after, limit)


def statement_lines(session: Session, organisation_id: int, account_id: int, *, after: int | None,
                    limit: int) -> Page:
    return keyset_page(session, select(StatementLine).where(StatementLine.organisation_id == organisation_id,
                                                            StatementLine.account_id == account_id),
                       StatementLine.id, after, limit)
