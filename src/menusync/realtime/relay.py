"""The event relay: one per API process, it tails the ``sync_events`` outbox and hands each new
event, once and in id order, to the Socket.IO hub of its process.

It wakes on the in-process signal ``resources.signals.events`` (set after a local unit of work
that wrote events commits) and, on PostgreSQL, on ``NOTIFY menusync_events`` received over a
dedicated ``LISTEN`` connection (sent by any process's transaction, delivered on commit); a
notification simply sets the same signal. Without either it still polls every ``poll_interval``
seconds, so a lost connection or wake-up only delays events. Ordering and gaps: ``feed.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import psycopg
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.core.signals import Signal
from menusync.realtime.feed import OutboxCursor, OutboxEvent, Position
from menusync.realtime.outbox import EVENTS_CHANNEL
from menusync.realtime.repository import EventRepository, read_connection

log = structlog.get_logger(__name__)

MAX_GAPS_PER_READ = 1_000

Deliver = Callable[[OutboxEvent], Awaitable[None]]

STARTUP_WINDOW = 1_000
"""At start the relay begins after the newest event, treating ids missing among the last this
many as gaps (transactions that may still be open), so events committing just then are not lost."""


class EventRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        wake: Signal,
        deliver: Deliver,
        *,
        poll_interval: float = 1.0,
        gap_timeout: float = 60.0,
        page_size: int = 500,
        listen: bool = True,
    ) -> None:
        self._engine = engine
        self._wake = wake
        self._deliver = deliver
        self.poll_interval = poll_interval
        self.gap_timeout = gap_timeout
        self.page_size = page_size
        self._listen = listen and engine.dialect.name == "postgresql"
        self._cursor: OutboxCursor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        """Set while the ``LISTEN`` connection is up (tests wait for it)."""

    def position(self) -> Position:
        """Where the relay stands now; every later event it emits is above it or one of its gaps."""
        if self._cursor is None:
            raise RuntimeError("the event relay has not started")
        return self._cursor.position()

    async def start(self) -> None:
        """Find where the outbox ends, then start tailing it (and listening, on PostgreSQL)."""
        async with read_connection(self._engine) as conn:
            repository = EventRepository(conn)
            last = await repository.get_last_id()
            present = set(await repository.list_ids_after(max(0, last - STARTUP_WINDOW)))
        missing = [i for i in range(max(1, last - STARTUP_WINDOW + 1), last) if i not in present]
        self._cursor = OutboxCursor(
            last, gap_timeout=self.gap_timeout, missing=missing, now=time.monotonic()
        )
        self._tasks.append(asyncio.create_task(self._tail(), name="menusync-event-relay"))
        if self._listen:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name="menusync-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.listening.clear()

    async def relay_once(self) -> int:
        """Emit what is new (and what filled a gap); return how many events were emitted."""
        cursor = self._cursor
        if cursor is None:
            raise RuntimeError("the event relay has not started")
        emitted = 0
        while True:
            # One statement, one snapshot: the new rows and the rows that filled a gap are read
            # together and emitted in id order, so the events of one transaction keep their order.
            async with read_connection(self._engine) as conn:
                page = await EventRepository(conn).list_after(
                    cursor.cursor, self.page_size, also=cursor.gaps[:MAX_GAPS_PER_READ]
                )
            emitted += await self._emit(cursor, page)
            if len(page) < self.page_size:
                break
        for event_id in cursor.expire(time.monotonic()):
            log.info("realtime.gap_given_up", event_id=event_id)
        return emitted

    async def _emit(self, cursor: OutboxCursor, events: list[OutboxEvent]) -> int:
        emitted = 0
        for event in events:
            # Accepting and starting the emit happen with no await in between: a socket joining
            # concurrently is either already a recipient or told a position that excludes it.
            if not cursor.accept(event.id, time.monotonic()):
                continue
            try:
                await self._deliver(event)
            except Exception:
                log.exception("realtime.deliver_failed", event_id=event.id)
            emitted += 1
        return emitted

    async def _tail(self) -> None:
        while True:
            try:
                await self.relay_once()
            except Exception:
                log.exception("realtime.relay_failed")
            await self._wake.wait(self.poll_interval)

    async def _listen_loop(self) -> None:
        url = make_url(self._engine.url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening.set()
                    # Catch up with whatever committed while nobody was listening.
                    self._wake.set()
                    backoff = 0.5
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                log.warning("realtime.listen_failed", error=str(exc), retry_in=backoff)
            self.listening.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
