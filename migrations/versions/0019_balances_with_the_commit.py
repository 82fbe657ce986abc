"""The guard of a balance write held for the COMMIT.

Under contention the store writes an entry's balances in a statement of their own, sent with the transaction's COMMIT
(``ledger.db.held``). That statement carries no code's judgement of days, so it may only move a limited balance on
its last day; when another writer has moved that day on since the entry's read, the statement calls
``ledger_day_moved``, which refuses it with a serialization failure: the transaction rolls back, and its retry reads
the new day and judges the days as any backdated entry's (PostgreSQL only; SQLite has no such statement).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION ledger_day_moved(account bigint, fund bigint) RETURNS date LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'day_moved: account % in fund % moved on a later day since the entry was read',
                account, fund USING ERRCODE = 'serialization_failure';
        END $$""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ledger_day_moved(bigint, bigint)")
