"""Reading the ledger: balances now and as of a date, account statements, trial balances.

"Now" reads the cumulative totals (one primary-key lookup, however long the history); "as of a date"
sums the postings through the index that leads with the account, so it costs the account's history up to
that date. A balance is always reported as raw debits and credits plus the amount on the account's
normal side, so no caller ever has to remember a sign convention.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func, literal, select, tuple_, union_all
from sqlalchemy.orm import Session

from ledger.books.charts import get_account
from ledger.books.organisations import get_fund, get_organisation
from ledger.core.chart import BalanceLimit, Side
from ledger.core.errors import InvalidInput
from ledger.core.facts import DayTotals
from ledger.db.models import Account, Balance, DayBalance, Entry, Posting

MAX_STATEMENT_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Totals:
    """Cumulative debits and credits of one account (in one fund, or all), in one currency."""

    debits_minor: int
    credits_minor: int
    currency: str

    def balance_minor(self, normal_balance: str) -> int:
        """The balance on the account's normal side: positive when it is where it belongs."""
        if normal_balance == Side.DEBIT:
            return self.debits_minor - self.credits_minor
        return self.credits_minor - self.debits_minor


def balance(session: Session, account_id: int, fund_id: int, currency: str) -> Totals:
    """The current totals of one (account, fund, currency): a single primary-key read."""
    row = session.execute(
        select(Balance.debits_minor, Balance.credits_minor).where(
            Balance.account_id == account_id, Balance.fund_id == fund_id, Balance.currency == currency)
    ).first()
    return Totals(row.debits_minor, row.credits_minor, currency) if row else Totals(0, 0, currency)


def days_of(session: Session, account_id: int, fund_id: int, currency: str) -> list[DayTotals]:
    """The cumulative totals at the end of every day a limited balance moved (its kept days: ``daily_balances``
    holds those before the last, and the balance's own totals are the last day's); none for an unlimited one."""
    rows = session.execute(select(DayBalance.day, DayBalance.debits_minor, DayBalance.credits_minor).where(
        DayBalance.account_id == account_id, DayBalance.fund_id == fund_id, DayBalance.currency == currency)
        .order_by(DayBalance.day))
    days = [DayTotals(*row) for row in rows]
    last = session.execute(select(Balance.last_day, Balance.debits_minor, Balance.credits_minor)
                           .join(Account, Account.id == Balance.account_id)
                           .where(Balance.account_id == account_id, Balance.fund_id == fund_id,
                                  Balance.currency == currency, Account.balance_limit != BalanceLimit.NONE)).first()
    return [*days, DayTotals(*last)] if last and last.last_day else days


def balance_as_of(
    session: Session, account_id: int, currency: str, as_of: dt.date, fund_id: int | None = None
) -> Totals:
    """Totals of the postings with an effective date on or before ``as_of``."""
    debits = _sum_side(session, Posting.debit_account_id, account_id, currency, fund_id, as_of)
    credits = _sum_side(session, Posting.credit_account_id, account_id, currency, fund_id, as_of)
    return Totals(debits, credits, currency)


def _sum_side(session, side_column, account_id, currency, fund_id, as_of) -> int:
    query = select(func.coalesce(func.sum(Posting.amount_minor), 0)).where(
        side_column == account_id, Posting.currency == currency, Posting.effective_date <= as_of)
    if fund_id is not None:
        query = query.where(Posting.fund_id == fund_id)
    return int(session.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class TrialBalanceLine:
    account_id: int
    code: str
    name_zh: str
    name_en: str
    type: str
    normal_balance: str
    currency: str
    debits_minor: int
    credits_minor: int

    @property
    def debit_balance_minor(self) -> int:
        return max(self.debits_minor - self.credits_minor, 0)

    @property
    def credit_balance_minor(self) -> int:
        return max(self.credits_minor - self.debits_minor, 0)

    @property
    def balance_minor(self) -> int:
        """The balance on the account's normal side."""
        return Totals(self.debits_minor, self.credits_minor, self.currency).balance_minor(self.normal_balance)


@dataclass(frozen=True, slots=True)
class TrialBalance:
    """Every account with activity, and the column totals, which are equal in every currency."""

    organisation_id: int
    fund_id: int | None
    as_of: dt.date | None
    lines: tuple[TrialBalanceLine, ...]

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per currency: (sum of debit balances, sum of credit balances)."""
        sums: dict[str, tuple[int, int]] = {}
        for line in self.lines:
            debit, credit = sums.get(line.currency, (0, 0))
            sums[line.currency] = (debit + line.debit_balance_minor, credit + line.credit_balance_minor)
        return sums

    def is_balanced(self) -> bool:
        return all(debit == credit for debit, credit in self.totals().values())


def trial_balance(
    session: Session, organisation_id: int, fund_id: int | None = None, as_of: dt.date | None = None
) -> TrialBalance:
    """The organisation's (or one fund's) trial balance, now or as of the end of a date."""
    if fund_id is not None:
        get_fund(session, organisation_id, fund_id)
    else:
        get_organisation(session, organisation_id)
    totals = _totals_now(organisation_id, fund_id) if as_of is None else _totals_as_of(
        organisation_id, fund_id, as_of)
    sums = totals.subquery()
    rows = session.execute(
        select(Account.id, Account.code, Account.name_zh, Account.name_en, Account.type, Account.normal_balance,
               sums.c.currency, func.sum(sums.c.debits).label("debits"), func.sum(sums.c.credits).label("credits"))
        .join(sums, sums.c.account_id == Account.id)
        .group_by(Account.id, Account.code, Account.name_zh, Account.name_en, Account.type,
                  Account.normal_balance, sums.c.currency)
        .order_by(Account.code, sums.c.currency)
    )
    lines = tuple(TrialBalanceLine(row.id, row.code, row.name_zh, row.name_en, row.type, row.normal_balance,
                                   row.currency, int(row.debits), int(row.credits)) for row in rows)
    return TrialBalance(organisation_id, fund_id, as_of, lines)


def _totals_now(organisation_id: int, fund_id: int | None):
    query = select(Balance.account_id, Balance.currency, Balance.debits_minor.label("debits"),
                   Balance.credits_minor.label("credits")).where(Balance.organisation_id == organisation_id)
    return query.where(Balance.fund_id == fund_id) if fund_id is not None else query


def _totals_as_of(organisation_id: int, fund_id: int | None, as_of: dt.date):
    def side(account_column, is_debit: bool):
        amount = Posting.amount_minor
        query = select(account_column.label("account_id"), Posting.currency,
                       (amount if is_debit else literal(0)).label("debits"),
                       (literal(0) if is_debit else amount).label("credits")).where(
            Posting.organisation_id == organisation_id, Posting.effective_date <= as_of)
        return query.where(Posting.fund_id == fund_id) if fund_id is not None else query

    return union_all(side(Posting.debit_account_id, True), side(Posting.credit_account_id, False))


@dataclass(frozen=True, slots=True)
class StatementLine:
    posting_id: int
    entry_id: int
    effective_date: dt.date
    description: str
    fund_id: int
    debit_minor: int
    credit_minor: int
    balance_minor: int


class StatementCursor(NamedTuple):
    """Where a statement page ends: the last line's effective date and posting id (lines run in that order)."""

    effective_date: dt.date
    posting_id: int


@dataclass(frozen=True, slots=True)
class StatementPage:
    """One page of an account statement. ``opening_balance_minor`` is the balance before the first line
    of this page; ``next_cursor`` is the (date, posting id) to pass to get the following page."""

    account_id: int
    currency: str
    fund_id: int | None
    opening_balance_minor: int
    lines: tuple[StatementLine, ...]
    next_cursor: StatementCursor | None


def account_statement(
    session: Session, organisation_id: int, account_id: int, currency: str | None = None, *,
    fund_id: int | None = None,
    date_from: dt.date | None = None, date_to: dt.date | None = None,
    after: StatementCursor | None = None, limit: int = 100,
) -> StatementPage:
    """The account's postings in (effective date, posting id) order, with a running balance on its normal
    side, in ``currency`` (the organisation's base currency when None). Pages are keyset-paginated: pass the
    previous page's ``next_cursor`` as ``after``."""
    if not (isinstance(limit, int) and 1 <= limit <= MAX_STATEMENT_PAGE):
        raise InvalidInput(f"must be between 1 and {MAX_STATEMENT_PAGE}", field="limit")
    account = get_account(session, organisation_id, account_id)
    currency = currency or get_organisation(session, organisation_id).base_currency
    # A page starts after a cursor: the previous page's last line, or the last possible line of the day before
    # date_from.
    start = after or (StatementCursor(date_from - dt.timedelta(days=1), 2**62)
                      if date_from and date_from > dt.date.min else None)
    opening = _opening_totals(session, account_id, currency, fund_id, start)
    running = opening.balance_minor(account.normal_balance)
    rows = session.execute(_statement_query(account_id, currency, fund_id, start, date_to, limit + 1)).all()
    lines = []
    for row in rows[:limit]:
        running += (row.debit - row.credit) * (1 if account.normal_balance == Side.DEBIT else -1)
        lines.append(StatementLine(row.id, row.entry_id, row.effective_date, row.description, row.fund_id,
                                   row.debit, row.credit, running))
    next_cursor = StatementCursor(lines[-1].effective_date, lines[-1].posting_id) if len(rows) > limit else None
    return StatementPage(account_id, currency, fund_id, opening.balance_minor(account.normal_balance),
                         tuple(lines), next_cursor)


def _side_rows(side_column, is_debit: bool, account_id, currency, fund_id, start, date_to):
    amount = Posting.amount_minor
    query = select(
        Posting.id, Posting.entry_id, Posting.effective_date, Posting.fund_id,
        (amount if is_debit else literal(0)).label("debit"), (literal(0) if is_debit else amount).label("credit"),
    ).where(side_column == account_id, Posting.currency == currency)
    if fund_id is not None:
        query = query.where(Posting.fund_id == fund_id)
    if start is not None:
        query = query.where(tuple_(Posting.effective_date, Posting.id) > tuple_(literal(start.effective_date),
                                                                                 literal(start.posting_id)))
    if date_to is not None:
        query = query.where(Posting.effective_date <= date_to)
    return query


def _statement_query(account_id, currency, fund_id, start, date_to, limit):
    both = union_all(
        _side_rows(Posting.debit_account_id, True, account_id, currency, fund_id, start, date_to),
        _side_rows(Posting.credit_account_id, False, account_id, currency, fund_id, start, date_to),
    ).subquery()
    return (
        select(both, Entry.description)
        .join(Entry, Entry.id == both.c.entry_id)
        .order_by(both.c.effective_date, both.c.id)
        .limit(limit)
    )


def _opening_totals(session, account_id, currency, fund_id, start) -> Totals:
    if start is None:
        return Totals(0, 0, currency)

    def side(side_column) -> int:
        query = select(func.coalesce(func.sum(Posting.amount_minor), 0)).where(
            side_column == account_id, Posting.currency == currency,
            tuple_(Posting.effective_date, Posting.id) <= tuple_(literal(start.effective_date),
                                                                 literal(start.posting_id)))
        if fund_id is not None:
            query = query.where(Posting.fund_id == fund_id)
        return int(session.execute(query).scalar_one())

    return Totals(side(Posting.debit_account_id), side(Posting.credit_account_id), currency)
