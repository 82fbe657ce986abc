"""Lighter writes, the same guards.

The months the public figures read (``monthly_balances``) are added by the store's own statements on PostgreSQL too,
as on SQLite since revision 0014, in the statement that writes the postings and their balances: the statement trigger
on postings (a PL/pgSQL call, a transition table and an UPSERT of its own for every gift) cost a fifth of a gift's
time on the server. The guard that months only grow is a condition on the row (``WHEN``), so a month that grows
calls no function at all.

Each balance row carries its account's limit (``balances.balance_limit``, kept equal to the account's by a foreign key
that cascades a change of limit, as ``daily_balances`` has since revision 0006), so the guards that a balance only
grows and keeps within its limit are conditions on the row too: on PostgreSQL the common update (a gift) calls no
PL/pgSQL function (two calls a gift, each reading the account, before), on SQLite no subquery.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SHRINKS = "NEW.debits_minor < OLD.debits_minor OR NEW.credits_minor < OLD.credits_minor"
BALANCE_SHRINKS = (f"{SHRINKS} OR NEW.account_id <> OLD.account_id OR NEW.fund_id <> OLD.fund_id "
                   "OR NEW.currency <> OLD.currency")
BREAKS_LIMIT = ("(NEW.balance_limit = 'credits_must_not_exceed_debits' AND NEW.credits_minor > NEW.debits_minor) "
                "OR (NEW.balance_limit = 'debits_must_not_exceed_credits' AND NEW.debits_minor > NEW.credits_minor)")
OLD_BREAKS_LIMIT = """
    EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND (
        (a.balance_limit = 'credits_must_not_exceed_debits' AND NEW.credits_minor > NEW.debits_minor)
        OR (a.balance_limit = 'debits_must_not_exceed_credits' AND NEW.debits_minor > NEW.credits_minor)))"""
LIMIT_MESSAGE = "account_limit_exceeded: a balance would break its account''s limit"
GOES_BACK = "NEW.last_day < OLD.last_day OR (NEW.last_day IS NULL AND OLD.last_day IS NOT NULL)"
GOES_BACK_MESSAGE = "last_day_goes_back: the latest day a balance moved only moves forward"
HOT_TABLES = ("monthly_balances", "fund_figures")


def _guard_function(breaks_limit: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION ledger_guard_balances() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
                RAISE EXCEPTION 'balances are derived from postings and are never deleted'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            IF TG_OP = 'UPDATE' AND ({BALANCE_SHRINKS}) THEN
                RAISE EXCEPTION 'balances only grow: cumulative totals cannot decrease'
                    USING ERRCODE = 'check_violation';
            END IF;
            IF {breaks_limit} THEN
                RAISE EXCEPTION '{LIMIT_MESSAGE}: account % in fund % (%), debits %, credits %',
                    NEW.account_id, NEW.fund_id, NEW.currency, NEW.debits_minor, NEW.credits_minor
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$"""


def upgrade() -> None:
    _limit_on_each_balance()
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER postings_add_months ON postings")
    op.execute("DROP FUNCTION ledger_add_months()")
    # A hot fund's month (and its gift counts) are rewritten by every gift, as its balances are: room on each page
    # keeps those updates HOT (no new index entries), and vacuuming after every thousand dead versions keeps them so.
    for table in HOT_TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, "
                   "autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02)")
    op.execute("DROP TRIGGER monthly_balances_only_grow ON monthly_balances")
    op.execute(f"CREATE TRIGGER monthly_balances_only_grow BEFORE UPDATE ON monthly_balances FOR EACH ROW "
               f"WHEN ({SHRINKS}) EXECUTE FUNCTION ledger_guard_months()")
    op.execute("CREATE TRIGGER monthly_balances_no_delete BEFORE DELETE ON monthly_balances FOR EACH ROW "
               "EXECUTE FUNCTION ledger_guard_months()")


def _limit_on_each_balance() -> None:
    op.add_column("balances", sa.Column("balance_limit", sa.String(40), nullable=True))
    op.execute("UPDATE balances SET balance_limit = (SELECT a.balance_limit FROM accounts a"
               " WHERE a.id = balances.account_id)")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("balances", "balance_limit", nullable=False)
        op.create_foreign_key("fk_balances_limit_accounts", "balances", "accounts", ["account_id", "balance_limit"],
                              ["id", "balance_limit"], onupdate="CASCADE")
        op.execute(_guard_function(f"({BREAKS_LIMIT})"))
        op.execute("DROP TRIGGER balances_only_grow ON balances")
        op.execute("DROP TRIGGER balances_within_limit ON balances")
        op.execute("CREATE TRIGGER balances_no_delete BEFORE DELETE ON balances FOR EACH ROW "
                   "EXECUTE FUNCTION ledger_guard_balances()")
        op.execute(f"CREATE TRIGGER balances_only_grow BEFORE UPDATE ON balances FOR EACH ROW "
                   f"WHEN ({BALANCE_SHRINKS} OR {BREAKS_LIMIT}) EXECUTE FUNCTION ledger_guard_balances()")
        op.execute(f"CREATE TRIGGER balances_within_limit AFTER INSERT ON balances FOR EACH ROW "
                   f"WHEN ({BREAKS_LIMIT}) EXECUTE FUNCTION ledger_guard_balances()")
        return
    # SQLite: the table is rebuilt (a foreign key cannot be added otherwise), which drops its guards: made anew.
    with op.batch_alter_table("balances", recreate="always") as batch:
        batch.alter_column("balance_limit", existing_type=sa.String(40), nullable=False)
        batch.create_foreign_key("fk_balances_limit_accounts", "accounts", ["account_id", "balance_limit"],
                                 ["id", "balance_limit"], onupdate="CASCADE")
    _sqlite_balance_guards(f"({BREAKS_LIMIT})")


def _sqlite_balance_guards(breaks_limit: str) -> None:
    op.execute(f"CREATE TRIGGER balances_only_grow BEFORE UPDATE ON balances WHEN {BALANCE_SHRINKS} "
               "BEGIN SELECT RAISE(ABORT, 'balances only grow: cumulative totals cannot decrease'); END")
    op.execute("CREATE TRIGGER balances_no_delete BEFORE DELETE ON balances "
               "BEGIN SELECT RAISE(ABORT, 'balances are derived from postings and are never deleted'); END")
    for timing in ("AFTER INSERT", "BEFORE UPDATE"):
        op.execute(f"CREATE TRIGGER balances_within_limit_{timing.split()[0].lower()} {timing} ON balances "
                   f"WHEN {breaks_limit} BEGIN SELECT RAISE(ABORT, '{LIMIT_MESSAGE}'); END")
    op.execute(f"CREATE TRIGGER balances_last_day_forward BEFORE UPDATE ON balances WHEN {GOES_BACK} "
               f"BEGIN SELECT RAISE(ABORT, '{GOES_BACK_MESSAGE}'); END")


def _no_limit_on_each_balance() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER balances_within_limit ON balances")
        op.execute("DROP TRIGGER balances_only_grow ON balances")
        op.execute("DROP TRIGGER balances_no_delete ON balances")
        op.execute(_guard_function(OLD_BREAKS_LIMIT))
        op.execute("CREATE TRIGGER balances_only_grow BEFORE UPDATE OR DELETE ON balances "
                   "FOR EACH ROW EXECUTE FUNCTION ledger_guard_balances()")
        op.execute("CREATE TRIGGER balances_within_limit AFTER INSERT ON balances "
                   "FOR EACH ROW EXECUTE FUNCTION ledger_guard_balances()")
        op.drop_constraint("fk_balances_limit_accounts", "balances", type_="foreignkey")
        op.drop_column("balances", "balance_limit")
        return
    with op.batch_alter_table("balances", recreate="always") as batch:
        batch.drop_constraint("fk_balances_limit_accounts", type_="foreignkey")
        batch.drop_column("balance_limit")
    _sqlite_balance_guards(OLD_BREAKS_LIMIT)


def downgrade() -> None:
    _no_limit_on_each_balance()
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in HOT_TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor, autovacuum_vacuum_scale_factor, "
                   "autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor)")
    op.execute("DROP TRIGGER monthly_balances_no_delete ON monthly_balances")
    op.execute("DROP TRIGGER monthly_balances_only_grow ON monthly_balances")
    op.execute("CREATE TRIGGER monthly_balances_only_grow BEFORE UPDATE OR DELETE ON monthly_balances "
               "FOR EACH ROW EXECUTE FUNCTION ledger_guard_months()")
    # Revision 0017's code does not add the months itself: the trigger comes back (its body as revision 0014 made it).
    op.execute("""
        CREATE FUNCTION ledger_add_months() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO monthly_balances AS m
            SELECT account_id, fund_id, currency, month, min(organisation_id), sum(debit), sum(credit) FROM (
              SELECT debit_account_id AS account_id, fund_id, currency,
                     date_trunc('month', effective_date)::date AS month, organisation_id,
                     amount_minor AS debit, 0 AS credit FROM fresh
              UNION ALL
              SELECT credit_account_id, fund_id, currency, date_trunc('month', effective_date)::date,
                     organisation_id, 0, amount_minor FROM fresh) AS sides
            GROUP BY account_id, fund_id, currency, month
            ORDER BY account_id, fund_id, currency, month
            ON CONFLICT (account_id, fund_id, currency, month) DO UPDATE
              SET debits_minor = m.debits_minor + excluded.debits_minor,
                  credits_minor = m.credits_minor + excluded.credits_minor;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER postings_add_months AFTER INSERT ON postings REFERENCING NEW TABLE AS fresh "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_add_months()")
