"""Queries on the ``sync_events`` outbox for the relay, the replay and the subscription check.

Reads go through a plain connection that opens a *deferred* transaction on SQLite, so the relay's
frequent reads never take the write lock that every unit of work takes up front.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from menusync.realtime.feed import OutboxEvent
from menusync.realtime.models import SyncEvent

_COLUMNS = (
    SyncEvent.id,
    SyncEvent.company_id,
    SyncEvent.sync_id,
    SyncEvent.batch_id,
    SyncEvent.type,
    SyncEvent.data,
    SyncEvent.created_at,
)


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only: a deferred transaction on SQLite, rolled back at the end."""
    async with engine.connect() as conn:
        await conn.execution_options(sqlite_begin="DEFERRED")
        yield conn


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        id=int(row.id),
        company_id=row.company_id,
        sync_id=row.sync_id,
        batch_id=row.batch_id,
        type=row.type,
        data=row.data or {},
        created_at=row.created_at,
    )


class EventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _events(self, statement: Select[Any]) -> list[OutboxEvent]:
        return [_event(row) for row in await self._conn.execute(statement)]

    async def get_last_id(self) -> int:
        value = (await self._conn.execute(select(func.max(SyncEvent.id)))).scalar_one_or_none()
        return int(value or 0)

    async def list_ids_after(self, after: int) -> list[int]:
        statement = select(SyncEvent.id).where(SyncEvent.id > after).order_by(SyncEvent.id)
        return [int(value) for value in (await self._conn.execute(statement)).scalars()]

    async def list_after(
        self, after: int, limit: int, *, also: Sequence[int] = ()
    ) -> list[OutboxEvent]:
        """Every company's events after ``after``, and those of the ids ``also``, in id order
        (the relay reads across tenants)."""
        condition = SyncEvent.id > after
        if also:
            condition = or_(condition, SyncEvent.id.in_(list(also)))
        return await self._events(
            select(*_COLUMNS).where(condition).order_by(SyncEvent.id).limit(limit)
        )

    async def list_for_replay(
        self,
        company_id: str,
        *,
        sync_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
        after: int,
        up_to: int,
        limit: int,
    ) -> list[OutboxEvent]:
        """The company's events of one sync or batch with ``after < id <= up_to``, in order."""
        statement = select(*_COLUMNS).where(
            SyncEvent.company_id == company_id, SyncEvent.id > after, SyncEvent.id <= up_to
        )
        if sync_id is not None:
            statement = statement.where(SyncEvent.sync_id == sync_id)
        if batch_id is not None:
            statement = statement.where(SyncEvent.batch_id == batch_id)
        return await self._events(statement.order_by(SyncEvent.id).limit(limit))

    async def get_latest(
        self,
        company_id: str,
        *,
        sync_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
        types: Sequence[str] | None = None,
    ) -> OutboxEvent | None:
        """The company's latest event of one sync or batch, or ``None``."""
        statement = select(*_COLUMNS).where(SyncEvent.company_id == company_id)
        if sync_id is not None:
            statement = statement.where(SyncEvent.sync_id == sync_id)
        if batch_id is not None:
            statement = statement.where(SyncEvent.batch_id == batch_id)
        if types is not None:
            statement = statement.where(SyncEvent.type.in_(list(types)))
        events = await self._events(statement.order_by(SyncEvent.id.desc()).limit(1))
        return events[0] if events else None
