"""Ledger state: OAuth connections (encrypted tokens) and bindings (source id → ledger id).

Revision ID: 0002_ledger_state
Revises: 0001_tenant_config
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.base import UTCDateTime

revision = "0002_ledger_state"
down_revision = "0001_tenant_config"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_connections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("ledger", sa.String(32), nullable=False),
        sa.Column("organisation_id", sa.String(64), nullable=False),
        sa.Column("organisation_name", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("access_token_enc", sa.LargeBinary(), nullable=False),
        sa.Column("refresh_token_enc", sa.LargeBinary(), nullable=False),
        sa.Column("access_expires_at", UTCDateTime(), nullable=False),
        sa.Column("refreshed_at", UTCDateTime(), nullable=False),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("day_parked_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_connections"),
        sa.UniqueConstraint("tenant_id", "ledger", name="uq_ledger_connections_tenant_id"),
        sa.CheckConstraint(
            "status IN ('active', 'needs_reconnect', 'disconnected')", name="ck_ledger_connections_status"
        ),
    )
    op.create_table(
        "bindings",
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("ledger", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "ledger", "source_id", name="pk_bindings"),
    )


def downgrade() -> None:
    op.drop_table("bindings")
    op.drop_table("ledger_connections")
