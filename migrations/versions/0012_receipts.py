"""The receipt register: each organisation's receipt settings and yearly counters, receipts, the gifts each covers,
voids, the PDFs rendered and the official e-bills attached; receipts and what hangs on them are append-only, by
triggers on both engines. ``receipt_deliveries``: each receipt's email to its donor, as it goes (the one mutable
table of the register).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("receipts", "receipt_lines", "receipt_voids", "receipt_documents", "receipt_official_bills")
MESSAGE = "is append-only: a receipt is voided or replaced, never changed"
JURISDICTIONS = "IN ('CN', 'US', 'CA', 'UK')"
LANGUAGES = "IN ('zh-CN', 'en')"


def upgrade() -> None:
    with op.batch_alter_table("donations") as batch:
        batch.add_column(sa.Column("goods_value_minor", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
        batch.create_check_constraint("ck_donations_goods_value_within_amount",
                                      "goods_value_minor >= 0 AND goods_value_minor <= amount_minor")
    op.create_table(
        "receipt_settings",
        sa.Column("organisation_id", ID, sa.ForeignKey("organisations.id",
                                                       name="fk_receipt_settings_organisation_id_organisations"),
                  nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("timing", sa.String(20), nullable=False),
        sa.Column("jurisdiction", sa.String(2), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("fiscal_year_start_month", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("issuer_address", sa.String(300), nullable=False, server_default=""),
        sa.Column("signatory", sa.String(200), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", name="pk_receipt_settings"),
        sa.CheckConstraint("fiscal_year_start_month BETWEEN 1 AND 12",
                           name="ck_receipt_settings_fiscal_year_start_month"),
        sa.UniqueConstraint("prefix", name="uq_receipt_settings_prefix"),
        sa.CheckConstraint("timing IN ('per_donation', 'annual', 'on_request')", name="ck_receipt_settings_timing"),
        sa.CheckConstraint(f"jurisdiction {JURISDICTIONS}", name="ck_receipt_settings_jurisdiction"),
        sa.CheckConstraint(f"language {LANGUAGES}", name="ck_receipt_settings_language"),
        sa.CheckConstraint("length(prefix) BETWEEN 1 AND 20", name="ck_receipt_settings_prefix_length"),
    )
    op.create_table(
        "receipt_counters",
        sa.Column("organisation_id", ID, sa.ForeignKey("organisations.id",
                                                       name="fk_receipt_counters_organisation_id_organisations"),
                  nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", "year", name="pk_receipt_counters"),
        sa.CheckConstraint("last_number >= 0", name="ck_receipt_counters_last_number_not_negative"),
    )
    op.create_table(
        "receipts",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, sa.ForeignKey("organisations.id",
                                                       name="fk_receipts_organisation_id_organisations"),
                  nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("donor_id", ID, sa.ForeignKey("donors.id", name="fk_receipts_donor_id_donors"), nullable=False),
        sa.Column("fund_id", ID, sa.ForeignKey("funds.id", name="fk_receipts_fund_id_funds"), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("advantage_minor", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("replaces_receipt_id", ID, sa.ForeignKey("receipts.id",
                                                           name="fk_receipts_replaces_receipt_id_receipts"),
                  nullable=True),
        sa.Column("jurisdiction", sa.String(2), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("donor_name", sa.String(200), nullable=False),
        sa.Column("donor_address", sa.String(500), nullable=False),
        sa.Column("donor_tax_id", sa.String(40), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_receipts"),
        sa.UniqueConstraint("number", name="uq_receipts_number"),
        sa.UniqueConstraint("organisation_id", "year", "sequence", name="uq_receipts_organisation_id_year_sequence"),
        sa.UniqueConstraint("replaces_receipt_id", name="uq_receipts_replaces_receipt_id"),
        sa.CheckConstraint("amount_minor > 0", name="ck_receipts_amount_positive"),
        sa.CheckConstraint("advantage_minor >= 0 AND advantage_minor <= amount_minor",
                           name="ck_receipts_advantage_within_amount"),
        sa.CheckConstraint("sequence > 0", name="ck_receipts_sequence_positive"),
        sa.CheckConstraint("period_start <= period_end", name="ck_receipts_period_ordered"),
        sa.CheckConstraint("kind IN ('donation', 'annual')", name="ck_receipts_kind"),
        sa.CheckConstraint(f"jurisdiction {JURISDICTIONS}", name="ck_receipts_jurisdiction"),
        sa.CheckConstraint(f"language {LANGUAGES}", name="ck_receipts_language"),
    )
    op.create_index("ix_receipts_organisation_id", "receipts", ["organisation_id"])
    op.create_index("ix_receipts_donor_id", "receipts", ["donor_id"])
    op.create_table(
        "receipt_lines",
        sa.Column("receipt_id", ID, sa.ForeignKey("receipts.id", name="fk_receipt_lines_receipt_id_receipts"),
                  nullable=False),
        sa.Column("donation_id", ID, sa.ForeignKey("donations.id", name="fk_receipt_lines_donation_id_donations"),
                  nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", "donation_id", name="pk_receipt_lines"),
        sa.CheckConstraint("amount_minor > 0", name="ck_receipt_lines_amount_positive"),
    )
    op.create_index("ix_receipt_lines_donation_id", "receipt_lines", ["donation_id"])
    op.create_table(
        "receipt_voids",
        sa.Column("receipt_id", ID, sa.ForeignKey("receipts.id", name="fk_receipt_voids_receipt_id_receipts"),
                  nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("refund_id", ID, sa.ForeignKey("refunds.id", name="fk_receipt_voids_refund_id_refunds"),
                  nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_receipt_voids"),
    )
    op.create_table(
        "receipt_documents",
        sa.Column("receipt_id", ID, sa.ForeignKey("receipts.id", name="fk_receipt_documents_receipt_id_receipts"),
                  nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", "version", name="pk_receipt_documents"),
        sa.CheckConstraint("version > 0", name="ck_receipt_documents_version_positive"),
    )
    op.create_table(
        "receipt_official_bills",
        sa.Column("receipt_id", ID, sa.ForeignKey("receipts.id",
                                                  name="fk_receipt_official_bills_receipt_id_receipts"),
                  nullable=False),
        sa.Column("bill_code", sa.String(40), nullable=False),
        sa.Column("bill_number", sa.String(40), nullable=False),
        sa.Column("check_code", sa.String(40), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attached_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_receipt_official_bills"),
    )
    op.create_table(
        "receipt_deliveries",
        sa.Column("receipt_id", ID, sa.ForeignKey("receipts.id", name="fk_receipt_deliveries_receipt_id_receipts"),
                  nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_receipt_deliveries"),
        sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'skipped')", name="ck_receipt_deliveries_status"),
    )
    op.create_index("ix_receipt_deliveries_status_due_at", "receipt_deliveries", ["status", "due_at"])
    op.create_table(
        "gift_aid_declarations",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, sa.ForeignKey("organisations.id",
                                                       name="fk_gift_aid_declarations_organisation_id_organisations"),
                  nullable=False),
        sa.Column("donor_id", ID, sa.ForeignKey("donors.id", name="fk_gift_aid_declarations_donor_id_donors"),
                  nullable=False),
        sa.Column("declared_on", sa.Date(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("cancelled_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gift_aid_declarations"),
        sa.CheckConstraint("cancelled_on IS NULL OR cancelled_on >= effective_from",
                           name="ck_gift_aid_declarations_cancelled_after_start"),
        sa.CheckConstraint("effective_from <= declared_on",
                           name="ck_gift_aid_declarations_effective_from_before_declared"),
    )
    op.create_index("ix_gift_aid_declarations_donor_id", "gift_aid_declarations", ["donor_id"])
    _guards(op.get_bind().dialect.name)


def _guards(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(f"""
            CREATE FUNCTION receipts_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% {MESSAGE}', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
            END $$""")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION receipts_refuse_change()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION receipts_refuse_change()")
        return
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} {MESSAGE}'); END")


def downgrade() -> None:
    issued = op.get_bind().execute(sa.text("SELECT count(*) FROM receipts")).scalar()
    if issued:  # a register is kept: a downgrade must not forget receipts that donors hold
        raise RuntimeError(f"{issued} receipts are issued: revision 0011 has no register for them")
    op.drop_index("ix_gift_aid_declarations_donor_id", table_name="gift_aid_declarations")
    op.drop_table("gift_aid_declarations")
    op.drop_index("ix_receipt_deliveries_status_due_at", table_name="receipt_deliveries")
    for table in ("receipt_deliveries", "receipt_official_bills", "receipt_documents", "receipt_voids",
                  "receipt_lines"):
        op.drop_table(table)
    op.drop_index("ix_receipts_donor_id", table_name="receipts")
    op.drop_index("ix_receipts_organisation_id", table_name="receipts")
    op.drop_table("receipts")
    op.drop_table("receipt_counters")
    op.drop_table("receipt_settings")
    with op.batch_alter_table("donations") as batch:
        batch.drop_constraint("ck_donations_goods_value_within_amount", type_="check")
        batch.drop_column("goods_value_minor")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION receipts_refuse_change()")
