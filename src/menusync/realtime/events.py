"""The realtime event types of CONTRACT.md section 3, as a closed set of names.

Payloads are built by the engine where the state changes; this module only fixes the vocabulary so
the writer, the relay and the tests agree on it.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    SYNC_STARTED = "sync-started"
    SYNC_PROGRESS = "sync-progress"
    SYNC_RETRY_SCHEDULED = "sync-retry-scheduled"
    SYNC_COMPLETED = "sync-completed"
    SYNC_FAILED = "sync-failed"
    SYNC_CANCELLED = "sync-cancelled"
    BATCH_STARTED = "batch-sync-started"
    BATCH_PROGRESS = "batch-sync-progress"
    BATCH_COMPLETED = "batch-sync-completed"
    CIRCUIT_BREAKER_CHANGED = "circuit-breaker-changed"
