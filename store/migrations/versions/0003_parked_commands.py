"""Parked posting commands.

Revision ID: 0003_parked_commands
Revises: 0002_ledger_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.base import UTCDateTime

revision = "0003_parked_commands"
down_revision = "0002_ledger_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_commands",
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("ledger", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("waiting_for", sa.String(32), nullable=False),
        sa.Column("depends_on", sa.String(255), nullable=True),
        sa.Column("not_before", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("command", sa.LargeBinary(), nullable=False),
        sa.Column("times_parked", sa.Integer(), nullable=False),
        sa.Column("parked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_parked_commands")),
    )
    op.create_index(op.f("ix_parked_commands_tenant_id"), "parked_commands", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_parked_commands_tenant_id"), table_name="parked_commands")
    op.drop_table("parked_commands")
