"""The ledger's own id of a connection (Xero: `GET /connections` → `id`), to disconnect one tenant;
the organisation a tenant's bindings were made in (`binding_organisations`).

Revision ID: 0005_connection_id
Revises: 0004_dead_letters
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.base import UTCDateTime

revision = "0005_connection_id"
down_revision = "0004_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_connections") as batch:
        batch.add_column(sa.Column("connection_id", sa.String(64), nullable=True))
    op.create_table(
        "binding_organisations",
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("ledger", sa.String(32), nullable=False),
        sa.Column("organisation_id", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "ledger", name=op.f("pk_binding_organisations")),
    )


def downgrade() -> None:
    op.drop_table("binding_organisations")
    with op.batch_alter_table("ledger_connections") as batch:
        batch.drop_column("connection_id")
