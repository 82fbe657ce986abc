"""Whether an organisation holds public-fundraising status (公开募捐资格): China's rule on yearly charitable spending
and management costs judges the two kinds by different tests.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("public_fundraising", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("public_fundraising")
