"""In-process wake-up signals (embedded mode): the job queue and the event outbox each have one.

In embedded mode a request that inserts a job wakes the in-process worker at once, and a state
change wakes the event relay, without waiting for the polling interval. Across processes
PostgreSQL ``LISTEN/NOTIFY`` plays the same role; polling is the fallback for both.
"""

from __future__ import annotations

import asyncio
import contextlib


class Signal:
    """A level-triggered wake-up: ``set`` any number of times, ``wait`` returns once per batch."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until set or until ``timeout`` seconds pass; return whether it was set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        was_set = self._event.is_set()
        self._event.clear()
        return was_set


class Signals:
    def __init__(self) -> None:
        self.jobs = Signal()
        self.events = Signal()

    def wake(self, names: set[str]) -> None:
        for name in names:
            getattr(self, name).set()


def wake_after_commit(session_info: dict[str, object], name: str) -> None:
    """Ask the owner of the unit of work to wake ``name`` (``jobs`` or ``events``) once the
    transaction has committed (waking readers before would show them nothing new)."""
    wake = session_info.setdefault("wake", set())
    assert isinstance(wake, set)
    wake.add(name)
