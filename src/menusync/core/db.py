"""Database engine and sessions: SQLite (embedded default) or PostgreSQL, same SQL on both.

SQLite needs care to behave under concurrent writers (DESIGN section 10): the driver's implicit
deferred ``BEGIN`` is switched off and every transaction starts with ``BEGIN IMMEDIATE``, so a
writer takes the write lock up front and waits (``busy_timeout``) instead of failing with
"database is locked" when it later tries to upgrade. WAL lets readers run beside the writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, echo: bool = False, busy_timeout_ms: int = 30_000, pool_size: int = 10
) -> AsyncEngine:
    """Build the async engine for ``url`` with the per-dialect settings menusync relies on."""
    if is_sqlite_url(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=echo,
            poolclass=NullPool if database in (None, "", ":memory:") else None,
            connect_args={"timeout": busy_timeout_ms / 1000},
        )
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_pre_ping": True,
    }
    return create_async_engine(url, echo=echo, **options)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver's implicit deferred BEGIN; we issue BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers that must not hold the write lock (long exports) opt into a deferred BEGIN.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {'DEFERRED' if mode == 'DEFERRED' else 'IMMEDIATE'}")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction owned by the caller: committed when the block ends, rolled back on error."""
    async with sessions() as session, session.begin():
        yield session


def dialect_name(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``: for the few statements that differ between the two."""
    return session.get_bind().dialect.name
