"""Each organisation's public version: a number the database raises whenever something its public pages show
changes without an entry being posted (the organisation, a fund or an account added or edited, a donor edited, a
report published). With the organisation's newest entry it tells a cached public page whether it is still true.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# table, the events that raise the version, the column naming the organisation
WATCHED = (("organisations", "INSERT OR UPDATE", "id"), ("funds", "INSERT OR UPDATE", "organisation_id"),
           ("accounts", "INSERT OR UPDATE", "organisation_id"), ("donors", "UPDATE", "organisation_id"),
           ("published_reports", "INSERT", "organisation_id"))


def upgrade() -> None:
    op.create_table(
        "public_versions",
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", name="pk_public_versions"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_public_versions_organisation_id_organisations"),
    )
    op.execute("INSERT INTO public_versions SELECT id, 1 FROM organisations")
    raise_version = ("INSERT INTO public_versions (organisation_id, version) VALUES (NEW.{column}, 1) "
                     "ON CONFLICT (organisation_id) DO UPDATE SET version = public_versions.version + 1;")
    if op.get_bind().dialect.name == "postgresql":
        for column in ("id", "organisation_id"):
            op.execute(f"""
                CREATE FUNCTION ledger_raise_public_version_by_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    {raise_version.format(column=column)}
                    RETURN NULL;
                END $$""")
        for table, events, column in WATCHED:
            op.execute(f"CREATE TRIGGER {table}_raise_public_version AFTER {events} ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION ledger_raise_public_version_by_{column}()")
        return
    for table, events, column in WATCHED:
        for event in events.split(" OR "):
            op.execute(f"CREATE TRIGGER {table}_raise_public_version_{event.lower()} AFTER {event} ON {table} "
                       f"BEGIN {raise_version.format(column=column)} END")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, events, _column in WATCHED:
        if postgresql:
            op.execute(f"DROP TRIGGER {table}_raise_public_version ON {table}")
        else:
            for event in events.split(" OR "):
                op.execute(f"DROP TRIGGER {table}_raise_public_version_{event.lower()}")
    if postgresql:
        for column in ("id", "organisation_id"):
            op.execute(f"DROP FUNCTION ledger_raise_public_version_by_{column}()")
    op.drop_table("public_versions")
