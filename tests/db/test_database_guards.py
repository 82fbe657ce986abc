"""The database keeps the ledger's invariants on its own (DESIGN.md §4, "checked twice").

Every statement here is raw SQL that bypasses the application. Each runs in a transaction that is rolled
back whatever happens, so a guard that fails to refuse cannot damage the shared test database; each case
also names the message it expects, so a statement refused for some unrelated reason does not pass.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError, IntegrityError

import api.edge.tables  # noqa: F401 (the edge's own tables share the models' MetaData: compared with them)
import receipts.models  # noqa: F401 (the register's tables too)
from ledger.access.users import create_user
from ledger.books.entries import post_entry
from ledger.books.integrity import seal_pending, verify
from ledger.books.periods import close_period, set_books_opened_on
from ledger.core import recipes
from ledger.core.money import Money
from ledger.db.engine import Database, unique_violation_on
from ledger.db.models import Base, User
from ledger.db.schema import downgrade, migrate
from ledger.grants.lifecycle import GrantRequest, approve_grant, pay_grant, request_grant
from tests.builders import Books, fresh_uscc, key, new_books, particulars

APPEND_ONLY = r"append-only"
FOREIGN_KEY = "FOREIGN KEY constraint failed|{}"


def execute_and_roll_back(db: Database, sql: str, parameters: dict | None = None) -> None:
    """Runs one raw statement in its own transaction and always rolls it back."""
    with db.engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(text(sql), parameters or {})
        finally:
            transaction.rollback()


@dataclass(frozen=True)
class Ledger:
    """A fresh organisation with one entry of two postings (as raw rows), and a stranger organisation."""

    books: Books
    stranger: Books
    entry: dict
    posting: dict


def _row(db: Database, sql: str, parameters: dict) -> dict:
    with db.engine.connect() as connection:
        return dict(connection.execute(text(sql), parameters).mappings().one())


@pytest.fixture
def ledger(db) -> Ledger:
    books, stranger = new_books(db), new_books(db)
    draft = recipes.online_donation(books.chart, books.open_fund, Money(10_000, "CNY"), Money(300, "CNY"),
                                    particulars())
    posted = db.write(lambda session: post_entry(session, draft))
    entry = _row(db, "SELECT * FROM entries WHERE id = :id", {"id": posted.id})
    posting = _row(db, "SELECT * FROM postings WHERE entry_id = :id ORDER BY id LIMIT 1", {"id": posted.id})
    return Ledger(books, stranger, entry, posting)


def insert_sql(table: str, row: dict) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"


def new_posting(ledger: Ledger, **changes) -> tuple[str, dict]:
    """An INSERT of a valid extra posting of the fixture's entry, with ``changes`` applied."""
    row = {k: v for k, v in ledger.posting.items() if k != "id"} | changes
    return insert_sql("postings", row), row


def new_entry(ledger: Ledger, **changes) -> tuple[str, dict]:
    """An INSERT of a valid new entry (no postings) of the fixture's organisation, with ``changes``."""
    row = {k: v for k, v in ledger.entry.items() if k not in ("id", "reverses_entry_id")}
    row |= {"idempotency_key": key("raw"), "effective_date": dt.date(2026, 11, 3)} | changes
    return insert_sql("entries", row), row


# --- refusals -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    statement: Callable[[Ledger], tuple[str, dict]]
    error: type[DatabaseError]
    message: str  # a regular expression the database's message must match, on either engine


def on_entry(sql: str) -> Callable[[Ledger], tuple[str, dict]]:
    return lambda lg: (sql, {"id": lg.entry["id"]})


def on_posting(sql: str) -> Callable[[Ledger], tuple[str, dict]]:
    return lambda lg: (sql, {"id": lg.posting["id"]})


def on_balance(sql: str, side: str) -> Callable[[Ledger], tuple[str, dict]]:
    """``sql`` about the balance of the posting's debit or credit account, written with ``WHERE {BALANCE}``."""
    return lambda lg: (sql.format(BALANCE="organisation_id = :org AND account_id = :account AND fund_id = :fund"),
                       {"org": lg.posting["organisation_id"], "account": lg.posting[f"{side}_account_id"],
                        "fund": lg.posting["fund_id"]})


def day_after(value: dt.date | str) -> dt.date:
    """The next day; SQLite hands raw dates back as ISO text."""
    return dt.date.fromisoformat(str(value)) + dt.timedelta(days=1)


REFUSALS = {
    "update of an entry": Refusal(
        on_entry("UPDATE entries SET description = 'edited' WHERE id = :id"), IntegrityError, APPEND_ONLY),
    "delete of an entry": Refusal(on_entry("DELETE FROM entries WHERE id = :id"), IntegrityError, APPEND_ONLY),
    "update of a posting": Refusal(
        on_posting("UPDATE postings SET amount_minor = amount_minor + 1 WHERE id = :id"), IntegrityError,
        APPEND_ONLY),
    "delete of a posting": Refusal(on_posting("DELETE FROM postings WHERE id = :id"), IntegrityError, APPEND_ONLY),
    "delete of a balance": Refusal(on_balance("DELETE FROM balances WHERE {BALANCE}", "debit"), IntegrityError,
                                   "never deleted"),
    "decrease of cumulative debits": Refusal(
        on_balance("UPDATE balances SET debits_minor = debits_minor - 1 WHERE {BALANCE}", "debit"),
        IntegrityError, "only grow"),
    "decrease of cumulative credits": Refusal(
        on_balance("UPDATE balances SET credits_minor = credits_minor - 1 WHERE {BALANCE}", "credit"),
        IntegrityError, "only grow"),
    "moving a balance to another account": Refusal(
        on_balance("UPDATE balances SET account_id = account_id + 1, debits_minor = debits_minor + 1 "
                   "WHERE {BALANCE}", "debit"),
        IntegrityError, "only grow"),
    "moving a balance's last day back": Refusal(
        on_balance("UPDATE balances SET last_day = '2000-01-01' WHERE {BALANCE}", "debit"), IntegrityError,
        "last_day_goes_back"),
    "forgetting a balance's last day": Refusal(
        on_balance("UPDATE balances SET last_day = NULL WHERE {BALANCE}", "debit"), IntegrityError,
        "last_day_goes_back"),
    "posting of amount zero": Refusal(lambda lg: new_posting(lg, amount_minor=0), IntegrityError,
                                      "amount_positive"),
    "posting of a negative amount": Refusal(lambda lg: new_posting(lg, amount_minor=-5), IntegrityError,
                                            "amount_positive"),
    "posting with debit account = credit account": Refusal(
        lambda lg: new_posting(lg, credit_account_id=lg.posting["debit_account_id"]), IntegrityError,
        "accounts_differ"),
    "posting to another organisation's account": Refusal(
        lambda lg: new_posting(lg, debit_account_id=lg.stranger.chart.by_code["1002"]), IntegrityError,
        FOREIGN_KEY.format("fk_postings_debit_account_accounts")),
    "posting in another organisation's fund": Refusal(
        lambda lg: new_posting(lg, fund_id=lg.stranger.open_fund), IntegrityError,
        FOREIGN_KEY.format("fk_postings_fund_funds")),
    "posting in a currency not its fund's": Refusal(
        lambda lg: new_posting(lg, currency="USD"), IntegrityError, FOREIGN_KEY.format("fk_postings_fund_funds")),
    "posting dated otherwise than its entry": Refusal(
        lambda lg: new_posting(lg, effective_date=day_after(lg.entry["effective_date"])),
        IntegrityError, FOREIGN_KEY.format("fk_postings_entry_entries")),
    "entry with a reused idempotency key": Refusal(
        lambda lg: new_entry(lg, idempotency_key=lg.entry["idempotency_key"]), IntegrityError,
        "idempotency_key"),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_the_database_refuses_what_breaks_an_invariant(db, ledger, case: Refusal):
    sql, parameters = case.statement(ledger)

    with pytest.raises(case.error, match=re.compile(case.message, re.IGNORECASE)):
        execute_and_roll_back(db, sql, parameters)


@pytest.mark.parametrize("statement", [new_posting, new_entry], ids=["posting", "entry"])
def test_the_valid_rows_the_refusals_start_from_are_accepted(db, ledger, statement):
    sql, parameters = statement(ledger)

    execute_and_roll_back(db, sql, parameters)  # raises if the baseline row itself were invalid


def test_the_database_refuses_an_entry_dated_inside_a_closed_period(db, ledger):
    organisation_id = ledger.books.organisation_id
    db.write(lambda session: close_period(session, organisation_id, 2026, 10, "closer@example.org"))

    with pytest.raises(IntegrityError, match="period_closed"):
        execute_and_roll_back(db, *new_entry(ledger, effective_date=dt.date(2026, 10, 31)))
    execute_and_roll_back(db, *new_entry(ledger, effective_date=dt.date(2026, 11, 1)))


@pytest.mark.parametrize("sql", [
    "UPDATE seal_batches SET merkle_root = merkle_root WHERE organisation_id = :org",
    "DELETE FROM seal_batches WHERE organisation_id = :org",
], ids=["update", "delete"])
def test_the_database_refuses_to_change_a_seal_batch(db, ledger, sql):
    seal_pending(db)

    with pytest.raises(IntegrityError, match=APPEND_ONLY):
        execute_and_roll_back(db, sql, {"org": ledger.books.organisation_id})


def _gift_of_the_month_before(db: Database, ledger: Ledger) -> None:
    """A gift dated in the month before the fixture's: on PostgreSQL the balance rows hold the fixture's month, so
    this one goes to ``monthly_balances``, as every month does on SQLite."""
    draft = recipes.online_donation(ledger.books.chart, ledger.books.open_fund, Money(2_000, "CNY"), Money(0, "CNY"),
                                    particulars(dt.date(2026, 10, 30)))
    db.write(lambda session: post_entry(session, draft))


@pytest.mark.parametrize("sql", [
    "UPDATE monthly_balances SET debits_minor = debits_minor - 1 WHERE organisation_id = :org AND debits_minor > 0",
    "UPDATE monthly_balances SET credits_minor = 0 WHERE organisation_id = :org AND credits_minor > 0",
    "DELETE FROM monthly_balances WHERE organisation_id = :org",
], ids=["debits", "credits", "delete"])
def test_the_months_the_public_figures_read_only_grow(db, ledger, sql):
    _gift_of_the_month_before(db, ledger)
    assert _row(db, "SELECT count(*) AS n FROM monthly_balances WHERE organisation_id = :org",
                {"org": ledger.books.organisation_id})["n"] > 0

    with pytest.raises(IntegrityError, match="only grow"):
        execute_and_roll_back(db, sql, {"org": ledger.books.organisation_id})


_ON_ITS_ROW = "organisation_id = :org AND month IS NOT NULL"


@pytest.mark.parametrize("sql", [
    f"UPDATE balances SET month = '2026-10-01' WHERE {_ON_ITS_ROW}",
    f"UPDATE balances SET month = NULL, month_debits_minor = 0, month_credits_minor = 0 WHERE {_ON_ITS_ROW}",
    f"UPDATE balances SET month_debits_minor = month_debits_minor - 1 WHERE {_ON_ITS_ROW} AND month_debits_minor > 0",
    f"UPDATE balances SET month_credits_minor = 0 WHERE {_ON_ITS_ROW} AND month_credits_minor > 0",
], ids=["month back", "month dropped", "debits shrink", "credits shrink"])
def test_the_month_on_a_balance_row_only_moves_forward(postgres_db, sql):
    # Only PostgreSQL's one-entry statement writes the month on the row; SQLite's guard is the same condition.
    books = new_books(postgres_db)
    draft = recipes.online_donation(books.chart, books.open_fund, Money(10_000, "CNY"), Money(300, "CNY"),
                                    particulars())
    postgres_db.write(lambda session: post_entry(session, draft))

    with pytest.raises(IntegrityError, match="month_goes_back"):
        execute_and_roll_back(postgres_db, sql, {"org": books.organisation_id})


@pytest.mark.parametrize("sql", [
    "UPDATE balances SET month = '2026-11-01', month_debits_minor = debits_minor + 1 WHERE organisation_id = :org",
    "INSERT INTO balances (account_id, fund_id, currency, organisation_id, debits_minor, credits_minor, balance_limit,"
    " month_credits_minor) SELECT account_id, :other, currency, organisation_id, 10, 10, balance_limit, 5"
    " FROM balances WHERE organisation_id = :org LIMIT 1",
], ids=["more than the balance", "totals without a month"])
def test_the_month_on_a_balance_row_stays_within_its_totals(db, ledger, sql):
    with pytest.raises(IntegrityError, match=r"month_(debits_|credits_)?within_totals"):
        execute_and_roll_back(db, sql, {"org": ledger.books.organisation_id, "other": ledger.books.other})


def test_a_posting_adds_to_its_months(db, ledger):
    """(The store adds them in the statement, or savepoint, that writes the postings, on both engines: on the balance
    row or in ``monthly_balances``; ``month_totals`` sums the two.)"""
    month = ledger.posting["effective_date"]
    month = (dt.date.fromisoformat(month) if isinstance(month, str) else month).replace(day=1)

    row = _row(db, "SELECT debits_minor, credits_minor FROM month_totals WHERE account_id = :account "
                   "AND fund_id = :fund AND month = :month",
               {"account": ledger.posting["debit_account_id"], "fund": ledger.posting["fund_id"],
                "month": month.isoformat()})

    assert row["debits_minor"] >= ledger.posting["amount_minor"]


@pytest.mark.parametrize(("table", "message"), [
    ("entries CASCADE", APPEND_ONLY), ("postings", APPEND_ONLY), ("seal_batches", APPEND_ONLY),
    ("balances", "never deleted"), ("monthly_balances", "only grow"), ("published_reports", "append-only"),
])
def test_postgresql_refuses_to_truncate_the_ledger_tables(postgres_db, table, message):
    # TRUNCATE fires no row triggers: each of these tables needs a statement-level guard of its own.
    with pytest.raises(IntegrityError, match=message):
        execute_and_roll_back(postgres_db, f"TRUNCATE {table}")


# --- the schema ---------------------------------------------------------------------------------------------


def schema_differences(database: Database) -> list:
    with database.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_the_models_agree_with_the_migrations(db):
    assert schema_differences(db) == []


def test_the_model_comparison_notices_a_difference(db):
    # Guards the test above against comparing nothing: a column the migrations never made must show up.
    from sqlalchemy import Column, Integer, MetaData

    altered = MetaData()
    for table in Base.metadata.tables.values():
        copy = table.to_metadata(altered)
        if table.name == "entries":
            copy.append_column(Column("approved_by", Integer))
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), altered)
    assert [d[0] for d in differences] == ["add_column"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A database of its own with nothing in it, dropped afterwards."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
        yield database
        database.dispose()
        return
    server = request.getfixturevalue("postgres_db")
    name = f"fundledger_migrations_{uuid.uuid4().hex[:12]}"
    with server.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(server.engine.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()
        with server.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def _leftovers(database: Database) -> set[str]:
    """Tables other than Alembic's own, and the triggers and trigger functions the migrations installed."""
    names = set(inspect(database.engine).get_table_names()) - {"alembic_version"}
    sql = ("SELECT name FROM sqlite_master WHERE type = 'trigger'" if database.dialect == "sqlite" else
           "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'ledger%'")
    with database.engine.connect() as connection:
        return names | set(connection.scalars(text(sql)))


def test_a_fresh_database_migrates_down_to_base_and_up_to_head_again(empty_database):
    migrate(empty_database.engine)
    assert _leftovers(empty_database) >= set(Base.metadata.tables)

    downgrade(empty_database.engine)
    assert _leftovers(empty_database) == set()

    migrate(empty_database.engine)
    assert schema_differences(empty_database) == []
    books = new_books(empty_database)
    entry = empty_database.write(lambda session: post_entry(session, recipes.offline_donation(
        books.chart, books.open_fund, Money(100, "CNY"), "bank", particulars())))
    with pytest.raises(IntegrityError, match=APPEND_ONLY):
        execute_and_roll_back(empty_database, "DELETE FROM entries WHERE id = :id", {"id": entry.id})


def test_a_unique_violation_is_told_by_its_table_on_both_engines(db):
    """A racing insert is recognised where it is written (the kept answers, the entries) by the table whose unique
    key refused it; PostgreSQL names the table, SQLite the columns."""
    row = {"email": f"twice-{uuid.uuid4().hex[:8]}@example.org", "display_name": "x", "password_hash": "x",
           "platform_admin": False, "created_at": dt.datetime.now(dt.UTC)}
    with db.engine.begin() as connection:
        connection.execute(User.__table__.insert().values(**row))
    with pytest.raises(IntegrityError) as raised, db.engine.begin() as connection:
        connection.execute(User.__table__.insert().values(**row))

    assert unique_violation_on(raised.value, "users")
    assert not unique_violation_on(raised.value, "entries")


def test_migrating_books_kept_with_one_account_per_role_makes_each_that_roles_default(empty_database):
    """Revision 0004 on books written before it: each role's one account becomes its default, and an account
    without a role stays without; the chart starts at version 1."""
    migrate(empty_database.engine, "0003")
    with empty_database.engine.begin() as connection:
        organisation_id = connection.execute(text(
            "INSERT INTO organisations (name, kind, base_currency, jurisdiction, registration_number, created_at)"
            " VALUES ('旧基金会', 'foundation', 'CNY', 'CN', :number, :at) RETURNING id"),
            {"number": fresh_uscc(), "at": dt.datetime.now(dt.UTC)}).scalar_one()
        for code, role in (("1002", "bank"), ("1101", None), ("4101", "donation_revenue")):
            connection.execute(text(
                "INSERT INTO accounts (organisation_id, code, name_zh, name_en, type, normal_balance, balance_limit,"
                " role) VALUES (:organisation, :code, :code, :code, 'asset', 'debit', 'none', :role)"),
                {"organisation": organisation_id, "code": code, "role": role})

    migrate(empty_database.engine)

    with empty_database.engine.connect() as connection:
        accounts = connection.execute(text(
            "SELECT code, role_default FROM accounts WHERE organisation_id = :organisation ORDER BY code"),
            {"organisation": organisation_id}).all()
        version = connection.scalar(text("SELECT chart_version FROM organisations WHERE id = :organisation"),
                                    {"organisation": organisation_id})
    assert [(code, bool(default)) for code, default in accounts] == [
        ("1002", True), ("1101", False), ("4101", True)]
    assert version == 1


def _check_words(database: Database, table: str, name: str) -> set[str]:
    """The quoted words of a CHECK constraint as the database holds it."""
    sql = ("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name"
           if database.dialect == "postgresql" else "SELECT sql FROM sqlite_master WHERE name = :table")
    with database.engine.connect() as connection:
        definition = connection.scalar(text(sql), {"name": name, "table": table})
    if database.dialect == "sqlite":
        definition = definition[definition.index(f"CONSTRAINT {name}"):].split("CONSTRAINT", 2)[1]
    return set(re.findall(r"'([a-z_]+)'", definition))


def test_each_vocabulary_is_the_list_its_column_is_checked_against(db):
    """The models build their CHECKs from the vocabularies (StrEnums); the migrations wrote them out by hand.
    They must name the same words, or a status the code uses would be refused by the database."""
    checked = 0
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            words = re.fullmatch(r"(\w+) IN \(('[a-z_]+'(?:, '[a-z_]+')*)\)", str(getattr(constraint, "sqltext", "")))
            if words is None:
                continue
            checked += 1
            assert _check_words(db, table.name, constraint.name) == set(re.findall(r"'([a-z_]+)'", words[2])), \
                constraint.name
    assert checked >= 10


def test_the_database_refuses_an_entry_dated_before_the_books_opened(db, ledger):
    organisation_id = ledger.books.organisation_id
    db.write(lambda session: set_books_opened_on(session, organisation_id, dt.date(2026, 11, 2), "admin"))

    with pytest.raises(IntegrityError, match="period_closed"):
        execute_and_roll_back(db, *new_entry(ledger, effective_date=dt.date(2026, 11, 1)))
    execute_and_roll_back(db, *new_entry(ledger, effective_date=dt.date(2026, 11, 2)))


def test_revision_0005_carries_the_books_written_before_it(empty_database):
    """Books written at head, taken back to 0004 and up again: the grant's payment, the day the books opened (the
    earliest entry's, before the organisation was made) and the daily totals of limited balances are rebuilt."""
    migrate(empty_database.engine)
    books = new_books(empty_database)
    requester, payer = (empty_database.write(lambda session, name=name: create_user(
        session, email=f"{name}-{uuid.uuid4().hex[:6]}@example.org", password="long enough password"))
        for name in ("requester", "payer"))
    empty_database.write(lambda session: post_entry(session, recipes.offline_donation(
        books.chart, books.open_fund, Money(5_000, "CNY"), "bank", particulars(dt.date(2026, 11, 2), key()))))
    grant = empty_database.write(lambda session: request_grant(session, books.organisation_id, GrantRequest(
        books.open_fund, 1_000, "CNY", "payee", "purpose", "charitable_activities"), requested_by_user_id=requester.id))
    empty_database.write(lambda session: approve_grant(
        session, books.organisation_id, grant.id, approver_user_id=payer.id, effective_date=dt.date(2026, 11, 3),
        idempotency_key=key(), recorded_by=payer.email))
    empty_database.write(lambda session: pay_grant(
        session, books.organisation_id, grant.id, paid_on=dt.date(2026, 11, 4), idempotency_key=key(),
        recorded_by=payer.email, paid_by_user_id=payer.id))
    days_sql = "SELECT account_id, fund_id, day, debits_minor, credits_minor FROM daily_balances ORDER BY 1, 2, 3"
    with empty_database.engine.connect() as connection:
        days = connection.execute(text(days_sql)).all()

    downgrade(empty_database.engine, "0004")
    migrate(empty_database.engine)

    with empty_database.engine.connect() as connection:
        payments = connection.execute(text(
            "SELECT grant_id, amount_minor, paid_by_user_id FROM grant_payments")).all()
        status = connection.execute(text("SELECT status, paid_minor FROM grants WHERE id = :id"),
                                    {"id": grant.id}).one()
        opened = connection.scalar(text("SELECT books_opened_on FROM organisations WHERE id = :id"),
                                   {"id": books.organisation_id})
        assert connection.execute(text(days_sql)).all() == days
    assert payments == [(grant.id, 1_000, payer.id)] and tuple(status) == ("paid", 1_000)
    assert str(opened)[:10] == "2026-11-02" and len(days) >= 2


def test_revision_0006_gives_each_balance_the_date_of_its_latest_posting(empty_database):
    """Books written at head, taken back to 0005 and up again: each balance's last day is filled from its postings
    (a backdated entry does not move it back), and the integrity check agrees."""
    migrate(empty_database.engine)
    books = new_books(empty_database)
    for day in (dt.date(2026, 11, 5), dt.date(2026, 11, 3)):
        empty_database.write(lambda session, day=day: post_entry(session, recipes.offline_donation(
            books.chart, books.open_fund, Money(5_000, "CNY"), "bank", particulars(day, key()))))
    last_days_sql = "SELECT account_id, fund_id, currency, last_day FROM balances ORDER BY 1, 2, 3"
    with empty_database.engine.connect() as connection:
        before = connection.execute(text(last_days_sql)).all()

    downgrade(empty_database.engine, "0005")
    migrate(empty_database.engine)

    with empty_database.engine.connect() as connection:
        assert connection.execute(text(last_days_sql)).all() == before
    assert {str(row.last_day)[:10] for row in before} == {"2026-11-05"}
    with empty_database.read() as session:
        assert verify(session, books.organisation_id) == []



def test_revision_0007_drops_each_last_days_row_and_its_downgrade_writes_it_back(empty_database):
    """Books written at head (days of 3 and 5 November: the 3rd's row kept, the 5th's totals the balance's), taken
    back to 0006, which keeps every day's row, the last one equal to its balance, and up again."""
    migrate(empty_database.engine)
    books = new_books(empty_database)
    for day in (dt.date(2026, 11, 3), dt.date(2026, 11, 5)):
        empty_database.write(lambda session, day=day: post_entry(session, recipes.offline_donation(
            books.chart, books.restricted, Money(5_000, "CNY"), "bank", particulars(day, key()))))
    days_sql = ("SELECT d.day, d.debits_minor, d.credits_minor, b.debits_minor, b.credits_minor FROM daily_balances d"
                " JOIN balances b USING (account_id, fund_id, currency) WHERE d.fund_id = :fund ORDER BY d.day")
    with empty_database.engine.connect() as connection:
        at_head = connection.execute(text(days_sql), {"fund": books.restricted}).all()

    downgrade(empty_database.engine, "0006")
    with empty_database.engine.connect() as connection:
        at_0006 = connection.execute(text(days_sql), {"fund": books.restricted}).all()
    migrate(empty_database.engine)

    with empty_database.engine.connect() as connection:
        assert connection.execute(text(days_sql), {"fund": books.restricted}).all() == at_head
    assert [str(row[0])[:10] for row in at_head] == ["2026-11-03"] and tuple(at_head[0][1:3]) == (5_000, 0)
    assert [str(row[0])[:10] for row in at_0006] == ["2026-11-03", "2026-11-05"]
    assert tuple(at_0006[1][1:3]) == tuple(at_0006[1][3:5]) == (10_000, 0)
    with empty_database.read() as session:
        assert verify(session, books.organisation_id) == []


def test_revision_0009_will_not_be_taken_back_while_online_donations_are_recorded(empty_database):
    """Without revision 0009 a donation cannot be online: taking it back would have to forget the records that
    explain entries in the books, so it refuses, and the schema stays as it was."""
    from ledger.payments import demo_channel
    from ledger.payments.gifts import GiftForm, donation_page, start_gift

    migrate(empty_database.engine)
    books = new_books(empty_database)
    token = empty_database.write(lambda session: start_gift(
        session, donation_page(session, books.organisation_id, "C1"), GiftForm(5_000, "李雷", "li@example.org"),
        "demo").token)
    empty_database.write(lambda session: demo_channel.pay(session, token, dt.date(2026, 11, 20)))
    with empty_database.engine.connect() as connection:
        head = connection.scalar(text("SELECT version_num FROM alembic_version"))

    with pytest.raises(RuntimeError, match="online donations are recorded"):
        downgrade(empty_database.engine, "0008")

    with empty_database.engine.connect() as connection:  # (one transaction: the revisions after 0009 are back too)
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == head
        assert connection.scalar(text("SELECT count(*) FROM online_gifts")) == 1
