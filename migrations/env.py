"""Alembic environment: async engine from menusync settings, batch mode for SQLite.

The URL comes from ``config.attributes["url"]`` when menusync runs migrations itself, else from
the settings (``MENUSYNC_DATABASE__URL`` or the embedded SQLite default).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from menusync.config import get_settings
from menusync.core.db import create_engine
from menusync.models import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("url")
    return str(url) if url else get_settings().database_url


# Indexes on expressions (``priority DESC``) cannot be reflected on SQLite, so autogenerate
# cannot compare them; their migrations are written by hand.
EXPRESSION_INDEXES = frozenset({"ix_sync_jobs_claim"})


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
