"""What was paid for an online gift, as the channel reported it: kept on the gift, so that a manager can decide a
gift set aside for review (the payment differs from what was asked) from the record itself.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("online_gifts") as batch:
        batch.add_column(sa.Column("paid_minor", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("paid_currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("paid_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("online_gifts") as batch:
        batch.drop_column("paid_on")
        batch.drop_column("paid_currency")
        batch.drop_column("paid_minor")
