"""Who may subscribe to a sync or a batch: the ownership check behind ``subscribe-sync``.

``realtime`` sits below ``sync`` and never imports it, so the default check asks the events
themselves: a sync (or batch) belongs to company C when the outbox holds an event of it written
for C. That is exact for every sync and batch the engine creates, because the request that creates
one writes its ``sync-started`` (``batch-sync-started``) event in the same transaction, and the
status a subscriber is told is the one the latest event carries (written with the state change).
A caller of another company gets the same "not found" as for an id that does not exist.

The app may inject any other ``SubscriptionChecker`` (for instance one that reads the job rows)
through ``create_realtime(..., subscriptions=...)``.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.realtime.events import EventType
from menusync.realtime.repository import EventRepository, read_connection

_STATUS_OF_TYPE = {
    EventType.SYNC_STARTED.value: "pending",
    EventType.SYNC_PROGRESS.value: "in_progress",
    EventType.SYNC_RETRY_SCHEDULED.value: "scheduled_retry",
    EventType.SYNC_COMPLETED.value: "completed",
    EventType.SYNC_FAILED.value: "failed",
    EventType.SYNC_CANCELLED.value: "cancelled",
    EventType.BATCH_STARTED.value: "pending",
    EventType.BATCH_PROGRESS.value: "in_progress",
    EventType.BATCH_COMPLETED.value: "completed",
}
_SYNC_TYPES = [
    EventType.SYNC_STARTED.value,
    EventType.SYNC_PROGRESS.value,
    EventType.SYNC_RETRY_SCHEDULED.value,
    EventType.SYNC_COMPLETED.value,
    EventType.SYNC_FAILED.value,
    EventType.SYNC_CANCELLED.value,
]
_BATCH_TYPES = [
    EventType.BATCH_STARTED.value,
    EventType.BATCH_PROGRESS.value,
    EventType.BATCH_COMPLETED.value,
]


class SubscriptionChecker(Protocol):
    async def sync_status(self, company_id: str, sync_id: uuid.UUID) -> str | None:
        """The sync's current status if it exists and belongs to ``company_id``, else ``None``."""
        ...

    async def batch_status(self, company_id: str, batch_id: uuid.UUID) -> str | None:
        """The batch's overall status if it exists and belongs to ``company_id``, else ``None``."""
        ...


class OutboxSubscriptions:
    """The default check: ownership and status from the company's own events."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def sync_status(self, company_id: str, sync_id: uuid.UUID) -> str | None:
        async with read_connection(self._engine) as conn:
            event = await EventRepository(conn).get_latest(
                company_id, sync_id=sync_id, types=_SYNC_TYPES
            )
        if event is None:
            return None
        status = event.data.get("status")
        return status if isinstance(status, str) else _STATUS_OF_TYPE[event.type]

    async def batch_status(self, company_id: str, batch_id: uuid.UUID) -> str | None:
        async with read_connection(self._engine) as conn:
            event = await EventRepository(conn).get_latest(
                company_id, batch_id=batch_id, types=_BATCH_TYPES
            )
        if event is None:
            return None
        status = event.data.get("overallStatus")
        return status if isinstance(status, str) else _STATUS_OF_TYPE[event.type]
