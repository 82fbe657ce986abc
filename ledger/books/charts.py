"""An organisation's chart of accounts: read (and cached) for the recipes, listed, grown, and its limits set.

Every recipe needs its organisation's chart, so each process keeps the charts it has read, per engine. A chart
changes only here (an account added, a role's default moved), and each change raises the organisation's
``chart_version`` in the same transaction; a cached chart whose version is behind the row's is read again, so
every process sees a change from the moment it commits. Limits are not part of the chart: the checks read them
with every posting.
"""

from __future__ import annotations

import weakref

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ledger.books.organisations import CHANGED_CHARTS, get_organisation
from ledger.core.chart import ROLE_SHAPES, AccountType, BalanceLimit, Chart, Role, Side
from ledger.core.errors import Conflict, InvalidInput, NotFound
from ledger.core.values import one_of, required_text
from ledger.db.engine import insert_unless_taken
from ledger.db.listing import get_owned
from ledger.db.models import Account, Balance, DayBalance, Organisation

# engine → organisation id → its chart, as last read.
_charts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def load_chart(session: Session, organisation_id: int, version: int | None = None) -> Chart:
    """The organisation's chart, from this process's cache when it is current. ``version``: the chart version
    the caller has just read (with its fund, say), which saves a read."""
    if version is None:
        version = session.scalar(select(Organisation.chart_version).where(Organisation.id == organisation_id))
        if version is None:
            raise NotFound(f"organisation {organisation_id} does not exist", field="organisation_id")
    cache = _charts.setdefault(session.get_bind(), {})
    chart = cache.get(organisation_id)
    if chart is None or chart.version != version:
        chart = _read_chart(session, organisation_id)
        # A chart this transaction made or changed is not cached: if the transaction rolls back, its version may
        # come round again (SQLite even reuses the ids) for other accounts.
        if organisation_id not in session.info.get(CHANGED_CHARTS, ()):
            cache[organisation_id] = chart
    return chart


def _read_chart(session: Session, organisation_id: int) -> Chart:
    # The version and the accounts in one statement, so that the version describes the accounts read.
    rows = session.execute(
        select(Organisation.chart_version, Account.id, Account.code, Account.role, Account.role_default)
        .join(Account, Account.organisation_id == Organisation.id).where(Organisation.id == organisation_id)
        .order_by(Account.role_default.desc(), Account.code)).all()
    if not rows:
        raise NotFound(f"organisation {organisation_id} has no chart of accounts", field="organisation_id")
    by_role: dict[Role, list[int]] = {}
    for row in rows:  # each role's default comes first
        if row.role is not None:
            by_role.setdefault(Role(row.role), []).append(row.id)
    return Chart(organisation_id=organisation_id, version=rows[0].chart_version,
                 by_role={role: tuple(ids) for role, ids in by_role.items()},
                 by_code={row.code: row.id for row in rows})


def list_accounts(session: Session, organisation_id: int) -> list[Account]:
    get_organisation(session, organisation_id)
    return list(session.scalars(select(Account).where(Account.organisation_id == organisation_id)
                                .order_by(Account.code)))


def get_account(session: Session, organisation_id: int, account_id: int) -> Account:
    return get_owned(session, Account, organisation_id, account_id, "account")


def create_account(session: Session, organisation_id: int, *, code: str, name_zh: str, name_en: str,
                   type: str, normal_balance: str | None = None, balance_limit: str = BalanceLimit.NONE,
                   role: str | None = None, role_default: bool = False) -> Account:
    """Adds an account to the chart (a second bank, a clearing account for another payment channel). An account
    with a role has the element and normal side of the role's accounts; it becomes the role's default when asked,
    or when the role has no account yet."""
    get_organisation(session, organisation_id)
    account_type, side, role = _shape(type, normal_balance, role, role_default)
    chart_changing(session, organisation_id)
    account = insert_unless_taken(session, Account, dict(
        organisation_id=organisation_id, code=required_text(code, "code", 20),
        name_zh=required_text(name_zh, "name_zh", 200), name_en=required_text(name_en, "name_en", 200),
        type=account_type, normal_balance=side, balance_limit=one_of(balance_limit, BalanceLimit, "balance_limit"),
        role=role, role_default=False,
    ), key=("organisation_id", "code"))
    if account is None:
        raise Conflict(f"the chart already has an account {code}", field="code")
    if role is not None and (role_default or not _role_has_default(session, organisation_id, role)):
        _make_default(session, account)
    return account


def _shape(type: str, normal_balance: str | None, role: str | None,
           role_default: bool) -> tuple[AccountType, Side, Role | None]:
    """The new account's element, normal side and role, checked against each other. Left out, the side is the
    role's (a transfers-out account is debit-side net assets), else the element's."""
    account_type = one_of(type, AccountType, "type")
    role = one_of(role, Role, "role") if role is not None else None
    if role is None and role_default:
        raise InvalidInput("only an account with a role can be its default", field="role_default")
    expected_type, expected_side = ROLE_SHAPES.get(role, (account_type, _natural_side(account_type)))
    side = one_of(normal_balance, Side, "normal_balance") if normal_balance is not None else expected_side
    if role is not None and account_type != expected_type:
        raise InvalidInput(f"a {role.value} account is a {expected_type.value} account", field="type")
    if role is not None and side != expected_side:
        raise InvalidInput(f"a {role.value} account is carried on the {expected_side.value} side",
                           field="normal_balance")
    return account_type, side, role


def make_role_default(session: Session, organisation_id: int, account_id: int) -> Account:
    """Makes the account its role's default: the account the recipes take when their caller names none."""
    account = get_account(session, organisation_id, account_id)
    if account.role is None:
        raise InvalidInput("the account holds no role, so it cannot be a role's default", field="role_default")
    if not account.role_default:
        chart_changing(session, organisation_id)
        _make_default(session, account)
    return account


def _make_default(session: Session, account: Account) -> None:
    # The old default first: the partial unique index allows one default per role at every statement's end.
    session.execute(update(Account).where(Account.organisation_id == account.organisation_id,
                                          Account.role == account.role, Account.role_default)
                    .values(role_default=False).execution_options(synchronize_session=False))
    session.execute(update(Account).where(Account.id == account.id).values(role_default=True)
                    .execution_options(synchronize_session=False))
    session.expire(account)


def _role_has_default(session: Session, organisation_id: int, role: Role) -> bool:
    return session.scalar(select(Account.id).where(Account.organisation_id == organisation_id, Account.role == role,
                                                   Account.role_default)) is not None


def chart_changing(session: Session, organisation_id: int) -> None:
    """Raises the chart's version before the chart changes. The update locks the organisation's row until the
    transaction ends, so two changes of one chart (two admins moving one role's default) run one after the other,
    each seeing the other's result; and every process's cached chart is stale from the commit on."""
    session.execute(update(Organisation).where(Organisation.id == organisation_id)
                    .values(chart_version=Organisation.chart_version + 1)
                    .execution_options(synchronize_session=False))
    session.info.setdefault(CHANGED_CHARTS, set()).add(organisation_id)


def set_account_limit(session: Session, organisation_id: int, account_id: int, limit: str) -> Account:
    """Changes an account's limit; refused while a balance of the account breaks the new one today or broke it at
    the end of any day in the books (a limit holds on every date). The account's daily totals are rebuilt from
    its postings for the new limit (none are kept without one)."""
    limit = one_of(limit, BalanceLimit, "balance_limit")
    account = get_account(session, organisation_id, account_id)
    breaking = {
        BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS: Balance.credits_minor > Balance.debits_minor,
        BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS: Balance.debits_minor > Balance.credits_minor,
    }.get(limit)
    if breaking is not None and session.scalar(
            select(Balance.fund_id).where(Balance.account_id == account_id, breaking).limit(1)) is not None:
        raise Conflict(f"a balance of account {account_id} already breaks the limit {limit}", field="balance_limit")
    try:
        with session.begin_nested():  # all or nothing: a refusal (even one then answered by a replay) changes nothing
            account.balance_limit = limit
            session.flush()
            _rebuild_days(session, account_id, limit)
    except DBAPIError as error:
        if "account_limit_exceeded" not in str(error.orig):
            raise
        raise Conflict(f"a balance of account {account_id} broke the limit {limit} at the end of a day in the books",
                       field="balance_limit") from None
    return account


# The account's cumulative totals at the end of each day it moved, from its postings (as migration 0005 built them
# for every limited account); then the last day's row of each balance goes again (the balance's own totals are that
# day's), once the guards have judged it.
_DAYS_FROM_POSTINGS = text("""
INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor, credits_minor,
                            balance_limit)
SELECT account_id, fund_id, currency, day, organisation_id,
       sum(debits) OVER (PARTITION BY fund_id, currency ORDER BY day),
       sum(credits) OVER (PARTITION BY fund_id, currency ORDER BY day), :limit
  FROM (SELECT CAST(:account AS BIGINT) AS account_id, fund_id, currency, effective_date AS day,
               min(organisation_id) AS organisation_id,
               sum(CASE WHEN debit_account_id = :account THEN amount_minor ELSE 0 END) AS debits,
               sum(CASE WHEN credit_account_id = :account THEN amount_minor ELSE 0 END) AS credits
          FROM postings WHERE debit_account_id = :account OR credit_account_id = :account
         GROUP BY fund_id, currency, effective_date) AS days
""")


_LAST_DAYS_GO = text("""
DELETE FROM daily_balances
 WHERE account_id = :account
   AND day >= (SELECT b.last_day FROM balances b WHERE b.account_id = daily_balances.account_id
                 AND b.fund_id = daily_balances.fund_id AND b.currency = daily_balances.currency)
""")


def _rebuild_days(session: Session, account_id: int, limit: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Writers inside a transaction read the old limit and would post past the rebuild: wait for them, and
        # hold new ones until this commits (a rare change; SHARE lets readers on).
        session.execute(text("LOCK TABLE entries IN SHARE MODE"))
    session.execute(delete(DayBalance).where(DayBalance.account_id == account_id))
    if limit != BalanceLimit.NONE:
        # The database's guards judge every day.
        session.execute(_DAYS_FROM_POSTINGS, {"account": account_id, "limit": limit})
        session.execute(_LAST_DAYS_GO, {"account": account_id})


def _natural_side(account_type: AccountType) -> Side:
    return Side.DEBIT if account_type in (AccountType.ASSET, AccountType.EXPENSE) else Side.CREDIT


