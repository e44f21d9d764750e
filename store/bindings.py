"""Bindings: (tenant, ledger, source_id) → the ledger's document id, written as soon as a post succeeds.

A row with `external_id` NULL is a *pending intent*: a create for that source was sent (or
was about to be sent) and its outcome is unknown. Connectors write it before the HTTP call
and look for the document in the ledger before creating it again (see the Xero connector).
`record()` turns an intent into a binding; an existing binding is never overwritten.

`binding_organisations` holds, per (tenant, ledger), the ledger organisation the bindings were
made in (`set_organisation` when a connection is stored; it outlives a disconnect): bindings
are only true in that organisation, so connecting another one while documents are bound is
refused (a document would look "already bound" in an organisation that does not have it).
`clear()` deletes a tenant's bindings together with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import String, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.base import Base, UTCDateTime, utcnow


class Binding(Base):
    __tablename__ = "bindings"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ledger: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def bound(self) -> bool:
        return self.external_id is not None

    def __repr__(self) -> str:
        return (
            f"Binding({self.tenant_id!r}, {self.ledger!r}, {self.source_id!r} -> {self.external_id!r}, "
            f"kind={self.kind!r})"
        )


class BoundOrganisation(Base):
    """The ledger organisation a tenant's bindings were made in (outlives the connection row)."""

    __tablename__ = "binding_organisations"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ledger: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def organisation(session: Session, tenant_id: str, ledger: str) -> str | None:
    """The organisation the tenant's bindings were made in (None: not recorded)."""
    row = session.get(BoundOrganisation, (tenant_id, ledger))
    return row.organisation_id if row is not None else None


def has_documents(session: Session, tenant_id: str, ledger: str) -> bool:
    """Whether any binding or pending intent exists for the tenant and ledger."""
    stmt = select(Binding.source_id).where(Binding.tenant_id == tenant_id, Binding.ledger == ledger).limit(1)
    return session.scalar(stmt) is not None


def set_organisation(session: Session, tenant_id: str, ledger: str, organisation_id: str) -> None:
    """Record (or replace) the organisation of the tenant's bindings. The caller checks and commits."""
    row = session.get(BoundOrganisation, (tenant_id, ledger))
    if row is None:
        session.add(BoundOrganisation(tenant_id=tenant_id, ledger=ledger, organisation_id=organisation_id))
    else:
        row.organisation_id = organisation_id
    session.flush()


def clear(session: Session, tenant_id: str, ledger: str) -> int:
    """Delete every binding and intent of the tenant in `ledger`, and their organisation (before
    connecting the tenant to another organisation). Returns the rows deleted; caller commits."""
    result = session.execute(delete(Binding).where(Binding.tenant_id == tenant_id, Binding.ledger == ledger))
    session.execute(
        delete(BoundOrganisation).where(
            BoundOrganisation.tenant_id == tenant_id, BoundOrganisation.ledger == ledger
        )
    )
    return int(result.rowcount or 0)


def get(session: Session, tenant_id: str, ledger: str, source_id: str) -> Binding | None:
    """The row for one source, bound or pending (check `.bound`)."""
    return session.get(Binding, (tenant_id, ledger, source_id))


def get_many(session: Session, tenant_id: str, ledger: str, source_ids: Iterable[str]) -> dict[str, Binding]:
    ids = sorted(set(source_ids))
    found: dict[str, Binding] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = session.scalars(
            select(Binding).where(
                Binding.tenant_id == tenant_id, Binding.ledger == ledger, Binding.source_id.in_(chunk)
            )
        )
        found.update({row.source_id: row for row in rows})
    return found


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def record(
    session: Session,
    *,
    tenant_id: str,
    ledger: str,
    source_id: str,
    external_id: str,
    kind: str,
    idempotency_key: str,
) -> Binding:
    """Bind `source_id` to `external_id`; a pending intent is completed, an existing binding kept.

    Returns the stored row (whose external_id may differ if someone else bound it first).
    The caller commits.
    """
    values = {
        "tenant_id": tenant_id,
        "ledger": ledger,
        "source_id": source_id,
        "external_id": external_id,
        "kind": kind,
        "idempotency_key": idempotency_key,
        "created_at": utcnow(),
    }
    session.execute(_insert(session)(Binding).values(**values).on_conflict_do_nothing())
    session.execute(
        update(Binding)
        .where(
            Binding.tenant_id == tenant_id,
            Binding.ledger == ledger,
            Binding.source_id == source_id,
            Binding.external_id.is_(None),
        )
        .values(external_id=external_id, kind=kind, idempotency_key=idempotency_key)
    )
    row = session.get(Binding, (tenant_id, ledger, source_id), populate_existing=True)
    assert row is not None
    return row


def record_intent(
    session: Session, *, tenant_id: str, ledger: str, source_id: str, kind: str, idempotency_key: str
) -> None:
    """Note that a create for `source_id` is about to be sent (no-op if a row exists). Caller commits."""
    session.execute(
        _insert(session)(Binding)
        .values(
            tenant_id=tenant_id,
            ledger=ledger,
            source_id=source_id,
            external_id=None,
            kind=kind,
            idempotency_key=idempotency_key,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )


def forget_intents(session: Session, tenant_id: str, ledger: str, source_ids: Iterable[str]) -> None:
    """Drop pending intents (never bindings) of creates known to have failed. Caller commits."""
    ids = list(source_ids)
    if ids:
        session.execute(
            delete(Binding).where(
                Binding.tenant_id == tenant_id,
                Binding.ledger == ledger,
                Binding.source_id.in_(ids),
                Binding.external_id.is_(None),
            )
        )
