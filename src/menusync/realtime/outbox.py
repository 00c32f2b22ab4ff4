"""The transactional outbox: events are rows written in the same transaction as the state change
they describe, so no event describes a rolled-back state and none is lost when a process dies.

After the transaction commits, readers are woken: PostgreSQL ``NOTIFY`` (sent inside the
transaction, delivered by PostgreSQL only on commit) reaches relays in every process; the
in-process signal wakes the relay of this process in embedded mode. Relays also poll, so a missed
wake-up only delays an event.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.clock import Clock
from menusync.core.db import dialect_name
from menusync.core.signals import wake_after_commit
from menusync.realtime.events import EventType
from menusync.realtime.models import SyncEvent

EVENTS_CHANNEL = "menusync_events"


class EventWriter:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock
        self._notified = False

    async def emit(
        self,
        company_id: str,
        event_type: EventType,
        data: dict[str, Any],
        *,
        sync_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
    ) -> SyncEvent:
        """Add the event to the current transaction."""
        event = SyncEvent(
            company_id=company_id,
            sync_id=sync_id,
            batch_id=batch_id,
            type=event_type.value,
            data=data,
            created_at=self._clock.now(),
        )
        self._session.add(event)
        wake_after_commit(self._session.info, "events")
        if not self._notified and dialect_name(self._session) == "postgresql":
            # One NOTIFY per transaction is enough: readers fetch everything newer than they saw.
            await self._session.execute(text(f"NOTIFY {EVENTS_CHANNEL}"))
            self._notified = True
        return event
