"""Tenants and the versioned history of their configuration.

`tenant_config_versions` is append-only: every apply that changes the canonical
JSON of a `schemas.tenant.TenantConfig` adds version n + 1; nothing is updated
or deleted, so finance can always see what was in effect and who changed it.
The service that writes these rows is `store.tenant_config`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, UTCDateTime, utcnow


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TenantConfigVersion(Base):
    """One applied version of a tenant's configuration (the TenantConfig JSON, canonical form)."""

    __tablename__ = "tenant_config_versions"

    tenant_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    config: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    applied_by: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
