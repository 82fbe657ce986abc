"""A balance's last day is its own row: ``daily_balances`` keeps only the days before it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

The totals at the end of a balance's last day (``balances.last_day``) are the balance's own totals, which every
posting already writes and the balance's guard already judges against the account's limit. Keeping a copy in
``daily_balances`` cost every gift a second row write (measured: the one-entry write was a quarter slower than
before daily limits). Now a day's row is written once, when the balance moves on past it (the first entry of a
later day closes it with the totals before that entry) or when a backdated entry lands before it.

``balances.last_day_before``: the last day as it was before the balance's latest write, set by that write's own
upsert (PostgreSQL 15's RETURNING has no OLD row): the writer learns from it, under the row's lock, which day it
closes, even when another writer moved the day on after its snapshot was taken.

The upgrade removes each limited balance's row for its last day; the downgrade writes it back from the balance.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SAME_BALANCE = ("b.account_id = daily_balances.account_id AND b.fund_id = daily_balances.fund_id"
                " AND b.currency = daily_balances.currency")
LAST_DAYS_BACK = """
INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor, credits_minor,
                            balance_limit)
SELECT b.account_id, b.fund_id, b.currency, b.last_day, b.organisation_id, b.debits_minor, b.credits_minor,
       a.balance_limit
  FROM balances b JOIN accounts a ON a.id = b.account_id AND a.balance_limit <> 'none'
 WHERE b.last_day IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("balances", sa.Column("last_day_before", sa.Date(), nullable=True))
    op.execute(f"DELETE FROM daily_balances WHERE day >= (SELECT b.last_day FROM balances b WHERE {SAME_BALANCE})")


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite since 3.35): a rebuild would drop the table's guards of revision 0001.
    op.execute("ALTER TABLE balances DROP COLUMN last_day_before")
    op.execute(LAST_DAYS_BACK)
