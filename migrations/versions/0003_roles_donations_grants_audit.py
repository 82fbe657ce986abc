"""Roles, donors, donations, refunds, grants with their approvals, idempotent API answers, the audit log.

Grant approvals carry the requester's id through a composite key so the database itself refuses the
requester as approver; the audit log is append-only on both engines.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AUDIT_MESSAGE = "audit_log is append-only: its records are never changed or deleted"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_audit_log_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_organisation_id_id", "audit_log", ["organisation_id", "id"], unique=False)
    op.create_table(
        "donors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("tax_id", sa.String(length=40), nullable=True),
        sa.Column("public_name_consent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("kind IN ('individual', 'organisation')", name=op.f("ck_donors_kind")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_donors_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donors")),
        sa.UniqueConstraint("organisation_id", "id", name=op.f("uq_donors_organisation_id_id")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_idempotency_records_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("user_id", "idempotency_key", name=op.f("uq_idempotency_records_user_id_idempotency_key")),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('org_admin', 'fund_manager', 'auditor')", name=op.f("ck_memberships_role")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_memberships_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("id", "organisation_id", name=op.f("uq_memberships_id_organisation_id")),
        sa.UniqueConstraint("user_id", "organisation_id", name=op.f("uq_memberships_user_id_organisation_id")),
    )
    op.create_table(
        "donations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("donor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("in_kind_description", sa.String(length=500), nullable=False),
        sa.Column("valuation_basis", sa.String(length=200), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "channel <> 'in_kind' OR (in_kind_description <> '' AND valuation_basis <> '')",
            name=op.f("ck_donations_in_kind_described"),
        ),
        sa.CheckConstraint("channel IN ('bank', 'cheque', 'cash', 'in_kind')", name=op.f("ck_donations_channel")),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_donations_amount_positive")),
        sa.CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= amount_minor", name=op.f("ck_donations_refunds_within_amount")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "donor_id"], ["donors.organisation_id", "donors.id"], name="fk_donations_donor_donors"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "entry_id", "received_on"],
            ["entries.organisation_id", "entries.id", "entries.effective_date"],
            name="fk_donations_entry_entries",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "fund_id", "currency"],
            ["funds.organisation_id", "funds.id", "funds.currency"],
            name="fk_donations_fund_funds",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donations")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_donations_entry_id")),
        sa.UniqueConstraint("organisation_id", "id", name=op.f("uq_donations_organisation_id_id")),
    )
    op.create_index("ix_donations_donor_id", "donations", ["donor_id"], unique=False)
    op.create_index("ix_donations_organisation_id_fund_id", "donations", ["organisation_id", "fund_id"], unique=False)
    op.create_table(
        "fund_assignments",
        sa.Column("membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id", "organisation_id"],
            ["memberships.id", "memberships.organisation_id"],
            name="fk_fund_assignments_membership_memberships",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "fund_id", "currency"],
            ["funds.organisation_id", "funds.id", "funds.currency"],
            name="fk_fund_assignments_fund_funds",
        ),
        sa.PrimaryKeyConstraint("membership_id", "fund_id", name=op.f("pk_fund_assignments")),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("payee", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("requested_by_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("paid_entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.CheckConstraint("(status = 'paid') = (paid_entry_id IS NOT NULL)", name=op.f("ck_grants_paid_posted")),
        sa.CheckConstraint(
            "(status IN ('approved', 'paid')) = (approved_entry_id IS NOT NULL)", name=op.f("ck_grants_approved_posted")
        ),
        sa.CheckConstraint(
            "category IN ('charitable_activities', 'management', 'fundraising')", name=op.f("ck_grants_category")
        ),
        sa.CheckConstraint("status IN ('requested', 'approved', 'paid', 'rejected')", name=op.f("ck_grants_status")),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_grants_amount_positive")),
        sa.CheckConstraint("approvals_required IN (1, 2)", name=op.f("ck_grants_approvals_required")),
        sa.ForeignKeyConstraint(
            ["approved_entry_id"], ["entries.id"], name=op.f("fk_grants_approved_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "fund_id", "currency"],
            ["funds.organisation_id", "funds.id", "funds.currency"],
            name="fk_grants_fund_funds",
        ),
        sa.ForeignKeyConstraint(["paid_entry_id"], ["entries.id"], name=op.f("fk_grants_paid_entry_id_entries")),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"], ["users.id"], name=op.f("fk_grants_requested_by_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
        sa.UniqueConstraint("id", "requested_by_user_id", name=op.f("uq_grants_id_requested_by_user_id")),
    )
    op.create_index("ix_grants_organisation_id_status", "grants", ["organisation_id", "status"], unique=False)
    op.create_table(
        "grant_approvals",
        sa.Column("grant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("requested_by_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("user_id <> requested_by_user_id", name=op.f("ck_grant_approvals_not_the_requester")),
        sa.ForeignKeyConstraint(
            ["grant_id", "requested_by_user_id"],
            ["grants.id", "grants.requested_by_user_id"],
            name="fk_grant_approvals_grant_grants",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_grant_approvals_user_id_users")),
        sa.PrimaryKeyConstraint("grant_id", "user_id", name=op.f("pk_grant_approvals")),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("donation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["organisation_id", "donation_id"],
            ["donations.organisation_id", "donations.id"],
            name="fk_refunds_donation_donations",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "entry_id", "refunded_on"],
            ["entries.organisation_id", "entries.id", "entries.effective_date"],
            name="fk_refunds_entry_entries",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_refunds_entry_id")),
    )
    op.create_index("ix_refunds_donation_id", "refunds", ["donation_id"], unique=False)
    op.add_column("organisations", sa.Column("dual_approval_threshold_minor", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{AUDIT_MESSAGE}' USING ERRCODE = 'restrict_violation';
            END $$""")
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{AUDIT_MESSAGE}'); END"
            )


def downgrade() -> None:
    for table in (
        "refunds",
        "grant_approvals",
        "grants",
        "fund_assignments",
        "donations",
        "memberships",
        "idempotency_records",
        "donors",
        "audit_log",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_refuse_change()")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("dual_approval_threshold_minor")
