"""The months the public figures read (``monthly_balances``) added by the store's own statements on PostgreSQL too, as
on SQLite since revision 0014, in the statement that writes the postings and their balances: the statement trigger
on postings (a PL/pgSQL call, a transition table and an UPSERT of its own for every gift) cost a fifth of a gift's
time on the server. The guard that months only grow is a condition on the row (``WHEN``), so a month that grows
calls no function at all. PostgreSQL only: SQLite's triggers are unchanged.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SHRINKS = "NEW.debits_minor < OLD.debits_minor OR NEW.credits_minor < OLD.credits_minor"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER postings_add_months ON postings")
    op.execute("DROP FUNCTION ledger_add_months()")
    op.execute("DROP TRIGGER monthly_balances_only_grow ON monthly_balances")
    op.execute(f"CREATE TRIGGER monthly_balances_only_grow BEFORE UPDATE ON monthly_balances FOR EACH ROW "
               f"WHEN ({SHRINKS}) EXECUTE FUNCTION ledger_guard_months()")
    op.execute("CREATE TRIGGER monthly_balances_no_delete BEFORE DELETE ON monthly_balances FOR EACH ROW "
               "EXECUTE FUNCTION ledger_guard_months()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER monthly_balances_no_delete ON monthly_balances")
    op.execute("DROP TRIGGER monthly_balances_only_grow ON monthly_balances")
    op.execute("CREATE TRIGGER monthly_balances_only_grow BEFORE UPDATE OR DELETE ON monthly_balances "
               "FOR EACH ROW EXECUTE FUNCTION ledger_guard_months()")
    # Revision 0017's code does not add the months itself: the trigger comes back (its body as revision 0014 made it).
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
