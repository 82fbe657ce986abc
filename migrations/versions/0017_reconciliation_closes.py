"""Reconciled months closed: each close of an account's month keeps the month's reconciliation report as it stood,
as canonical JSON with its SHA-256, numbered by ``version`` (a month reopened and closed again gets the next one).
Append-only: the database refuses to change or forget a frozen report.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MESSAGE = "reconciliation_closes is append-only: a closed month is closed again with a new version, never changed"


def upgrade() -> None:
    op.create_table(
        "reconciliation_closes",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_closes"),
        sa.ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                                name="fk_reconciliation_closes_account_accounts"),
        sa.UniqueConstraint("account_id", "month", "version",
                            name="uq_reconciliation_closes_account_id_month_version"),
        sa.CheckConstraint("version >= 1", name="ck_reconciliation_closes_version_positive"),
        sa.CheckConstraint("length(sha256) = 64", name="ck_reconciliation_closes_sha256_whole"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION reconciliation_closes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
            END $$""")
        op.execute("CREATE TRIGGER reconciliation_closes_append_only BEFORE UPDATE OR DELETE ON reconciliation_closes "
                   "FOR EACH ROW EXECUTE FUNCTION reconciliation_closes_refuse_change()")
        op.execute("CREATE TRIGGER reconciliation_closes_no_truncate BEFORE TRUNCATE ON reconciliation_closes "
                   "FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_closes_refuse_change()")
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER reconciliation_closes_no_{action.lower()} BEFORE {action} "
                   f"ON reconciliation_closes BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    closed = op.get_bind().execute(sa.text("SELECT count(*) FROM reconciliation_closes")).scalar()
    if closed:  # frozen reports are the record of a closed month: a downgrade must not forget them
        raise RuntimeError(f"{closed} reconciled months are closed: revision 0016 has no place for them")
    op.drop_table("reconciliation_closes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION reconciliation_closes_refuse_change()")
