"""Database state: tenant config, ledger connections, bindings, dead letters (SQLAlchemy 2)."""
