"""Every table module, imported once so `Base.metadata` knows them all (for Alembic)."""

from store import bindings, connections, dead_letters, outbox, parked, tenants, users  # noqa: F401
