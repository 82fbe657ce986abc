"""The events payment processors send (Stripe's webhook events), each stored once by its id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

A processor delivers an event at least once, sometimes several times and out of order: the event's own id,
unique per channel, makes its storing idempotent, and the row is written in the transaction whose commit
acknowledges it. The body is kept exactly as it was signed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "processor_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.CheckConstraint("status IN ('received', 'applied', 'ignored', 'failed')",
                           name=op.f("ck_processor_events_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processor_events")),
        sa.UniqueConstraint("channel", "event_id", name=op.f("uq_processor_events_channel_event_id")),
    )
    op.create_index("ix_processor_events_status_id", "processor_events", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_processor_events_status_id", table_name="processor_events")
    op.drop_table("processor_events")
