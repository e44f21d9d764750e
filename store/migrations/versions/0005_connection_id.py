"""The ledger's own id of a connection (Xero: `GET /connections` → `id`), to disconnect one tenant.

Revision ID: 0005_connection_id
Revises: 0004_dead_letters
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_connection_id"
down_revision = "0004_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_connections") as batch:
        batch.add_column(sa.Column("connection_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_connections") as batch:
        batch.drop_column("connection_id")
