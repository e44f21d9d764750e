"""The worker's database: migrated once at start, one session factory per process."""

from __future__ import annotations

from functools import cache

from sqlalchemy.orm import Session, sessionmaker

from store.db import open_database
from streams.settings import settings


@cache
def sessions() -> sessionmaker[Session]:
    return open_database(settings().database_url)
