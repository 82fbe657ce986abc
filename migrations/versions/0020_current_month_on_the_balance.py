"""The current month's totals on the balance row.

A single entry (a gift, a grant) moved two tables per balance: the balance's row and its month's row in
``monthly_balances``, an upsert that cost a gift a twenty-fifth of its time on the server. Now the store's one-entry
statement adds the entry to its balance's current month on the balance row itself (``balances.month``, its first
day, and ``month_debits_minor`` / ``month_credits_minor``), a row it updates anyway; the store writes
``monthly_balances`` only when an entry is dated in another month (the row's month moved on: its totals go to
``monthly_balances`` and the row starts the new month; or an entry dated in an earlier month). Batches, the bulk import
and SQLite keep adding their months to ``monthly_balances`` and leave the row's month alone.

So a month's totals are ``monthly_balances``' plus the balance row's when the row holds that month: the view
``month_totals`` sums the two, and every reader (public figures, reports, the integrity check) reads it. The guards:
the row's month never goes back, and its totals never shrink within a month (both engines, conditions on the row, so
the common update calls no function), and never exceed the balance's cumulative totals (a check).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

MONTH_GOES_BACK = ("NEW.month < OLD.month OR (NEW.month IS NULL AND OLD.month IS NOT NULL) "
                   "OR (NEW.month = OLD.month AND (NEW.month_debits_minor < OLD.month_debits_minor "
                   "OR NEW.month_credits_minor < OLD.month_credits_minor))")
MONTH_MESSAGE = "month_goes_back: the current month of a balance only moves forward and its totals only grow within it"
WITHIN_TOTALS = ("month_debits_minor BETWEEN 0 AND debits_minor AND month_credits_minor BETWEEN 0 AND credits_minor "
                 "AND (month IS NOT NULL OR (month_debits_minor = 0 AND month_credits_minor = 0))")
KEY = "account_id, fund_id, currency, month, organisation_id"
MONTH_TOTALS = f"""
CREATE VIEW month_totals AS
SELECT {KEY}, CAST(sum(debits_minor) AS BIGINT) AS debits_minor, CAST(sum(credits_minor) AS BIGINT) AS credits_minor
  FROM (
  SELECT {KEY}, debits_minor, credits_minor FROM monthly_balances
  UNION ALL
  SELECT {KEY}, month_debits_minor, month_credits_minor FROM balances WHERE month IS NOT NULL
) AS months
GROUP BY {KEY}"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("balances", sa.Column("month", sa.Date(), nullable=True))
        for side in ("debits", "credits"):
            op.add_column("balances", sa.Column(f"month_{side}_minor", sa.BigInteger(), nullable=False,
                                                server_default="0"))
        op.create_check_constraint("ck_balances_month_within_totals", "balances", WITHIN_TOTALS)
        op.execute(f"""
            CREATE FUNCTION ledger_refuse_month_back() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MONTH_MESSAGE}: account % in fund % (%), % to %', NEW.account_id, NEW.fund_id,
                    NEW.currency, OLD.month, NEW.month USING ERRCODE = 'check_violation';
            END $$""")
        op.execute(f"CREATE TRIGGER balances_month_forward BEFORE UPDATE ON balances FOR EACH ROW "
                   f"WHEN ({MONTH_GOES_BACK}) EXECUTE FUNCTION ledger_refuse_month_back()")
    else:
        # SQLite adds a column with its own checks without rebuilding the table (which would drop its triggers).
        op.execute("ALTER TABLE balances ADD COLUMN month DATE")
        op.execute("ALTER TABLE balances ADD COLUMN month_debits_minor BIGINT NOT NULL DEFAULT 0 "
                   "CONSTRAINT ck_balances_month_debits_within_totals "
                   "CHECK (month_debits_minor BETWEEN 0 AND debits_minor)")
        op.execute("ALTER TABLE balances ADD COLUMN month_credits_minor BIGINT NOT NULL DEFAULT 0 "
                   "CONSTRAINT ck_balances_month_credits_within_totals "
                   "CHECK (month_credits_minor BETWEEN 0 AND credits_minor "
                   "AND (month IS NOT NULL OR (month_debits_minor = 0 AND month_credits_minor = 0)))")
        op.execute(f"CREATE TRIGGER balances_month_forward BEFORE UPDATE ON balances WHEN {MONTH_GOES_BACK} "
                   f"BEGIN SELECT RAISE(ABORT, '{MONTH_MESSAGE}'); END")
    op.execute(MONTH_TOTALS)


def downgrade() -> None:
    op.execute("DROP VIEW month_totals")
    # The rows' months go back into monthly_balances, where revision 0019's code reads every month.
    op.execute("""
        INSERT INTO monthly_balances AS m (account_id, fund_id, currency, month, organisation_id, debits_minor,
                                           credits_minor)
        SELECT account_id, fund_id, currency, month, organisation_id, month_debits_minor, month_credits_minor
          FROM balances WHERE month IS NOT NULL
        ON CONFLICT (account_id, fund_id, currency, month) DO UPDATE
          SET debits_minor = m.debits_minor + excluded.debits_minor,
              credits_minor = m.credits_minor + excluded.credits_minor""")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER balances_month_forward ON balances")
        op.execute("DROP FUNCTION ledger_refuse_month_back()")
        op.drop_constraint("ck_balances_month_within_totals", "balances", type_="check")
        for column in ("month_credits_minor", "month_debits_minor", "month"):
            op.drop_column("balances", column)
        return
    op.execute("DROP TRIGGER balances_month_forward")
    for column in ("month_credits_minor", "month_debits_minor", "month"):  # each column's own check goes with it
        op.execute(f"ALTER TABLE balances DROP COLUMN {column}")
