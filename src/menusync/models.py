"""Every table of menusync in one metadata, for Alembic and for tests."""

from menusync.core.models import Base
from menusync.core.resilience.models import CircuitBreakerState, RateLimitState
from menusync.menus.models import Menu
from menusync.platforms.models import IntegrationLog, PlatformConnection
from menusync.realtime.models import SyncEvent
from menusync.sync.models import (
    DailySyncStats,
    PushRecord,
    RollupProgress,
    SyncBatch,
    SyncConfiguration,
    SyncJob,
    WebhookEvent,
    WorkerHeartbeat,
)
from menusync.tenancy.models import AuditLog, IdempotencyRecord

metadata = Base.metadata

__all__ = [
    "AuditLog",
    "CircuitBreakerState",
    "DailySyncStats",
    "IdempotencyRecord",
    "IntegrationLog",
    "Menu",
    "PlatformConnection",
    "PushRecord",
    "RateLimitState",
    "RollupProgress",
    "SyncBatch",
    "SyncConfiguration",
    "SyncEvent",
    "SyncJob",
    "WebhookEvent",
    "WorkerHeartbeat",
    "metadata",
]
