"""Corrections a real office needs: grants paid in parts and cancelled, refunds cancelled, the payer of a grant
never its requester.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

- ``grant_payments``: one row per payment of a grant, with its entry and who paid it. The database refuses the
  grant's requester as payer, as it refuses them as approver (the composite key copies the requester from the
  grant). Each grant paid before this revision becomes one payment; its payer is the user whose email the entry
  recorded, when that user is not the requester (else unknown: NULL, which only rows made here hold).
- ``grants``: ``paid_minor`` and ``cancelled_minor`` (never more than the amount between them), the cancellation's
  entry, when, by whom and why; statuses ``partly_paid`` and ``cancelled``; ``paid_entry_id`` goes (its entries
  are the payments' now). On SQLite the table is rebuilt (a CHECK cannot be altered there), the foreign keys
  switched off for it and every one checked before the commit (ledger.db.schema).
- ``refunds``: a refund recorded by mistake is cancelled through its record: the reversal of its entry, when,
  by whom and why.
- ``daily_balances``: for each balance of an account with a limit, its cumulative totals at the end of every day
  it moved, so that a limit holds on every date and not only today; filled from the postings, then guarded by a
  trigger that refuses a row breaking its account's limit (history written before this revision is not judged).
- ``organisations.books_opened_on``: no entry may be dated before it. It is kept as a closed period too, from the
  first day there is to the day before, so the closed-period trigger of revision 0001 refuses such a posting. For
  an organisation made before this revision: the day it was created, or its earliest entry's date if earlier.
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = "'requested', 'approved', 'partly_paid', 'paid', 'cancelled', 'rejected'"
GRANT_CHECKS = {
    "status": f"status IN ({STATUSES})",
    "approved_posted": "(status IN ('approved', 'partly_paid', 'paid', 'cancelled'))"
                       " = (approved_entry_id IS NOT NULL)",
    "paid_within_amount": "paid_minor >= 0 AND cancelled_minor >= 0 AND paid_minor + cancelled_minor <= amount_minor",
    "paid_matches_status": (
        "(status IN ('requested', 'rejected', 'approved') AND paid_minor = 0)"
        " OR (status = 'partly_paid' AND paid_minor > 0 AND paid_minor < amount_minor)"
        " OR (status = 'paid' AND paid_minor = amount_minor)"
        " OR (status = 'cancelled' AND paid_minor + cancelled_minor = amount_minor)"),
    "cancelled_posted": "(status = 'cancelled') = (cancelled_entry_id IS NOT NULL AND cancelled_minor > 0)",
}


def upgrade() -> None:
    # On SQLite the grants table is rebuilt while approvals point at it: ledger.db.schema runs a migration with the
    # foreign keys off and checks them all before it commits, as SQLite prescribes for such a change.
    _create_grant_payments()
    op.execute("""
        INSERT INTO grant_payments (organisation_id, grant_id, requested_by_user_id, amount_minor, paid_on, entry_id,
                                    paid_by_user_id, payer_unknown, created_at)
        SELECT g.organisation_id, g.id, g.requested_by_user_id, g.amount_minor, e.effective_date, e.id, payer.id,
               payer.id IS NULL, e.posted_at
          FROM grants g JOIN entries e ON e.id = g.paid_entry_id
          LEFT JOIN users payer ON payer.email = e.recorded_by AND payer.id <> g.requested_by_user_id
         ORDER BY g.id""")
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("paid_minor", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("cancelled_minor", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("cancelled_entry_id", ID, nullable=True))
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancelled_by_user_id", ID, nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.String(500), nullable=False, server_default=""))
        batch.alter_column("status", type_=sa.String(20), existing_type=sa.String(10), existing_nullable=False)
        for name in ("status", "approved_posted", "paid_posted"):
            batch.drop_constraint(f"ck_grants_{name}", type_="check")
        batch.drop_constraint("fk_grants_paid_entry_id_entries", type_="foreignkey")
        batch.create_foreign_key("fk_grants_cancelled_entry_id_entries", "entries", ["cancelled_entry_id"], ["id"])
        batch.create_foreign_key("fk_grants_cancelled_by_user_id_users", "users", ["cancelled_by_user_id"], ["id"])
    op.execute("UPDATE grants SET paid_minor = amount_minor WHERE status = 'paid'")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("paid_entry_id")
        for name, condition in GRANT_CHECKS.items():
            batch.create_check_constraint(f"ck_grants_{name}", condition)
    _add_refund_cancellation()
    _add_books_opened_on()
    _create_daily_balances()


# The cumulative totals of each limited balance at the end of each day it moved, from its postings: what
# ledger.books.charts runs again for one account whose limit changes (keep the two alike).
DAILY_FROM_POSTINGS = """
INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor, credits_minor)
SELECT account_id, fund_id, currency, day, organisation_id,
       sum(debits) OVER (PARTITION BY account_id, fund_id, currency ORDER BY day),
       sum(credits) OVER (PARTITION BY account_id, fund_id, currency ORDER BY day)
  FROM (SELECT s.account_id, s.fund_id, s.currency, s.effective_date AS day, min(s.organisation_id) AS organisation_id,
               sum(s.debit) AS debits, sum(s.credit) AS credits
          FROM (SELECT debit_account_id AS account_id, fund_id, currency, effective_date, organisation_id,
                       amount_minor AS debit, 0 AS credit FROM postings
                UNION ALL
                SELECT credit_account_id, fund_id, currency, effective_date, organisation_id, 0, amount_minor
                  FROM postings) AS s
          JOIN accounts a ON a.id = s.account_id AND a.balance_limit <> 'none'
         GROUP BY s.account_id, s.fund_id, s.currency, s.effective_date) AS days
"""
# A day's row may not end further beyond its account's limit than the day before it did (for an update: than the
# row did before). Books kept before this revision may hold days beyond a limit: a later entry that does not make
# such a day worse is not refused for it. "was" names the totals compared with.
DAY_WORSE = """
    ((a.balance_limit = 'credits_must_not_exceed_debits'
      AND NEW.credits_minor - NEW.debits_minor > max_or_zero(0, was_credits - was_debits))
     OR (a.balance_limit = 'debits_must_not_exceed_credits'
      AND NEW.debits_minor - NEW.credits_minor > max_or_zero(0, was_debits - was_credits)))"""
DAY_BEFORE = """(SELECT {column} FROM daily_balances y WHERE y.account_id = NEW.account_id AND y.fund_id = NEW.fund_id
                 AND y.currency = NEW.currency AND y.day < NEW.day ORDER BY y.day DESC LIMIT 1)"""
DAY_LIMIT_MESSAGE = "account_limit_exceeded: a balance would break its account''s limit at the end of a day"


def _worse(was_debits: str, was_credits: str, greatest: str) -> str:
    return (DAY_WORSE.replace("was_debits", was_debits).replace("was_credits", was_credits)
            .replace("max_or_zero", greatest))


def _create_daily_balances() -> None:
    op.create_table(
        "daily_balances",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("fund_id", ID, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("debits_minor", sa.BigInteger(), nullable=False),
        sa.Column("credits_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                                name="fk_daily_balances_account_accounts"),
        sa.ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                                ["funds.organisation_id", "funds.id", "funds.currency"],
                                name="fk_daily_balances_fund_funds"),
        sa.PrimaryKeyConstraint("account_id", "fund_id", "currency", "day", name="pk_daily_balances"),
    )
    op.execute(DAILY_FROM_POSTINGS)
    if op.get_bind().dialect.name == "postgresql":
        # A hot fund's row for today is rewritten by every gift, as its balance row is: the same room for HOT
        # updates, and the same eager vacuuming, keep the chains its readers walk short.
        op.execute("ALTER TABLE daily_balances SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, "
                   "autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02)")
        op.execute(f"""
            CREATE FUNCTION ledger_guard_daily_balances() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE was_debits bigint := 0; was_credits bigint := 0;
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    was_debits := OLD.debits_minor; was_credits := OLD.credits_minor;
                ELSE
                    SELECT y.debits_minor, y.credits_minor INTO was_debits, was_credits FROM daily_balances y
                     WHERE y.account_id = NEW.account_id AND y.fund_id = NEW.fund_id AND y.currency = NEW.currency
                       AND y.day < NEW.day ORDER BY y.day DESC LIMIT 1;
                    was_debits := coalesce(was_debits, 0); was_credits := coalesce(was_credits, 0);
                END IF;
                IF EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id
                             AND {_worse("was_debits", "was_credits", "greatest")}) THEN
                    RAISE EXCEPTION '{DAY_LIMIT_MESSAGE}: account % in fund % (%) on %, debits %, credits %',
                        NEW.account_id, NEW.fund_id, NEW.currency, NEW.day, NEW.debits_minor, NEW.credits_minor
                        USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$""")
        op.execute("CREATE TRIGGER daily_balances_within_limit BEFORE INSERT OR UPDATE ON daily_balances "
                   "FOR EACH ROW EXECUTE FUNCTION ledger_guard_daily_balances()")
        return
    before_debits = f"coalesce({DAY_BEFORE.format(column='debits_minor')}, 0)"
    before_credits = f"coalesce({DAY_BEFORE.format(column='credits_minor')}, 0)"
    for timing, was_debits, was_credits in (("AFTER INSERT", before_debits, before_credits),
                                            ("AFTER UPDATE", "OLD.debits_minor", "OLD.credits_minor")):
        condition = f"EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND " \
                    f"{_worse(was_debits, was_credits, 'max')})"
        op.execute(f"CREATE TRIGGER daily_balances_within_limit_{timing.split()[1].lower()} {timing} ON "
                   f"daily_balances WHEN {condition} BEGIN SELECT RAISE(ABORT, '{DAY_LIMIT_MESSAGE}'); END")


def _add_books_opened_on() -> None:
    # Added with a placeholder default (SQLite adds a NOT NULL column only so, and rebuilding organisations, which
    # every table points at, is not worth it), then set for each organisation.
    op.add_column("organisations", sa.Column("books_opened_on", sa.Date(), nullable=False,
                                             server_default="1900-01-01"))
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT o.id, o.created_at, (SELECT min(e.effective_date) FROM entries e WHERE e.organisation_id = o.id)"
        " FROM organisations o")).all()
    for organisation_id, created_at, earliest in rows:
        created_on = created_at.date() if hasattr(created_at, "date") else dt.date.fromisoformat(str(created_at)[:10])
        earliest = earliest if earliest is None or isinstance(earliest, dt.date) else dt.date.fromisoformat(earliest)
        opened_on = min(created_on, earliest) if earliest else created_on
        bind.execute(sa.text("UPDATE organisations SET books_opened_on = :day WHERE id = :id"),
                     {"day": opened_on, "id": organisation_id})
        bind.execute(sa.text(
            "INSERT INTO periods (organisation_id, start_date, end_date, status, changed_at, changed_by)"
            " VALUES (:id, :first, :last, 'closed', :at, 'migration 0005')"),
            {"id": organisation_id, "first": dt.date.min, "last": opened_on - dt.timedelta(days=1),
             "at": dt.datetime.now(dt.UTC)})
    if bind.dialect.name == "postgresql":
        op.alter_column("organisations", "books_opened_on", server_default=None)


def _create_grant_payments() -> None:
    op.create_table(
        "grant_payments",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("requested_by_user_id", ID, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("paid_by_user_id", ID, nullable=True),
        sa.Column("payer_unknown", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name="ck_grant_payments_amount_positive"),
        sa.CheckConstraint("(paid_by_user_id IS NULL) = payer_unknown", name="ck_grant_payments_payer_known"),
        sa.CheckConstraint("paid_by_user_id <> requested_by_user_id", name="ck_grant_payments_not_the_requester"),
        sa.ForeignKeyConstraint(["grant_id", "requested_by_user_id"], ["grants.id", "grants.requested_by_user_id"],
                                name="fk_grant_payments_grant_grants"),
        sa.ForeignKeyConstraint(["organisation_id", "entry_id", "paid_on"],
                                ["entries.organisation_id", "entries.id", "entries.effective_date"],
                                name="fk_grant_payments_entry_entries"),
        sa.ForeignKeyConstraint(["paid_by_user_id"], ["users.id"], name="fk_grant_payments_paid_by_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_grant_payments"),
        sa.UniqueConstraint("entry_id", name="uq_grant_payments_entry_id"),
    )
    op.create_index("ix_grant_payments_grant_id", "grant_payments", ["grant_id"])


def _add_refund_cancellation() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("cancelled_entry_id", ID, nullable=True))
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancelled_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.String(500), nullable=False, server_default=""))
        batch.create_foreign_key("fk_refunds_cancelled_entry_id_entries", "entries", ["cancelled_entry_id"], ["id"])
    op.create_index("uq_refunds_cancelled_entry_id", "refunds", ["cancelled_entry_id"], unique=True)


def downgrade() -> None:
    # Back to one payment per grant: a grant paid in parts, or cancelled, cannot be expressed before this revision.
    bind = op.get_bind()
    if bind.execute(sa.text(
            "SELECT count(*) FROM grants WHERE status IN ('partly_paid', 'cancelled')"
            " OR id IN (SELECT grant_id FROM grant_payments GROUP BY grant_id HAVING count(*) > 1)")).scalar():
        raise RuntimeError("grants paid in parts or cancelled exist: revision 0004 cannot hold them")
    if bind.execute(sa.text("SELECT count(*) FROM refunds WHERE cancelled_entry_id IS NOT NULL")).scalar():
        raise RuntimeError("cancelled refunds exist: revision 0004 cannot tell them from live ones")
    op.drop_table("daily_balances")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION ledger_guard_daily_balances()")
    op.execute(sa.text("DELETE FROM periods WHERE start_date = :first").bindparams(first=dt.date.min))
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("books_opened_on")
    op.drop_index("uq_refunds_cancelled_entry_id", table_name="refunds")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint("fk_refunds_cancelled_entry_id_entries", type_="foreignkey")
        for column in ("cancel_reason", "cancelled_by", "cancelled_at", "cancelled_entry_id"):
            batch.drop_column(column)
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("paid_entry_id", ID, nullable=True))
    op.execute("UPDATE grants SET paid_entry_id ="
               " (SELECT max(entry_id) FROM grant_payments p WHERE p.grant_id = grants.id)")
    with op.batch_alter_table("grants") as batch:
        for name in GRANT_CHECKS:
            batch.drop_constraint(f"ck_grants_{name}", type_="check")
        batch.drop_constraint("fk_grants_cancelled_entry_id_entries", type_="foreignkey")
        batch.drop_constraint("fk_grants_cancelled_by_user_id_users", type_="foreignkey")
        for column in ("cancel_reason", "cancelled_by_user_id", "cancelled_at", "cancelled_entry_id",
                       "cancelled_minor", "paid_minor"):
            batch.drop_column(column)
        batch.alter_column("status", type_=sa.String(10), existing_type=sa.String(20), existing_nullable=False)
        batch.create_foreign_key("fk_grants_paid_entry_id_entries", "entries", ["paid_entry_id"], ["id"])
        batch.create_check_constraint("ck_grants_status", "status IN ('requested', 'approved', 'paid', 'rejected')")
        batch.create_check_constraint("ck_grants_approved_posted",
                                      "(status IN ('approved', 'paid')) = (approved_entry_id IS NOT NULL)")
        batch.create_check_constraint("ck_grants_paid_posted", "(status = 'paid') = (paid_entry_id IS NOT NULL)")
    op.drop_index("ix_grant_payments_grant_id", table_name="grant_payments")
    op.drop_table("grant_payments")
