"""Every table module, imported once so `Base.metadata` knows them all (for Alembic)."""

from store import tenants  # noqa: F401
