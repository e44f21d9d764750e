"""Every table module, imported once so `Base.metadata` knows them all (for Alembic)."""

from store import bindings, connections, outbox, parked, tenants  # noqa: F401
