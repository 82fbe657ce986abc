"""The latest day each balance moved, kept on the balance itself; each day's row carries its account's limit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``balances.last_day``: the latest effective date of a posting on the balance. A posting writes its balance row
first, and that row's lock orders every writer of the balance, so the row it locks holds the true latest day, even
for a writer whose snapshot is older. When an entry is dated on or after that day (a gift recorded today, the
commonest write) its day's cumulative totals are simply the balance's new totals: the entry's own statement
writes them, and the separate statement that rewrites every later day (``ledger.db.store``) is needed only for a
backdated entry. Filled from the postings; the database refuses a day that goes back.

``daily_balances.balance_limit``: the account's limit, copied onto each day's row and kept equal to it by a foreign
key to ``accounts (id, balance_limit)`` that cascades a change. On PostgreSQL the guard of revision 0005 then fires
only WHEN the row itself shows it is beyond its limit (an insert) or further beyond than before (an update): a
condition on the row alone, where a call of the guard's function for every gift cost more than the rest of the
gift's day (measured). SQLite's guards read the limit from the row too; its table is rebuilt for the foreign key,
and the guards with it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LAST_DAY_FROM_POSTINGS = """
UPDATE balances SET last_day = latest.day
  FROM (SELECT account_id, fund_id, currency, max(day) AS day
          FROM (SELECT debit_account_id AS account_id, fund_id, currency, effective_date AS day FROM postings
                UNION ALL
                SELECT credit_account_id, fund_id, currency, effective_date FROM postings) AS sides
         GROUP BY account_id, fund_id, currency) AS latest
 WHERE balances.account_id = latest.account_id AND balances.fund_id = latest.fund_id
   AND balances.currency = latest.currency
"""
GOES_BACK = "NEW.last_day < OLD.last_day OR (NEW.last_day IS NULL AND OLD.last_day IS NOT NULL)"
# A day's row beyond its limit (an insert is then judged against the day before it by revision 0005's function), or
# further beyond it than before (an update): the rule of revision 0005, on the row's own columns.
CREDITS_LIMIT, DEBITS_LIMIT = "'credits_must_not_exceed_debits'", "'debits_must_not_exceed_credits'"
BEYOND = (f"(NEW.balance_limit = {CREDITS_LIMIT} AND NEW.credits_minor > NEW.debits_minor)"
          f" OR (NEW.balance_limit = {DEBITS_LIMIT} AND NEW.debits_minor > NEW.credits_minor)")
FURTHER_BEYOND = (
    f"(NEW.balance_limit = {CREDITS_LIMIT} AND NEW.credits_minor - NEW.debits_minor"
    f" > {{greatest}}(OLD.credits_minor - OLD.debits_minor, 0))"
    f" OR (NEW.balance_limit = {DEBITS_LIMIT} AND NEW.debits_minor - NEW.credits_minor"
    f" > {{greatest}}(OLD.debits_minor - OLD.credits_minor, 0))")
DAY_BEFORE = """(SELECT {column} FROM daily_balances y WHERE y.account_id = NEW.account_id AND y.fund_id = NEW.fund_id
                 AND y.currency = NEW.currency AND y.day < NEW.day ORDER BY y.day DESC LIMIT 1)"""
SQLITE_FURTHER_BEYOND_THAN_THE_DAY_BEFORE = FURTHER_BEYOND.format(greatest="max").replace(
    "OLD.credits_minor", f"coalesce({DAY_BEFORE.format(column='credits_minor')}, 0)").replace(
    "OLD.debits_minor", f"coalesce({DAY_BEFORE.format(column='debits_minor')}, 0)")
DAY_LIMIT_MESSAGE = "account_limit_exceeded: a balance would break its account''s limit at the end of a day"
GOES_BACK_MESSAGE = "last_day_goes_back: the latest day a balance moved only moves forward"


def upgrade() -> None:
    op.add_column("balances", sa.Column("last_day", sa.Date(), nullable=True))
    op.execute(LAST_DAY_FROM_POSTINGS)
    _limit_on_each_day()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION ledger_refuse_last_day_back() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{GOES_BACK_MESSAGE}: account % in fund % (%), % to %', NEW.account_id,
                    NEW.fund_id, NEW.currency, OLD.last_day, NEW.last_day USING ERRCODE = 'check_violation';
            END $$""")
        # WHEN on the trigger: the common update (the day kept or moved on) calls no function at all.
        op.execute(f"CREATE TRIGGER balances_last_day_forward BEFORE UPDATE ON balances FOR EACH ROW "
                   f"WHEN ({GOES_BACK}) EXECUTE FUNCTION ledger_refuse_last_day_back()")
        return
    op.execute(f"CREATE TRIGGER balances_last_day_forward BEFORE UPDATE ON balances WHEN {GOES_BACK} "
               f"BEGIN SELECT RAISE(ABORT, '{GOES_BACK_MESSAGE}'); END")


def _limit_on_each_day() -> None:
    op.create_index("uq_accounts_id_balance_limit", "accounts", ["id", "balance_limit"], unique=True)
    op.add_column("daily_balances", sa.Column("balance_limit", sa.String(40), nullable=True))
    op.execute("UPDATE daily_balances SET balance_limit = (SELECT a.balance_limit FROM accounts a"
               " WHERE a.id = daily_balances.account_id)")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("daily_balances", "balance_limit", nullable=False)
        op.create_foreign_key("fk_daily_balances_limit_accounts", "daily_balances", "accounts",
                              ["account_id", "balance_limit"], ["id", "balance_limit"], onupdate="CASCADE")
        op.execute("DROP TRIGGER daily_balances_within_limit ON daily_balances")
        for event, condition in (("INSERT", BEYOND), ("UPDATE", FURTHER_BEYOND.format(greatest="greatest"))):
            op.execute(f"CREATE TRIGGER daily_balances_within_limit_{event.lower()} BEFORE {event} ON daily_balances"
                       f" FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION ledger_guard_daily_balances()")
        return
    # SQLite: the table is rebuilt (a foreign key cannot be added otherwise), which drops its guards: made anew.
    with op.batch_alter_table("daily_balances", recreate="always") as batch:
        batch.alter_column("balance_limit", existing_type=sa.String(40), nullable=False)
        batch.create_foreign_key("fk_daily_balances_limit_accounts", "accounts", ["account_id", "balance_limit"],
                                 ["id", "balance_limit"], onupdate="CASCADE")
    _sqlite_day_guards(SQLITE_FURTHER_BEYOND_THAN_THE_DAY_BEFORE, FURTHER_BEYOND.format(greatest="max"))


def _sqlite_day_guards(inserted: str, updated: str) -> None:
    for event, condition in (("INSERT", inserted), ("UPDATE", updated)):
        op.execute(f"CREATE TRIGGER daily_balances_within_limit_{event.lower()} AFTER {event} ON daily_balances "
                   f"WHEN {condition} BEGIN SELECT RAISE(ABORT, '{DAY_LIMIT_MESSAGE}'); END")


def downgrade() -> None:
    op.execute("DROP TRIGGER balances_last_day_forward" + (" ON balances" if op.get_bind().dialect.name
                                                            == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ledger_refuse_last_day_back()")
    # Plain DROP COLUMN (SQLite since 3.35): a rebuild would drop the table's guards of revision 0001.
    op.execute("ALTER TABLE balances DROP COLUMN last_day")
    if op.get_bind().dialect.name == "postgresql":
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER daily_balances_within_limit_{event} ON daily_balances")
        op.execute("CREATE TRIGGER daily_balances_within_limit BEFORE INSERT OR UPDATE ON daily_balances "
                   "FOR EACH ROW EXECUTE FUNCTION ledger_guard_daily_balances()")
        op.drop_constraint("fk_daily_balances_limit_accounts", "daily_balances", type_="foreignkey")
        op.drop_column("daily_balances", "balance_limit")
    else:
        with op.batch_alter_table("daily_balances", recreate="always") as batch:
            batch.drop_constraint("fk_daily_balances_limit_accounts", type_="foreignkey")
            batch.drop_column("balance_limit")
        # Revision 0005's guards, which read the limit from the account.
        limit = "(SELECT a.balance_limit FROM accounts a WHERE a.id = NEW.account_id)"
        _sqlite_day_guards(SQLITE_FURTHER_BEYOND_THAN_THE_DAY_BEFORE.replace("NEW.balance_limit", limit),
                           FURTHER_BEYOND.format(greatest="max").replace("NEW.balance_limit", limit))
    op.drop_index("uq_accounts_id_balance_limit", table_name="accounts")
