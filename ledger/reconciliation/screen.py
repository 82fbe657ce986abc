"""What the manager's reconciliation screen reads besides the report: the accounts of money to reconcile, the period
to show first, the matches standing on an account with what they hold, and the choices of the "record in the books"
form (funds, and the accounts a fee or interest may go to)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.books.organisations import get_organisation
from ledger.core.chart import AccountType
from ledger.db.models import Account, BankStatement, Entry, Fund, Organisation, ReconciliationMatch, StatementLine
from ledger.reconciliation.imports import MONEY_ROLES, money_account

MATCHES_SHOWN = 200  # the newest standing matches; older ones are in the report's counts and the API


def money_accounts(session: Session, organisation_id: int) -> list[Account]:
    """The organisation's bank, cash and clearing accounts, by code."""
    get_organisation(session, organisation_id)
    return list(session.scalars(select(Account).where(
        Account.organisation_id == organisation_id, Account.role.in_([role.value for role in MONEY_ROLES]))
        .order_by(Account.code)))


def organisations_named(session: Session, organisation_ids) -> list[Organisation]:
    return list(session.scalars(select(Organisation).where(Organisation.id.in_(list(organisation_ids)))
                                .order_by(Organisation.id)))


def default_period(session: Session, account_id: int, today: dt.date) -> tuple[dt.date, dt.date]:
    """The latest statement's months (from the first of its first month to its last day), or this month when the
    account has none yet."""
    latest = session.execute(select(BankStatement.period_start, BankStatement.period_end).where(
        BankStatement.account_id == account_id).order_by(BankStatement.period_end.desc(), BankStatement.id.desc())
        .limit(1)).first()
    if latest is None:
        return today.replace(day=1), today
    return latest.period_start.replace(day=1), latest.period_end


@dataclass(frozen=True, slots=True)
class Held:
    """A line or an entry a match holds, as the screen names it."""

    id: int
    day: dt.date
    amount_minor: int
    text: str


@dataclass(frozen=True, slots=True)
class StandingMatch:
    id: int
    rule: str
    amount_minor: int
    created_at: dt.datetime
    created_by: str
    lines: list[Held]
    entries: list[Held]


def standing_matches(session: Session, organisation_id: int, account_id: int, start: dt.date,
                     end: dt.date) -> list[StandingMatch]:
    """The account's live matches holding a line booked in the period, newest first."""
    money_account(session, organisation_id, account_id)
    kept = list(session.scalars(select(ReconciliationMatch).where(
        ReconciliationMatch.account_id == account_id, ReconciliationMatch.unmatched_at.is_(None),
        ReconciliationMatch.id.in_(select(StatementLine.match_id).where(
            StatementLine.account_id == account_id, StatementLine.booked_on.between(start, end))))
        .order_by(ReconciliationMatch.id.desc()).limit(MATCHES_SHOWN)))
    line_ids = [line_id for match in kept for line_id in json.loads(match.line_ids)]
    entry_ids = [entry_id for match in kept for entry_id in json.loads(match.entry_ids)]
    lines = {line.id: Held(line.id, line.booked_on, line.amount_minor,
                           " ".join(filter(None, (line.reference, line.counterparty, line.description))))
             for line in session.scalars(select(StatementLine).where(StatementLine.id.in_(line_ids)))}
    entries = {row.id: Held(row.id, row.effective_date, 0, row.description)
               for row in session.execute(select(Entry.id, Entry.effective_date, Entry.description)
                                          .where(Entry.id.in_(entry_ids)))}
    return [StandingMatch(match.id, match.rule, match.amount_minor, match.created_at, match.created_by,
                          [lines[i] for i in json.loads(match.line_ids) if i in lines],
                          [entries[i] for i in json.loads(match.entry_ids) if i in entries]) for match in kept]


def funds_of(session: Session, organisation_id: int) -> list[Fund]:
    return list(session.scalars(select(Fund).where(Fund.organisation_id == organisation_id).order_by(Fund.code)))


def counter_accounts(session: Session, organisation_id: int) -> list[Account]:
    """Where a line the books lack may go as an entry: an expense (a bank fee) or a revenue (interest)."""
    return list(session.scalars(select(Account).where(
        Account.organisation_id == organisation_id,
        Account.type.in_([AccountType.EXPENSE.value, AccountType.REVENUE.value])).order_by(Account.code)))


def statements_count(session: Session, account_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(BankStatement).where(
        BankStatement.account_id == account_id)))
