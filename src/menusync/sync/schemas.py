"""Request and response bodies of the sync API (CONTRACT.md sections 1 and 2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, Field, StringConstraints, field_validator

from menusync.core.schemas import ApiModel, Pagination

PlatformType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
Priority = Annotated[int, Field(ge=1, le=10, description="1 (lowest) .. 10 (highest)")]
JobStatus = Literal[
    "pending",
    "in_progress",
    "awaiting_confirmation",
    "scheduled_retry",
    "completed",
    "failed",
    "cancelled",
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {"pending", "in_progress", "awaiting_confirmation", "scheduled_retry"}
)


class SyncError(ApiModel):
    code: str
    message: str
    retryable: bool
    details: dict[str, Any] = Field(default_factory=dict)


class SyncStatus(ApiModel):
    sync_id: uuid.UUID
    batch_id: uuid.UUID | None
    platform_type: str
    platform_menu_id: uuid.UUID | None
    kind: str
    status: str
    progress: int
    stage: str
    message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration: int | None = Field(description="Milliseconds from first start to the end")
    items_processed: int
    items_total: int
    attempt: int
    max_attempts: int
    next_retry_at: datetime | None
    error: SyncError | None
    external_id: str | None
    trigger: str
    initiated_by: str | None
    priority: int
    unchanged: bool
    created_at: datetime


class SingleSyncRequest(ApiModel):
    platform_menu_id: uuid.UUID
    platform_type: PlatformType
    configuration: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the stored sync configuration for this run"
    )
    force_sync: bool = False
    item_ids: (
        Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=100)]],
            Field(max_length=1000),
        ]
        | None
    ) = None
    priority: Priority = 5


class Validation(ApiModel):
    warnings: list[dict[str, Any]] = Field(default_factory=list)


class SingleSyncResponse(ApiModel):
    success: bool = True
    sync_id: uuid.UUID
    status: str
    estimated_duration: int = Field(description="Seconds, from recent syncs to this platform")
    message: str
    validation: Validation


class BatchPlatform(ApiModel):
    platform_type: PlatformType
    configuration: dict[str, Any] = Field(default_factory=dict)
    priority: Priority | None = None


class BatchSyncRequest(ApiModel):
    platform_menu_id: uuid.UUID
    platforms: Annotated[list[BatchPlatform], Field(min_length=1, max_length=20)]
    execution_mode: Literal["parallel", "sequence"] = "parallel"
    fail_fast: bool = False
    force_sync: bool = False
    priority: Priority = 5

    @field_validator("platforms")
    @classmethod
    def _unique(cls, value: list[BatchPlatform]) -> list[BatchPlatform]:
        kinds = [entry.platform_type for entry in value]
        duplicates = sorted({kind for kind in kinds if kinds.count(kind) > 1})
        if duplicates:
            raise ValueError(f"platforms repeat: {', '.join(duplicates)}")
        return value


class SyncOperation(ApiModel):
    sync_id: uuid.UUID
    platform_type: str
    status: str


class BatchSyncResponse(ApiModel):
    success: bool = True
    batch_id: uuid.UUID
    sync_operations: list[SyncOperation]
    estimated_total_duration: int
    message: str


class BatchStatus(ApiModel):
    batch_id: uuid.UUID
    platform_menu_id: uuid.UUID | None
    platforms: list[str]
    execution_mode: str
    fail_fast: bool
    overall_status: str
    overall_progress: int
    started_at: datetime | None
    completed_at: datetime | None
    total_operations: int
    completed_operations: int
    failed_operations: int
    cancelled_operations: int
    in_progress_operations: int
    operations: list[SyncStatus]


class SyncStatusResponse(ApiModel):
    success: bool = True
    data: SyncStatus


class BatchStatusResponse(ApiModel):
    success: bool = True
    data: BatchStatus


class HistoryResponse(ApiModel):
    success: bool = True
    data: list[SyncStatus]
    pagination: Pagination


class TimelineEvent(ApiModel):
    event_id: int
    type: str
    data: dict[str, Any]
    timestamp: datetime


class IntegrationLogRead(ApiModel):
    id: uuid.UUID
    operation: str
    method: str
    url: str
    status_code: int | None
    duration_ms: int
    request_body: str | None
    response_body: str | None
    error: str | None
    attempt: int
    created_at: datetime


class SyncDetails(ApiModel):
    sync_details: SyncStatus
    request: dict[str, Any]
    timeline: list[TimelineEvent]
    integration_logs: list[IntegrationLogRead]


class SyncDetailsResponse(ApiModel):
    success: bool = True
    data: SyncDetails


class RetryRequest(ApiModel):
    sync_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=100)]
    force_retry: bool = Field(default=False, description="Also retry completed or cancelled jobs")
    reset_retry_count: bool = False
    updated_configuration: dict[str, Any] | None = None


class SkippedOperation(ApiModel):
    sync_id: uuid.UUID
    reason: str


class RetryResponse(ApiModel):
    success: bool = True
    retried_operations: list[uuid.UUID]
    skipped_operations: list[SkippedOperation]
    message: str


class CancelResponse(ApiModel):
    success: bool = True
    message: str
    status: str


class BatchCancelResponse(ApiModel):
    success: bool = True
    message: str
    cancelled_operations: list[uuid.UUID]
    cancel_requested_operations: list[uuid.UUID]


class ActiveResponse(ApiModel):
    success: bool = True
    data: list[SyncStatus]


class QueueDepth(ApiModel):
    platform_type: str
    status: str
    count: int
    oldest_waiting_seconds: float | None


class WorkerSeen(ApiModel):
    worker_id: str
    hostname: str
    pid: int
    concurrency: int
    active_jobs: int
    last_seen_at: datetime


class QueueOverview(ApiModel):
    depth: list[QueueDepth]
    workers: list[WorkerSeen]


class QueueResponse(ApiModel):
    success: bool = True
    data: QueueOverview


class RetryQueueEntry(ApiModel):
    sync_id: uuid.UUID
    platform_type: str
    attempt: int
    max_attempts: int
    next_retry_at: datetime
    error: SyncError | None


class RetryQueueResponse(ApiModel):
    success: bool = True
    data: list[RetryQueueEntry]


class ConfigurationUpdate(ApiModel):
    configuration: dict[str, Any] = Field(
        default_factory=dict, description="Validated by the platform's schema"
    )
    auto_sync_enabled: bool = False
    sync_schedule: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None
    ) = Field(default=None, description="Cron expression (5 fields, UTC), e.g. `0 */6 * * *`")
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="Where to notify you of this target's results"
    )


class ConfigurationRead(ApiModel):
    platform_menu_id: uuid.UUID
    platform_type: str
    configuration: dict[str, Any]
    auto_sync_enabled: bool
    sync_schedule: str | None
    webhook_url: str | None
    next_run_at: datetime | None
    last_run_at: datetime | None
    updated_at: datetime


class ConfigurationResponse(ApiModel):
    success: bool = True
    data: ConfigurationRead
    message: str


class MenuConfigurations(ApiModel):
    platform_menu_id: uuid.UUID
    configurations: dict[str, ConfigurationRead]


class MenuConfigurationsResponse(ApiModel):
    success: bool = True
    data: MenuConfigurations


class PreviewRequest(ApiModel):
    platform_menu_id: uuid.UUID
    platforms: Annotated[list[PlatformType], Field(min_length=1, max_length=20)]
    configuration: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-platform configuration overrides, keyed by platform"
    )
    item_ids: list[str] | None = None


class PlatformPreview(ApiModel):
    platform_type: str
    payload: dict[str, Any] | None
    items_total: int
    is_partial: bool
    payload_hash: str | None
    would_change: bool
    issues: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    diff: dict[str, Any] | None
    last_pushed_at: datetime | None
    last_sync_id: uuid.UUID | None


class PreviewResponse(ApiModel):
    success: bool = True
    data: list[PlatformPreview]


class AvailabilityChangeIn(ApiModel):
    item_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    is_available: bool
    kind: Literal["item", "option"] = "item"
    until: datetime | None = Field(default=None, description="Becomes available again at this time")


class AvailabilityRequest(ApiModel):
    platforms: Annotated[list[PlatformType], Field(min_length=1, max_length=20)]
    changes: Annotated[list[AvailabilityChangeIn], Field(min_length=1, max_length=1000)]
    priority: Priority = 7


class StoreStatusRequest(ApiModel):
    platforms: Annotated[list[PlatformType], Field(min_length=1, max_length=20)]
    state: Literal["open", "closed", "paused"]
    until: datetime | None = Field(default=None, description="Required for `paused`")
    reason: Annotated[str, StringConstraints(max_length=64)] | None = None
    priority: Priority = 8


class OperationsResponse(ApiModel):
    success: bool = True
    sync_operations: list[SyncOperation]
    message: str
