"""Inbox users: finance people (scoped to their tenants) and admins (every tenant).

Passwords are stored as argon2id hashes (argon2-cffi); a hash is re-computed on login when
the library's parameters changed (`needs_rehash`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Boolean, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.base import Base, UTCDateTime, utcnow

Role = Literal["finance", "admin"]
ROLES: tuple[Role, ...] = ("finance", "admin")
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password")  # equal work for unknown users


class User(Base):
    __tablename__ = "inbox_users"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    tenants: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def scope(self) -> frozenset[str] | None:
        """The tenants this user may see; None means all (admins)."""
        return None if self.is_admin else frozenset(self.tenants or ())

    def may_see(self, tenant_id: str | None) -> bool:
        return self.is_admin or (tenant_id is not None and tenant_id in (self.tenants or ()))

    def __repr__(self) -> str:
        return f"User({self.name!r}, role={self.role!r}, tenants={self.tenants!r})"


def add(session: Session, name: str, password: str, role: str, tenants: Iterable[str]) -> User:
    """Create or update a user (new password, role and tenants). Caller commits."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    tenant_list = sorted(set(tenants))
    if role == "finance" and not tenant_list:
        raise ValueError("a finance user needs at least one --tenant")
    if len(password) < 8:
        raise ValueError("the password must have at least 8 characters")
    user = session.get(User, name)
    if user is None:
        user = User(name=name, created_at=utcnow())
        session.add(user)
    user.password_hash = _hasher.hash(password)
    user.role = role
    user.tenants = tenant_list
    user.active = True
    session.flush()
    return user


def get(session: Session, name: str) -> User | None:
    user = session.get(User, name)
    return user if user is not None and user.active else None


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user when the password matches, else None (same cost for unknown names)."""
    user = session.get(User, name)
    try:
        if user is None or not user.active:
            _hasher.verify(_DUMMY, password + "x")
            return None
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))
