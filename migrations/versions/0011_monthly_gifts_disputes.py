"""Monthly gifts, confirmation emails, and a processor's clearing account that may go below zero.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

``online_gifts``: ``monthly`` (the donor asked for a monthly gift: a subscription at the processor), its
``subscription_id`` there and when it was ``cancelled_at``; each later month's payment is a gift of its own whose
``plan_id`` names the first and whose ``invoice_id`` (unique) names the processor's invoice it paid, so an invoice is
recorded once. ``confirmed_at``: when the donor's confirmation email was sent (none yet: to be sent, so that a mail
server that is down delays an email and loses none; gifts recorded before this revision count as sent);
``confirmation_claimed_at``: when a sender took it (a sender that died is replaced after ten minutes).

The processor clearing accounts lose their overdraft limit: a refund or a dispute that comes after the payout takes
the money back from the processor's balance (or from the next payouts), so a fund's share of that balance can be
below zero — it then owes the processor, and the books must be able to say so. Bank and cash keep their limits.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CLEARING = "role = 'processor_clearing' AND balance_limit = 'credits_must_not_exceed_debits'"


def upgrade() -> None:
    with op.batch_alter_table("online_gifts") as batch:
        batch.add_column(sa.Column("monthly", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("subscription_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("plan_id", ID, nullable=True))
        batch.add_column(sa.Column("invoice_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirmation_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key("fk_online_gifts_plan_id_online_gifts", "online_gifts", ["plan_id"], ["id"])
        batch.create_unique_constraint("uq_online_gifts_invoice_id", ["invoice_id"])
        batch.create_check_constraint("ck_online_gifts_instalment_of_a_plan",
                                      "plan_id IS NULL OR invoice_id IS NOT NULL")
    op.create_index("ix_online_gifts_subscription_id", "online_gifts", ["subscription_id"])
    op.create_index("ix_online_gifts_payment_id", "online_gifts", ["payment_id"])
    bind = op.get_bind()
    # Gifts recorded before this revision were never owed an email: none is sent for them now.
    bind.execute(sa.text("UPDATE online_gifts SET confirmed_at = updated_at WHERE status = 'succeeded'"))
    clearing = f"SELECT id FROM accounts WHERE {CLEARING}"
    bind.execute(sa.text(f"DELETE FROM daily_balances WHERE account_id IN ({clearing})"))
    bind.execute(sa.text(f"UPDATE accounts SET balance_limit = 'none' WHERE {CLEARING}"))


def downgrade() -> None:
    monthly = op.get_bind().execute(sa.text("SELECT count(*) FROM online_gifts WHERE plan_id IS NOT NULL")).scalar()
    if monthly:  # their donations stay in the books: a downgrade must not forget which plan each paid
        raise RuntimeError(f"{monthly} monthly payments are recorded: revision 0010 has no place for them")
    op.drop_index("ix_online_gifts_payment_id", table_name="online_gifts")
    op.drop_index("ix_online_gifts_subscription_id", table_name="online_gifts")
    with op.batch_alter_table("online_gifts") as batch:
        batch.drop_constraint("ck_online_gifts_instalment_of_a_plan", type_="check")
        batch.drop_constraint("uq_online_gifts_invoice_id", type_="unique")
        batch.drop_constraint("fk_online_gifts_plan_id_online_gifts", type_="foreignkey")
        for column in ("confirmation_claimed_at", "confirmed_at", "cancelled_at", "invoice_id", "plan_id",
                       "subscription_id", "monthly"):
            batch.drop_column(column)
    # (The clearing accounts keep no limit: one of them may be below zero by now.)
