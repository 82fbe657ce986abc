"""Public figures kept with the postings, and published reports.

``monthly_balances``: each (account, fund, currency)'s debits and credits by calendar month, kept as postings go in
(on PostgreSQL by a statement trigger, one UPSERT per statement; on SQLite by the store, one UPSERT per month a batch
touches), so the public pages and reports read months, never the postings. ``fund_figures``: each fund's count of
gifts, of donors (distinct) and of anonymous gifts, kept by a trigger on ``donations``. ``grants.payee_kind``:
whether the payee is an organisation or an individual (whose name the public pages mask). ``published_reports``:
numbered, append-only snapshots of a period's figures with the seal they were computed under and a Merkle root
over the period's gifts.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SHRINKS = "NEW.debits_minor < OLD.debits_minor OR NEW.credits_minor < OLD.credits_minor"
REPORTS_MESSAGE = "published_reports is append-only: a report is corrected by a new version, never changed"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _monthly_balances(dialect)
    _fund_figures(dialect)
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("payee_kind", sa.String(20), nullable=False, server_default="organisation"))
        batch.create_check_constraint("ck_grants_payee_kind", "payee_kind IN ('organisation', 'individual')")
    op.create_index("ix_grants_fund_id_id", "grants", ["fund_id", "id"])
    op.create_index("ix_donations_fund_id_received_on_id", "donations", ["fund_id", "received_on", "id"])
    op.create_index("ix_donations_organisation_id_received_on_id", "donations",
                    ["organisation_id", "received_on", "id"])
    _published_reports(dialect)


def _monthly_balances(dialect: str) -> None:
    op.create_table(
        "monthly_balances",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("fund_id", ID, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("debits_minor", sa.BigInteger(), nullable=False),
        sa.Column("credits_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "fund_id", "currency", "month", name="pk_monthly_balances"),
        sa.ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                                name="fk_monthly_balances_account_accounts"),
        sa.ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                                ["funds.organisation_id", "funds.id", "funds.currency"],
                                name="fk_monthly_balances_fund_funds"),
        sa.CheckConstraint("debits_minor >= 0 AND credits_minor >= 0", name="ck_monthly_balances_totals_not_negative"),
    )
    op.create_index("ix_monthly_balances_fund_id_month", "monthly_balances", ["fund_id", "month"])
    op.create_index("ix_monthly_balances_organisation_id_month", "monthly_balances", ["organisation_id", "month"])
    if dialect == "postgresql":
        op.execute("""
            INSERT INTO monthly_balances
            SELECT account_id, fund_id, currency, month, min(organisation_id), sum(debit), sum(credit) FROM (
              SELECT debit_account_id AS account_id, fund_id, currency,
                     date_trunc('month', effective_date)::date AS month, organisation_id, amount_minor AS debit,
                     0 AS credit FROM postings
              UNION ALL
              SELECT credit_account_id, fund_id, currency, date_trunc('month', effective_date)::date,
                     organisation_id, 0, amount_minor FROM postings) AS sides
            GROUP BY account_id, fund_id, currency, month""")
        # One statement trigger: a write of many postings (a bulk import) adds its months in one UPSERT, in key
        # order (the order the balances were locked in, so writers meeting on a month never deadlock).
        op.execute("""
            CREATE FUNCTION ledger_add_months() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO monthly_balances AS m
                SELECT account_id, fund_id, currency, month, min(organisation_id), sum(debit), sum(credit) FROM (
                  SELECT debit_account_id AS account_id, fund_id, currency,
                         date_trunc('month', effective_date)::date AS month, organisation_id,
                         amount_minor AS debit, 0 AS credit FROM fresh
                  UNION ALL
                  SELECT credit_account_id, fund_id, currency, date_trunc('month', effective_date)::date,
                         organisation_id, 0, amount_minor FROM fresh) AS sides
                GROUP BY account_id, fund_id, currency, month
                ORDER BY account_id, fund_id, currency, month
                ON CONFLICT (account_id, fund_id, currency, month) DO UPDATE
                  SET debits_minor = m.debits_minor + excluded.debits_minor,
                      credits_minor = m.credits_minor + excluded.credits_minor;
                RETURN NULL;
            END $$""")
        op.execute("CREATE TRIGGER postings_add_months AFTER INSERT ON postings REFERENCING NEW TABLE AS fresh "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ledger_add_months()")
        op.execute(f"""
            CREATE FUNCTION ledger_guard_months() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('DELETE', 'TRUNCATE') OR {SHRINKS} THEN
                    RAISE EXCEPTION 'monthly_balances are derived from postings: they only grow'
                        USING ERRCODE = 'restrict_violation';
                END IF;
                RETURN NEW;
            END $$""")
        op.execute("CREATE TRIGGER monthly_balances_only_grow BEFORE UPDATE OR DELETE ON monthly_balances "
                   "FOR EACH ROW EXECUTE FUNCTION ledger_guard_months()")
        op.execute("CREATE TRIGGER monthly_balances_no_truncate BEFORE TRUNCATE ON monthly_balances "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ledger_guard_months()")
        return
    op.execute("""
        INSERT INTO monthly_balances
        SELECT account_id, fund_id, currency, month, min(organisation_id), sum(debit), sum(credit) FROM (
          SELECT debit_account_id AS account_id, fund_id, currency, substr(effective_date, 1, 8) || '01' AS month,
                 organisation_id, amount_minor AS debit, 0 AS credit FROM postings
          UNION ALL
          SELECT credit_account_id, fund_id, currency, substr(effective_date, 1, 8) || '01', organisation_id, 0,
                 amount_minor FROM postings) AS sides
        GROUP BY account_id, fund_id, currency, month""")
    # SQLite has no statement triggers, and a row trigger (two UPSERTs a posting) cost a third of a batch's speed:
    # there the store adds each batch's months in the savepoint that writes its postings (ledger.db.store).
    op.execute(f"CREATE TRIGGER monthly_balances_only_grow BEFORE UPDATE ON monthly_balances WHEN {SHRINKS} "
               "BEGIN SELECT RAISE(ABORT, 'monthly_balances are derived from postings: they only grow'); END")
    op.execute("CREATE TRIGGER monthly_balances_no_delete BEFORE DELETE ON monthly_balances "
               "BEGIN SELECT RAISE(ABORT, 'monthly_balances are derived from postings: they only grow'); END")


def _fund_figures(dialect: str) -> None:
    op.create_table(
        "fund_figures",
        sa.Column("fund_id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("gift_count", sa.BigInteger(), nullable=False),
        sa.Column("donor_count", sa.BigInteger(), nullable=False),
        sa.Column("anonymous_gift_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("fund_id", name="pk_fund_figures"),
        sa.ForeignKeyConstraint(["fund_id"], ["funds.id"], name="fk_fund_figures_fund_id_funds"),
    )
    op.create_index("ix_donations_fund_id_donor_id", "donations", ["fund_id", "donor_id"])
    op.execute("""
        INSERT INTO fund_figures
        SELECT fund_id, min(organisation_id), count(*), count(DISTINCT donor_id),
               sum(CASE WHEN donor_id IS NULL THEN 1 ELSE 0 END) FROM donations GROUP BY fund_id""")
    if dialect == "postgresql":
        # One statement trigger, so that a statement writing many gifts counts them in two statements, not a row's
        # update each (a million updates of one row in one transaction grow its version chain without end). The
        # gifts are counted first, which waits for any writer counting gifts to the same funds; the donors new to a
        # fund are then looked for in a statement of its own, whose snapshot (read committed) sees that writer's
        # gifts: two first gifts of one donor written at once count one donor.
        op.execute("""
            CREATE FUNCTION ledger_count_gifts() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO fund_figures AS f
                SELECT fund_id, min(organisation_id), count(*), 0, count(*) FILTER (WHERE donor_id IS NULL)
                  FROM fresh GROUP BY fund_id ORDER BY fund_id
                ON CONFLICT (fund_id) DO UPDATE
                  SET gift_count = f.gift_count + excluded.gift_count,
                      anonymous_gift_count = f.anonymous_gift_count + excluded.anonymous_gift_count;
                -- a donor is new to a fund when every gift of theirs to it is one of this statement's
                UPDATE fund_figures f SET donor_count = f.donor_count + n.donors
                  FROM (SELECT p.fund_id, count(*) AS donors
                          FROM (SELECT fund_id, donor_id, count(*) AS given FROM fresh WHERE donor_id IS NOT NULL
                                 GROUP BY fund_id, donor_id) AS p
                         WHERE (SELECT count(*) FROM donations d
                                 WHERE d.fund_id = p.fund_id AND d.donor_id = p.donor_id) = p.given
                         GROUP BY p.fund_id) AS n
                 WHERE f.fund_id = n.fund_id;
                RETURN NULL;
            END $$""")
        op.execute("CREATE TRIGGER donations_count_gift AFTER INSERT ON donations REFERENCING NEW TABLE AS fresh "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ledger_count_gifts()")
        return
    op.execute("""
        CREATE TRIGGER donations_count_gift AFTER INSERT ON donations BEGIN
          INSERT INTO fund_figures (fund_id, organisation_id, gift_count, donor_count, anonymous_gift_count)
          VALUES (NEW.fund_id, NEW.organisation_id, 1,
                  NEW.donor_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM donations WHERE fund_id = NEW.fund_id AND donor_id = NEW.donor_id AND id <> NEW.id),
                  NEW.donor_id IS NULL)
          ON CONFLICT (fund_id) DO UPDATE
            SET gift_count = gift_count + 1, donor_count = donor_count + excluded.donor_count,
                anonymous_gift_count = anonymous_gift_count + excluded.anonymous_gift_count;
        END""")


def _published_reports(dialect: str) -> None:
    op.create_table(
        "published_reports",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("fund_id", ID, nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("series", sa.String(80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("replaces_id", ID, nullable=True),
        sa.Column("correction_note", sa.Text(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("figures_sha256", sa.String(64), nullable=False),
        sa.Column("donation_count", sa.BigInteger(), nullable=False),
        sa.Column("merkle_root", sa.String(64), nullable=False),
        sa.Column("leaves", sa.LargeBinary(), nullable=False),
        sa.Column("seal_batch_hash", sa.String(64), nullable=False),
        sa.Column("sealed_through_entry_id", ID, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_published_reports"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_published_reports_organisation_id_organisations"),
        sa.ForeignKeyConstraint(["fund_id"], ["funds.id"], name="fk_published_reports_fund_id_funds"),
        sa.ForeignKeyConstraint(["replaces_id"], ["published_reports.id"],
                                name="fk_published_reports_replaces_id_published_reports"),
        sa.UniqueConstraint("organisation_id", "series", "version", name="uq_published_reports_series_version"),
        sa.UniqueConstraint("replaces_id", name="uq_published_reports_replaces_id"),
        sa.CheckConstraint("period_start <= period_end", name="ck_published_reports_period_in_order"),
        sa.CheckConstraint("version >= 1 AND (version = 1) = (replaces_id IS NULL)",
                           name="ck_published_reports_versions_chain"),
        sa.CheckConstraint("(version = 1) = (correction_note = '')", name="ck_published_reports_correction_explained"),
        sa.CheckConstraint("length(leaves) = 32 * donation_count", name="ck_published_reports_leaves_whole"),
    )
    if dialect == "postgresql":
        op.execute(f"""
            CREATE FUNCTION reports_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{REPORTS_MESSAGE}' USING ERRCODE = 'restrict_violation';
            END $$""")
        op.execute("CREATE TRIGGER published_reports_append_only BEFORE UPDATE OR DELETE ON published_reports "
                   "FOR EACH ROW EXECUTE FUNCTION reports_refuse_change()")
        op.execute("CREATE TRIGGER published_reports_no_truncate BEFORE TRUNCATE ON published_reports "
                   "FOR EACH STATEMENT EXECUTE FUNCTION reports_refuse_change()")
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER published_reports_no_{action.lower()} BEFORE {action} ON published_reports "
                   f"BEGIN SELECT RAISE(ABORT, '{REPORTS_MESSAGE}'); END")


def downgrade() -> None:
    published = op.get_bind().execute(sa.text("SELECT count(*) FROM published_reports")).scalar()
    if published:  # the public holds these numbers: a downgrade must not forget them
        raise RuntimeError(f"{published} reports are published: revision 0013 has no place for them")
    dialect = op.get_bind().dialect.name
    op.drop_table("published_reports")
    for index in ("ix_donations_organisation_id_received_on_id", "ix_donations_fund_id_received_on_id",
                  "ix_donations_fund_id_donor_id"):
        op.drop_index(index, table_name="donations")
    op.drop_index("ix_grants_fund_id_id", table_name="grants")
    with op.batch_alter_table("grants") as batch:
        batch.drop_constraint("ck_grants_payee_kind", type_="check")
        batch.drop_column("payee_kind")
    if dialect == "postgresql":
        op.execute("DROP TRIGGER donations_count_gift ON donations")
        op.execute("DROP TRIGGER postings_add_months ON postings")
    else:
        op.execute("DROP TRIGGER donations_count_gift")
    op.drop_table("fund_figures")
    op.drop_table("monthly_balances")
    if dialect == "postgresql":
        for function in ("reports_refuse_change", "ledger_count_gifts", "ledger_add_months", "ledger_guard_months"):
            op.execute(f"DROP FUNCTION {function}()")
