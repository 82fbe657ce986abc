"""Bank statements imported for reconciliation: each import (its file's digest, the account, the period and the
balances it states) and its lines, each line once per account however many overlapping statements bring it
(``fingerprint``: the bank's own transaction id, else a digest of what the line says); and each organisation's CSV
layouts, saved by name (one per bank).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FORMATS = "format IN ('csv', 'ofx', 'camt053')"


def upgrade() -> None:
    op.create_table(
        "bank_statements",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bank_account", sa.String(100), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("opening_minor", sa.BigInteger(), nullable=True),
        sa.Column("closing_minor", sa.BigInteger(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("new_line_count", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bank_statements"),
        sa.ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                                name="fk_bank_statements_account_accounts"),
        sa.UniqueConstraint("organisation_id", "id", name="uq_bank_statements_organisation_id_id"),
        sa.CheckConstraint(FORMATS, name="ck_bank_statements_format"),
        sa.CheckConstraint("period_start <= period_end", name="ck_bank_statements_period_in_order"),
        sa.CheckConstraint("new_line_count >= 0 AND new_line_count <= line_count",
                           name="ck_bank_statements_counts"),
    )
    op.create_index("ix_bank_statements_account_id", "bank_statements", ["account_id"])
    op.create_table(
        "statement_lines",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("statement_id", ID, nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("counterparty", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("bank_id", sa.String(100), nullable=False),
        sa.Column("fingerprint", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_statement_lines"),
        sa.ForeignKeyConstraint(["organisation_id", "statement_id"],
                                ["bank_statements.organisation_id", "bank_statements.id"],
                                name="fk_statement_lines_statement_bank_statements"),
        sa.UniqueConstraint("account_id", "fingerprint", name="uq_statement_lines_account_id_fingerprint"),
        sa.CheckConstraint("amount_minor <> 0", name="ck_statement_lines_amount_not_zero"),
    )
    op.create_index("ix_statement_lines_account_id_booked_on", "statement_lines", ["account_id", "booked_on"])
    op.create_table(
        "statement_mappings",
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", "name", name="pk_statement_mappings"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_statement_mappings_organisation_id_organisations"),
    )
    op.create_table(
        "reconciliation_matches",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("rule", sa.String(30), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("line_ids", sa.Text(), nullable=False),
        sa.Column("entry_ids", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("unmatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unmatched_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_matches"),
        sa.ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                                name="fk_reconciliation_matches_account_accounts"),
        sa.CheckConstraint("(unmatched_at IS NULL) = (unmatched_by IS NULL)",
                           name="ck_reconciliation_matches_unmatched_by_someone"),
    )
    op.create_index("ix_reconciliation_matches_account_id", "reconciliation_matches", ["account_id"])
    with op.batch_alter_table("statement_lines") as batch:
        batch.add_column(sa.Column("match_id", ID, nullable=True))
        batch.create_foreign_key("fk_statement_lines_match_id_reconciliation_matches", "reconciliation_matches",
                                 ["match_id"], ["id"])
    op.create_index("ix_statement_lines_match_id", "statement_lines", ["match_id"])
    op.create_table(
        "matched_entries",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("match_id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "entry_id", name="pk_matched_entries"),
        sa.ForeignKeyConstraint(["match_id"], ["reconciliation_matches.id"],
                                name="fk_matched_entries_match_id_reconciliation_matches"),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], name="fk_matched_entries_entry_id_entries"),
    )


def downgrade() -> None:
    op.drop_table("matched_entries")
    op.drop_index("ix_statement_lines_match_id", table_name="statement_lines")
    with op.batch_alter_table("statement_lines") as batch:
        batch.drop_constraint("fk_statement_lines_match_id_reconciliation_matches", type_="foreignkey")
        batch.drop_column("match_id")
    op.drop_index("ix_reconciliation_matches_account_id", table_name="reconciliation_matches")
    op.drop_table("reconciliation_matches")
    op.drop_table("statement_mappings")
    op.drop_index("ix_statement_lines_account_id_booked_on", table_name="statement_lines")
    op.drop_table("statement_lines")
    op.drop_index("ix_bank_statements_account_id", table_name="bank_statements")
    op.drop_table("bank_statements")
