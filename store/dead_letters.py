"""The dead-letter inbox: one row per failed record, its status, and an audit history.

    ledger.dead-letter ──(agents.dead_letter_store)──▶ upsert() ──▶ dead_letter_items
    finance (inbox web / CLI) ──retry / discard──▶ status + dead_letter_audit
    periodic job ──resolve_bound() / purge()──▶ resolved items, retention

An item is keyed by `record_id` (the command's idempotency key, or `input:<event id>`).
A record for a known item (the same command failing again) updates it: attempts + 1, the
new error, status back to `open`. A retry that had to change the command (re-mapped codes,
see `inbox.replay`) sends it under `replay_key`; a failure of that command comes back with
`replay_key` as its id and is matched to the same item.

Statuses: open → retrying → resolved (its source is bound in the ledger) | open again
(it failed again); open | retrying → discarded (with a reason). The audit rows are kept
when items are purged (`item_id` is not a foreign key for that reason).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, delete, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from schemas.dead_letter import DeadLetter
from store import bindings
from store.base import Base, UTCDateTime, utcnow

OPEN, RETRYING, RESOLVED, DISCARDED = "open", "retrying", "resolved", "discarded"
STATUSES = (OPEN, RETRYING, RESOLVED, DISCARDED)


class DeadLetterItem(Base):
    __tablename__ = "dead_letter_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(255), unique=True)
    replay_key: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    ledger: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    amount: Mapped[str | None] = mapped_column(String(40), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    reason_code: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    ledger_messages: Mapped[list[str]] = mapped_column(JSON, default=list)
    ledger_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    record: Mapped[str] = mapped_column(Text, doc="the latest DeadLetter JSON")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    failures: Mapped[int] = mapped_column(Integer, default=1, doc="dead-letter records received")
    retries: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=OPEN, index=True)
    status_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_position: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def letter(self) -> DeadLetter:
        return DeadLetter.model_validate_json(self.record)

    def __repr__(self) -> str:
        return f"DeadLetterItem({self.id}, {self.record_id[:16]!r}, {self.reason_code}, {self.status})"


class AuditEntry(Base):
    """Who did what to which item, when. Never purged."""

    __tablename__ = "dead_letter_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    record_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tenant_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class AlertMark(Base):
    """When an alert with `key` (e.g. reconnect:acme-uk:xero) was last sent: no repeats."""

    __tablename__ = "alert_marks"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --------------------------------------------------------------------------- writes


def audit(
    session: Session,
    actor: str,
    action: str,
    item: DeadLetterItem | None = None,
    detail: str | None = None,
    tenant_id: str | None = None,
) -> None:
    session.add(
        AuditEntry(
            item_id=item.id if item is not None else None,
            record_id=item.record_id if item is not None else None,
            tenant_id=item.tenant_id if item is not None else tenant_id,
            actor=actor,
            action=action,
            detail=detail,
            at=utcnow(),
        )
    )


def find(session: Session, record_id: str) -> DeadLetterItem | None:
    """The item for a record id: its own id, or the key a re-mapped retry was sent under."""
    item = session.scalar(select(DeadLetterItem).where(DeadLetterItem.record_id == record_id))
    if item is None:
        item = session.scalar(select(DeadLetterItem).where(DeadLetterItem.replay_key == record_id).limit(1))
    return item


def upsert(session: Session, letter: DeadLetter, position: str | None = None) -> tuple[DeadLetterItem, bool]:
    """Store one dead-letter record; returns (item, created).

    `position` (topic:partition:offset of the record) makes redelivery of the same record a
    no-op, so a worker that crashed after committing and before acking counts nothing twice.
    """
    item = find(session, letter.id)
    messages = list(letter.ledger_response.messages) if letter.ledger_response else []
    status = letter.ledger_response.status if letter.ledger_response else None
    source_id = (letter.command or {}).get("source_id")
    if item is None:
        item = DeadLetterItem(
            record_id=letter.id,
            tenant_id=letter.tenant_id,
            ledger=letter.ledger,
            kind=letter.kind,
            order_id=letter.order_id,
            source_id=source_id,
            amount=str(letter.amount) if letter.amount is not None else None,
            currency=letter.currency,
            reason_code=letter.reason_code.value,
            reason=letter.reason,
            ledger_messages=messages,
            ledger_status=status,
            record=letter.model_dump_json(),
            attempts=letter.attempts,
            failures=1,
            retries=0,
            status=OPEN,
            first_failed_at=letter.first_failed_at,
            last_failed_at=letter.last_failed_at,
            last_position=position,
        )
        session.add(item)
        session.flush()
        audit(session, "system", "received", item, f"{letter.reason_code.value}: {letter.reason[:500]}")
        return item, True
    if position is not None and item.last_position == position:
        return item, False  # the same record delivered again
    item.attempts = item.attempts + letter.attempts
    item.failures = item.failures + 1
    item.reason_code = letter.reason_code.value
    item.reason = letter.reason
    item.ledger_messages = messages
    item.ledger_status = status
    item.record = letter.model_dump_json()
    item.last_failed_at = max(item.last_failed_at, letter.last_failed_at)
    item.last_position = position
    was = item.status
    item.status = OPEN
    item.closed_at = None
    item.alerted_at = None  # a new failure is news again
    session.flush()
    audit(
        session,
        "system",
        "failed_again",
        item,
        f"was {was}; {letter.reason_code.value}: {letter.reason[:500]}",
    )
    return item, False


def mark_retrying(
    session: Session, item: DeadLetterItem, actor: str, detail: str, replay_key: str | None
) -> None:
    item.status = RETRYING
    item.retries += 1
    item.last_retry_at = utcnow()
    item.replay_key = replay_key
    item.status_note = detail
    audit(session, actor, "retry", item, detail)


def resolve(session: Session, item: DeadLetterItem, actor: str, detail: str) -> None:
    item.status = RESOLVED
    item.closed_at = utcnow()
    item.status_note = detail
    audit(session, actor, "resolved", item, detail)


def discard(session: Session, item: DeadLetterItem, actor: str, reason: str) -> None:
    if not reason.strip():
        raise ValueError("a reason is required to discard an item")
    item.status = DISCARDED
    item.closed_at = utcnow()
    item.status_note = reason.strip()
    audit(session, actor, "discarded", item, reason.strip())


def proof_source_id(item: DeadLetterItem) -> str | None:
    """The source id whose binding proves the item done: the letter's `resolves_with` (the part
    still pending after a partial failure, e.g. `<payment>#fee`), else the command's source id."""
    try:
        pending = json.loads(item.record).get("resolves_with")
    except (TypeError, ValueError, AttributeError):
        pending = None
    return pending if isinstance(pending, str) and pending else item.source_id


def resolve_bound(session: Session, now: datetime | None = None) -> list[DeadLetterItem]:
    """Mark `retrying` (and `open`) command items resolved when their work is bound in the ledger:
    the command's source id, or, after a partial failure, the pending part (`proof_source_id`)."""
    done = []
    rows = session.scalars(
        select(DeadLetterItem).where(
            DeadLetterItem.status.in_((OPEN, RETRYING)), DeadLetterItem.source_id.is_not(None)
        )
    )
    for item in rows:
        if item.tenant_id is None or item.ledger is None or item.source_id is None:
            continue
        row = bindings.get(session, item.tenant_id, item.ledger, proof_source_id(item) or item.source_id)
        if row is not None and row.bound:
            resolve(session, item, "system", f"posted: {item.ledger} document {row.external_id}")
            done.append(item)
    session.flush()
    return done


def purge(session: Session, older_than: datetime) -> int:
    """Delete resolved and discarded items closed before `older_than`; the audit history stays."""
    ids = list(
        session.scalars(
            select(DeadLetterItem.id).where(
                DeadLetterItem.status.in_((RESOLVED, DISCARDED)), DeadLetterItem.closed_at < older_than
            )
        )
    )
    for start in range(0, len(ids), 500):
        session.execute(delete(DeadLetterItem).where(DeadLetterItem.id.in_(ids[start : start + 500])))
    if ids:
        audit(session, "system", "purged", detail=f"{len(ids)} item(s) closed before {older_than:%Y-%m-%d}")
    return len(ids)


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class Filters:
    """What the list, the bulk retry, the CLI and the API filter by. `tenants` scopes a user."""

    tenant: str | None = None
    ledger: str | None = None
    reason: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tenants: frozenset[str] | None = None  # None: every tenant (admins)

    def query(self) -> Any:
        q = select(DeadLetterItem)
        if self.tenants is not None:
            q = q.where(DeadLetterItem.tenant_id.in_(sorted(self.tenants)))
        if self.tenant:
            q = q.where(DeadLetterItem.tenant_id == self.tenant)
        if self.ledger:
            q = q.where(DeadLetterItem.ledger == self.ledger)
        if self.reason:
            q = q.where(DeadLetterItem.reason_code == self.reason)
        if self.status:
            q = q.where(DeadLetterItem.status == self.status)
        if self.since:
            q = q.where(DeadLetterItem.last_failed_at >= self.since)
        if self.until:
            q = q.where(DeadLetterItem.last_failed_at < self.until)
        return q

    def as_params(self) -> dict[str, str]:
        out = {
            "tenant": self.tenant,
            "ledger": self.ledger,
            "reason": self.reason,
            "status": self.status,
            "since": self.since.date().isoformat() if self.since else None,
            "until": (self.until - timedelta(days=1)).date().isoformat() if self.until else None,
        }
        return {k: v for k, v in out.items() if v}


def search(
    session: Session, filters: Filters, limit: int | None = 200, offset: int = 0
) -> list[DeadLetterItem]:
    q = filters.query().order_by(DeadLetterItem.last_failed_at.desc(), DeadLetterItem.id.desc())
    if limit is not None:
        q = q.limit(limit).offset(offset)
    return list(session.scalars(q))


def count(session: Session, filters: Filters) -> int:
    return session.scalar(select(func.count()).select_from(filters.query().subquery())) or 0


def counts_by_reason(session: Session, filters: Filters) -> dict[str, int]:
    sub = filters.query().subquery()
    rows = session.execute(select(sub.c.reason_code, func.count()).group_by(sub.c.reason_code))
    return {code: n for code, n in sorted(rows)}


def open_by_reason(session: Session) -> dict[str, int]:
    """Open items per reason code (the Prometheus gauge)."""
    rows = session.execute(
        select(DeadLetterItem.reason_code, func.count())
        .where(DeadLetterItem.status == OPEN)
        .group_by(DeadLetterItem.reason_code)
    )
    return dict(rows.all())


def get(session: Session, item_id: int) -> DeadLetterItem | None:
    return session.get(DeadLetterItem, item_id)


def history(
    session: Session, *, tenants: frozenset[str] | None = None, item_id: int | None = None, limit: int = 200
) -> list[AuditEntry]:
    q = select(AuditEntry)
    if tenants is not None:
        q = q.where(or_(AuditEntry.tenant_id.in_(sorted(tenants))))
    if item_id is not None:
        q = q.where(AuditEntry.item_id == item_id)
    return list(session.scalars(q.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))


def unalerted(session: Session) -> dict[str, list[DeadLetterItem]]:
    """Open items not yet in an alert, per tenant."""
    rows = session.scalars(
        select(DeadLetterItem)
        .where(DeadLetterItem.status == OPEN, DeadLetterItem.alerted_at.is_(None))
        .order_by(DeadLetterItem.id)
    )
    out: dict[str, list[DeadLetterItem]] = {}
    for item in rows:
        out.setdefault(item.tenant_id or "", []).append(item)
    return out


def mark_alerted(session: Session, items: Iterable[DeadLetterItem], at: datetime) -> None:
    for item in items:
        item.alerted_at = at


def alert_due(session: Session, key: str, every: timedelta, now: datetime) -> bool:
    """True (and remembered) when no alert with `key` went out within `every`."""
    mark = session.get(AlertMark, key)
    if mark is not None and now - mark.sent_at < every:
        return False
    if mark is None:
        session.add(AlertMark(key=key, sent_at=now))
    else:
        mark.sent_at = now
    return True


def forget_alert(session: Session, key: str) -> None:
    session.execute(delete(AlertMark).where(AlertMark.key == key))


def to_json(item: DeadLetterItem) -> dict[str, Any]:
    """The API view of an item."""
    return {
        "id": item.id,
        "record_id": item.record_id,
        "tenant_id": item.tenant_id,
        "ledger": item.ledger,
        "kind": item.kind,
        "order_id": item.order_id,
        "source_id": item.source_id,
        "amount": item.amount,
        "currency": item.currency,
        "reason_code": item.reason_code,
        "reason": item.reason,
        "ledger_messages": list(item.ledger_messages or []),
        "attempts": item.attempts,
        "failures": item.failures,
        "retries": item.retries,
        "status": item.status,
        "status_note": item.status_note,
        "first_failed_at": item.first_failed_at.isoformat(),
        "last_failed_at": item.last_failed_at.isoformat(),
        "closed_at": item.closed_at.isoformat() if item.closed_at else None,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
