"""Reading the outbox in order without skipping an event: the cursor and its gaps.

Event ids come from a sequence when the row is inserted, but rows become visible when their
transaction commits, and transactions of different processes commit in any order. A reader that
simply kept "the highest id seen" would skip an event whose transaction committed after a later
one's. So the cursor also remembers the ids it jumped over (the *gaps*): a gap is either a
transaction still open or one that rolled back. Each poll reads, in one statement (one snapshot,
so the events of one transaction stay in id order), the rows after the cursor and the rows of the
open gaps; a gap that fills is emitted then (later than its neighbours, so a socket
may see ids slightly out of order, never twice and never not at all), and a gap that stays empty
for ``gap_timeout`` seconds is given up as rolled back. On SQLite writers are serialised
(``BEGIN IMMEDIATE``), so ids commit in order and gaps do not arise.

The position (the cursor and its open gaps) is what a socket is told when it joins: every event
the relay emits afterwards is either above that cursor or one of those gaps, which is how a replay
knows exactly which events the socket will receive live and which it must be sent from the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One ``sync_events`` row as the relay and the replay handle it."""

    id: int
    company_id: str
    sync_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    type: str
    data: dict[str, Any]
    created_at: datetime

    def payload(self) -> dict[str, Any]:
        """The contract's server-to-client envelope ``{type, eventId, data, timestamp}``."""
        return {
            "type": self.type,
            "eventId": self.id,
            "data": self.data,
            "timestamp": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Position:
    """Where the relay stands: every id ``<= cursor`` was emitted, except the open ``gaps``."""

    cursor: int
    gaps: frozenset[int] = frozenset()

    def was_emitted(self, event_id: int) -> bool:
        """Whether an event with this id had been emitted (or given up) at this position."""
        return event_id <= self.cursor and event_id not in self.gaps


class OutboxCursor:
    """The relay's memory of what it emitted: the highest id and the gaps below it."""

    def __init__(
        self,
        cursor: int,
        *,
        gap_timeout: float,
        max_gaps: int = 10_000,
        missing: Iterable[int] = (),
        now: float = 0.0,
    ) -> None:
        self.cursor = cursor
        self.gap_timeout = gap_timeout
        self.max_gaps = max_gaps
        self._gaps: dict[int, float] = {}
        for event_id in missing:
            if event_id < cursor:
                self._gaps[event_id] = now + gap_timeout

    @property
    def gaps(self) -> list[int]:
        return sorted(self._gaps)

    def position(self) -> Position:
        return Position(self.cursor, frozenset(self._gaps))

    def accept(self, event_id: int, now: float) -> bool:
        """Record that the event is being emitted; ``False`` if it was emitted already."""
        if self._gaps.pop(event_id, None) is not None:
            return True
        if event_id <= self.cursor:
            return False
        first_missing = max(self.cursor + 1, event_id - self.max_gaps)
        for missing in range(first_missing, event_id):
            self._gaps[missing] = now + self.gap_timeout
        self.cursor = event_id
        if len(self._gaps) > self.max_gaps:
            for oldest in sorted(self._gaps)[: len(self._gaps) - self.max_gaps]:
                del self._gaps[oldest]
        return True

    def expire(self, now: float) -> list[int]:
        """Give up the gaps whose transaction has not committed within ``gap_timeout``."""
        expired = [event_id for event_id, deadline in self._gaps.items() if deadline <= now]
        for event_id in expired:
            del self._gaps[event_id]
        return expired
