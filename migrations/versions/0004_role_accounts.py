"""Many accounts per role: a chart may hold several bank or clearing accounts, one of them each role's default;
and a chart version, so that every process can tell its cached chart is stale.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Until now each role was held by one account, made from the template with the organisation: that account
becomes the role's default. At most one default per role and organisation is kept by a partial unique index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("organisations", sa.Column("chart_version", sa.Integer(), nullable=False,
                                             server_default=sa.text("1")))
    op.add_column("accounts", sa.Column("role_default", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE accounts SET role_default = (role IS NOT NULL)")
    op.create_index("uq_accounts_role_default", "accounts", ["organisation_id", "role"], unique=True,
                    sqlite_where=sa.text("role_default"), postgresql_where=sa.text("role_default"))


def downgrade() -> None:
    # Going back to one account per role: the defaults stay; other accounts keep their rows and lose their roles'
    # choice, which the older code cannot express.
    op.drop_index("uq_accounts_role_default", table_name="accounts")
    op.execute("UPDATE accounts SET role = NULL WHERE role IS NOT NULL AND NOT role_default")
    op.drop_column("accounts", "role_default")
    op.drop_column("organisations", "chart_version")
