"""The ledger core: organisations, funds, the chart, entries, postings, balances, periods, seals.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Besides the tables, this revision installs the database's own guards, on SQLite and PostgreSQL alike:
entries, postings and seal batches are append-only; no entry is dated inside a closed period; cumulative
balances only grow. The CHECK constraints and composite foreign keys are in the tables themselves.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the (64-bit) rowid.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

APPEND_ONLY = ("entries", "postings", "seal_batches")
APPEND_ONLY_MESSAGE = "is append-only: correct an entry by posting its reversal"

PERIOD_CLOSED_CONDITION = """
    EXISTS (SELECT 1 FROM periods p
            WHERE p.organisation_id = NEW.organisation_id AND p.status = 'closed'
              AND NEW.effective_date BETWEEN p.start_date AND p.end_date)"""

# A balance may not break its account's limit (see ledger/core/chart.py: BalanceLimit). Judged on the row as
# written, AFTER INSERT and BEFORE UPDATE: a CHECK constraint would judge an upsert's proposed row (the
# delta alone) before the conflict turns it into an update, and refuse a payment from money that is there.
BALANCE_BREAKS_LIMIT = """
    EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND (
        (a.balance_limit = 'credits_must_not_exceed_debits' AND NEW.credits_minor > NEW.debits_minor)
        OR (a.balance_limit = 'debits_must_not_exceed_credits' AND NEW.debits_minor > NEW.credits_minor)))"""
LIMIT_MESSAGE = "account_limit_exceeded: a balance would break its account''s limit"

BALANCE_SHRINKS_CONDITION = """
    NEW.debits_minor < OLD.debits_minor OR NEW.credits_minor < OLD.credits_minor
    OR NEW.account_id <> OLD.account_id OR NEW.fund_id <> OLD.fund_id OR NEW.currency <> OLD.currency"""


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("base_currency", sa.String(length=3), nullable=False),
        sa.Column("jurisdiction", sa.String(length=2), nullable=False),
        sa.Column("registration_number", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('foundation', 'charity')", name="ck_organisations_kind"),
        sa.PrimaryKeyConstraint("id", name="pk_organisations"),
        sa.UniqueConstraint(
            "jurisdiction", "registration_number", name="uq_organisations_jurisdiction_registration_number"
        ),
    )
    op.create_table(
        "accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("normal_balance", sa.String(length=6), nullable=False),
        sa.Column("balance_limit", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "balance_limit IN ('none', 'debits_must_not_exceed_credits', 'credits_must_not_exceed_debits')",
            name="ck_accounts_balance_limit",
        ),
        sa.CheckConstraint("normal_balance IN ('debit', 'credit')", name="ck_accounts_normal_balance"),
        sa.CheckConstraint(
            "type IN ('asset', 'liability', 'net_assets', 'revenue', 'expense')", name="ck_accounts_type"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_accounts_organisation_id_organisations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("organisation_id", "code", name="uq_accounts_organisation_id_code"),
        sa.UniqueConstraint("organisation_id", "id", name="uq_accounts_organisation_id_id"),
    )
    op.create_table(
        "entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("reverses_entry_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["reverses_entry_id"], ["entries.id"], name="fk_entries_reverses_entry_id_entries"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_entries_organisation_id_organisations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_entries"),
        sa.UniqueConstraint(
            "organisation_id", "id", "effective_date", name="uq_entries_organisation_id_id_effective_date"
        ),
        sa.UniqueConstraint(
            "organisation_id", "idempotency_key", name="uq_entries_organisation_id_idempotency_key"
        ),
    )
    # An entry is reversed at most once. Partial, because almost no entry is a reversal.
    op.create_index(
        "uq_entries_reverses_entry_id",
        "entries",
        ["reverses_entry_id"],
        unique=True,
        sqlite_where=sa.text("reverses_entry_id IS NOT NULL"),
        postgresql_where=sa.text("reverses_entry_id IS NOT NULL"),
    )
    op.create_table(
        "funds",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('general', 'community', 'project')", name="ck_funds_kind"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_funds_status"),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_funds_organisation_id_organisations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_funds"),
        sa.UniqueConstraint("organisation_id", "code", name="uq_funds_organisation_id_code"),
        sa.UniqueConstraint("organisation_id", "id", "currency", name="uq_funds_organisation_id_id_currency"),
    )
    op.create_table(
        "periods",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_periods_status"),
        sa.CheckConstraint("end_date >= start_date", name="ck_periods_dates_ordered"),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_periods_organisation_id_organisations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_periods"),
        sa.UniqueConstraint("organisation_id", "start_date", name="uq_periods_organisation_id_start_date"),
    )
    op.create_table(
        "seal_batches",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("sequence_no", sa.Integer(), nullable=False),
        sa.Column("first_entry_id", ID, nullable=False),
        sa.Column("last_entry_id", ID, nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("posting_count", sa.Integer(), nullable=False),
        sa.Column("leaves", sa.LargeBinary(), nullable=False),
        sa.Column("merkle_root", sa.String(length=64), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("batch_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_seal_batches_organisation_id_organisations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_seal_batches"),
        sa.UniqueConstraint(
            "organisation_id", "sequence_no", name="uq_seal_batches_organisation_id_sequence_no"
        ),
    )
    op.create_table(
        "balances",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("fund_id", ID, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("debits_minor", sa.BigInteger(), nullable=False),
        sa.Column("credits_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "debits_minor >= 0 AND credits_minor >= 0", name="ck_balances_totals_not_negative"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "account_id"],
            ["accounts.organisation_id", "accounts.id"],
            name="fk_balances_account_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "fund_id", "currency"],
            ["funds.organisation_id", "funds.id", "funds.currency"],
            name="fk_balances_fund_funds",
        ),
        sa.PrimaryKeyConstraint("account_id", "fund_id", "currency", name="pk_balances"),
    )
    op.create_index(
        "ix_balances_organisation_id_fund_id", "balances", ["organisation_id", "fund_id"], unique=False
    )
    op.create_table(
        "postings",
        sa.Column("id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("fund_id", ID, nullable=False),
        sa.Column("debit_account_id", ID, nullable=False),
        sa.Column("credit_account_id", ID, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name="ck_postings_amount_positive"),
        sa.CheckConstraint("debit_account_id <> credit_account_id", name="ck_postings_accounts_differ"),
        sa.ForeignKeyConstraint(
            ["organisation_id", "credit_account_id"],
            ["accounts.organisation_id", "accounts.id"],
            name="fk_postings_credit_account_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "debit_account_id"],
            ["accounts.organisation_id", "accounts.id"],
            name="fk_postings_debit_account_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "entry_id", "effective_date"],
            ["entries.organisation_id", "entries.id", "entries.effective_date"],
            name="fk_postings_entry_entries",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "fund_id", "currency"],
            ["funds.organisation_id", "funds.id", "funds.currency"],
            name="fk_postings_fund_funds",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_postings"),
    )
    op.create_index(
        "ix_postings_credit_account",
        "postings",
        ["credit_account_id", "fund_id", "effective_date", "id"],
        unique=False,
    )
    op.create_index(
        "ix_postings_debit_account",
        "postings",
        ["debit_account_id", "fund_id", "effective_date", "id"],
        unique=False,
    )
    op.create_index("ix_postings_entry_id", "postings", ["entry_id"], unique=False)
    op.create_index(
        "ix_postings_organisation_fund_date",
        "postings",
        ["organisation_id", "fund_id", "effective_date"],
        unique=False,
    )

    if op.get_bind().dialect.name == "postgresql":
        _create_postgresql_guards()
    else:
        _create_sqlite_guards()


def _create_sqlite_guards() -> None:
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} {APPEND_ONLY_MESSAGE}'); END"
            )
    op.execute(
        f"CREATE TRIGGER entries_period_open BEFORE INSERT ON entries WHEN {PERIOD_CLOSED_CONDITION} "
        "BEGIN SELECT RAISE(ABORT, 'period_closed: the entry is dated inside a closed period'); END"
    )
    op.execute(
        f"CREATE TRIGGER balances_only_grow BEFORE UPDATE ON balances WHEN {BALANCE_SHRINKS_CONDITION} "
        "BEGIN SELECT RAISE(ABORT, 'balances only grow: cumulative totals cannot decrease'); END"
    )
    op.execute(
        "CREATE TRIGGER balances_no_delete BEFORE DELETE ON balances "
        "BEGIN SELECT RAISE(ABORT, 'balances are derived from postings and are never deleted'); END"
    )
    for timing in ("AFTER INSERT", "BEFORE UPDATE"):
        op.execute(
            f"CREATE TRIGGER balances_within_limit_{timing.split()[0].lower()} {timing} ON balances "
            f"WHEN {BALANCE_BREAKS_LIMIT} BEGIN SELECT RAISE(ABORT, '{LIMIT_MESSAGE}'); END"
        )


def _create_postgresql_guards() -> None:
    # Every posting rewrites two balance rows, a few of them (a hot fund's bank) thousands of times a
    # minute. Room on each page keeps those updates HOT (no index churn), and vacuuming after every thousand
    # dead versions keeps the chains that readers and writers walk short.
    op.execute(
        "ALTER TABLE balances SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02)"
    )
    op.execute(f"""
        CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% {APPEND_ONLY_MESSAGE}', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
        END $$""")
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
        )
    op.execute(f"""
        CREATE FUNCTION ledger_check_period_open() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {PERIOD_CLOSED_CONDITION} THEN
                RAISE EXCEPTION 'period_closed: entry % is dated % inside a closed period',
                    NEW.id, NEW.effective_date USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$""")
    op.execute(
        "CREATE TRIGGER entries_period_open BEFORE INSERT ON entries "
        "FOR EACH ROW EXECUTE FUNCTION ledger_check_period_open()"
    )
    op.execute(f"""
        CREATE FUNCTION ledger_guard_balances() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
                RAISE EXCEPTION 'balances are derived from postings and are never deleted'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            IF TG_OP = 'UPDATE' AND ({BALANCE_SHRINKS_CONDITION}) THEN
                RAISE EXCEPTION 'balances only grow: cumulative totals cannot decrease'
                    USING ERRCODE = 'check_violation';
            END IF;
            IF {BALANCE_BREAKS_LIMIT} THEN
                RAISE EXCEPTION '{LIMIT_MESSAGE}: account % in fund % (%), debits %, credits %',
                    NEW.account_id, NEW.fund_id, NEW.currency, NEW.debits_minor, NEW.credits_minor
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$""")
    op.execute(
        "CREATE TRIGGER balances_only_grow BEFORE UPDATE OR DELETE ON balances "
        "FOR EACH ROW EXECUTE FUNCTION ledger_guard_balances()"
    )
    # The update is judged by balances_only_grow above; a new row, once inserted, by this one.
    op.execute(
        "CREATE TRIGGER balances_within_limit AFTER INSERT ON balances "
        "FOR EACH ROW EXECUTE FUNCTION ledger_guard_balances()"
    )
    op.execute(
        "CREATE TRIGGER balances_no_truncate BEFORE TRUNCATE ON balances "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_guard_balances()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in ("ledger_guard_balances", "ledger_check_period_open", "ledger_refuse_change"):
            op.execute(f"DROP FUNCTION {function}() CASCADE")
    for table in (
        "seal_batches",
        "periods",
        "balances",
        "postings",
        "entries",
        "accounts",
        "funds",
        "organisations",
    ):
        # Dropping a table drops its triggers with it, on both engines.
        op.drop_table(table)
