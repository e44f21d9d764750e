"""Dead-letter inbox: items, audit history, alert marks, inbox users.

Revision ID: 0004_dead_letters
Revises: 0003_parked_commands
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.base import UTCDateTime

revision = "0004_dead_letters"
down_revision = "0003_parked_commands"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letter_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("replay_key", sa.String(255), nullable=True),
        sa.Column("tenant_id", sa.String(128), nullable=True),
        sa.Column("ledger", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(64), nullable=True),
        sa.Column("order_id", sa.String(255), nullable=True),
        sa.Column("source_id", sa.String(255), nullable=True),
        sa.Column("amount", sa.String(40), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ledger_messages", sa.JSON(), nullable=False),
        sa.Column("ledger_status", sa.Integer(), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_note", sa.Text(), nullable=True),
        sa.Column("first_failed_at", UTCDateTime(), nullable=False),
        sa.Column("last_failed_at", UTCDateTime(), nullable=False),
        sa.Column("last_retry_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("alerted_at", UTCDateTime(), nullable=True),
        sa.Column("last_position", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_items")),
        sa.UniqueConstraint("record_id", name=op.f("uq_dead_letter_items_record_id")),
    )
    for column in ("replay_key", "tenant_id", "reason_code", "status", "last_failed_at"):
        op.create_index(op.f(f"ix_dead_letter_items_{column}"), "dead_letter_items", [column])
    op.create_table(
        "dead_letter_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.String(255), nullable=True),
        sa.Column("tenant_id", sa.String(128), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_audit")),
    )
    for column in ("item_id", "tenant_id", "at"):
        op.create_index(op.f(f"ix_dead_letter_audit_{column}"), "dead_letter_audit", [column])
    op.create_table(
        "alert_marks",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alert_marks")),
    )
    op.create_table(
        "inbox_users",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_inbox_users")),
    )


def downgrade() -> None:
    op.drop_table("inbox_users")
    op.drop_table("alert_marks")
    for column in ("item_id", "tenant_id", "at"):
        op.drop_index(op.f(f"ix_dead_letter_audit_{column}"), table_name="dead_letter_audit")
    op.drop_table("dead_letter_audit")
    for column in ("replay_key", "tenant_id", "reason_code", "status", "last_failed_at"):
        op.drop_index(op.f(f"ix_dead_letter_items_{column}"), table_name="dead_letter_items")
    op.drop_table("dead_letter_items")
