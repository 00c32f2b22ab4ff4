"""Sync jobs (also the queue rows), batches, per-target push history, configurations, webhooks,
worker heartbeats and the daily analytics rollup of jobs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from menusync.core.models import Base, IdMixin, TenantMixin, TimestampMixin, _now

DUE_STATUSES = ("pending", "scheduled_retry")
WEBHOOK_OUTCOMES = ("applied", "ignored", "unmatched", "rejected", "received")
"""applied: moved its job; ignored: verified but nothing to do (an intermediate status, a job
already finished); unmatched: no job waits for it yet; rejected: bad signature; received:
being processed (never seen committed)."""


class SyncBatch(IdMixin, TenantMixin, TimestampMixin, Base):
    """One batch: a menu pushed to several platforms, its counters and overall status."""

    __tablename__ = "multi_platform_sync_history"
    __table_args__ = (Index("ix_batches_company_created", "company_id", "created_at"),)

    menu_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("menus.id", ondelete="SET NULL"))
    platforms: Mapped[list[Any]]
    execution_mode: Mapped[str] = mapped_column(String(16), default="parallel")
    fail_fast: Mapped[bool] = mapped_column(Boolean, default=False)
    overall_status: Mapped[str] = mapped_column(String(24), default="pending")
    overall_progress: Mapped[int] = mapped_column(Integer, default=0)
    total_operations: Mapped[int] = mapped_column(Integer, default=0)
    completed_operations: Mapped[int] = mapped_column(Integer, default=0)
    failed_operations: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_operations: Mapped[int] = mapped_column(Integer, default=0)
    initiated_by: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class SyncJob(IdMixin, TenantMixin, TimestampMixin, Base):
    """One sync job: a menu (or availability, or store status) to one platform target.

    This row is both the history a user reads and the unit of work a worker claims.
    """

    __tablename__ = "platform_sync_logs"
    __table_args__ = (
        # The claim walks this in order (priority, then age) and stops at the first free row.
        Index(
            "ix_sync_jobs_claim",
            text("priority DESC"),
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'scheduled_retry')"),
            sqlite_where=text("status IN ('pending', 'scheduled_retry')"),
        ),
        # Expired leases of running jobs.
        Index("ix_sync_jobs_lease", "status", "lease_expires_at"),
        # One job at a time per (platform, store) target: at most one running or awaiting.
        Index(
            "uq_sync_jobs_active_target",
            "platform",
            "store_key",
            unique=True,
            postgresql_where=text("status IN ('in_progress', 'awaiting_confirmation')"),
            sqlite_where=text("status IN ('in_progress', 'awaiting_confirmation')"),
        ),
        Index("ix_sync_jobs_target", "platform", "store_key", "status"),
        # Covering on PostgreSQL: analytics and history read it index-only.
        Index(
            "ix_sync_jobs_company_created",
            "company_id",
            "created_at",
            postgresql_include=[
                "platform",
                "status",
                "duration_ms",
                "attempt",
                "error_code",
                "error_retryable",
            ],
        ),
        Index("ix_sync_jobs_company_platform_status", "company_id", "platform", "status"),
        Index("ix_sync_jobs_company_menu", "company_id", "menu_id", "created_at"),
        Index("ix_sync_jobs_batch", "batch_id"),
        Index("ix_sync_jobs_external", "platform", "external_ref"),
        Index("ix_sync_jobs_awaiting", "status", "next_poll_at"),
        # The daily rollup reads one day of every company's jobs.
        Index("ix_sync_jobs_created", "created_at"),
    )

    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("multi_platform_sync_history.id", ondelete="SET NULL")
    )
    menu_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("menus.id", ondelete="SET NULL"))
    menu_version: Mapped[int | None] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(32))
    store_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24), default="menu")
    """``menu``, ``availability`` or ``store_status``."""
    status: Mapped[str] = mapped_column(String(24), default="pending")
    priority: Mapped[int] = mapped_column(Integer, default=5)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    """Position in a ``sequence`` batch; a job waits for the ones before it."""
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=4)
    next_attempt_at: Mapped[datetime] = mapped_column(default=_now)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    is_forced: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(48), default="queued")
    message: Mapped[str | None] = mapped_column(Text)
    items_total: Mapped[int] = mapped_column(Integer, default=0)
    items_processed: Mapped[int] = mapped_column(Integer, default=0)
    request: Mapped[dict[str, Any]]
    """What was asked: configuration overrides, item ids, availability or store-status input."""
    external_ref: Mapped[str | None] = mapped_column(String(200))
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    is_unchanged: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmation_deadline_at: Mapped[datetime | None]
    next_poll_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_retryable: Mapped[bool | None] = mapped_column(Boolean)
    error_details: Mapped[dict[str, Any] | None]
    trigger: Mapped[str] = mapped_column(String(24), default="manual")
    """``manual``, ``batch``, ``schedule``, ``api``."""
    initiated_by: Mapped[str | None] = mapped_column(String(128))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class PushRecord(IdMixin, TenantMixin, Base):
    """What was last pushed successfully to one (menu, platform target)."""

    __tablename__ = "menu_sync_history"
    __table_args__ = (UniqueConstraint("company_id", "menu_id", "platform", "store_key"),)

    menu_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("menus.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    store_key: Mapped[str] = mapped_column(String(200))
    payload_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    """The payload as pushed, for diffs in previews."""
    menu_version: Mapped[int] = mapped_column(Integer)
    sync_id: Mapped[uuid.UUID | None]
    pushed_at: Mapped[datetime] = mapped_column(default=_now)


class SyncConfiguration(IdMixin, TenantMixin, TimestampMixin, Base):
    """Settings for one menu on one platform, and its schedule."""

    __tablename__ = "sync_configurations"
    __table_args__ = (
        UniqueConstraint("company_id", "menu_id", "platform"),
        Index(
            "ix_sync_configurations_due",
            "next_run_at",
            postgresql_where=text("auto_sync_enabled"),
            sqlite_where=text("auto_sync_enabled"),
        ),
    )

    menu_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("menus.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    configuration: Mapped[dict[str, Any]]
    auto_sync_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    sync_schedule: Mapped[str | None] = mapped_column(String(120))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    updated_by: Mapped[str | None] = mapped_column(String(128))


class WebhookEvent(IdMixin, Base):
    """One inbound platform webhook, deduplicated by (platform, event id)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("platform", "event_id"),
        Index("ix_webhook_events_company_received", "company_id", "received_at"),
    )

    platform: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(200))
    company_id: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str | None] = mapped_column(String(64))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    sync_id: Mapped[uuid.UUID | None]
    signature_valid: Mapped[bool] = mapped_column(Boolean)
    headers: Mapped[dict[str, Any]]
    body: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32))
    """One of ``WEBHOOK_OUTCOMES``."""
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=_now)
    processed_at: Mapped[datetime | None]


class WorkerHeartbeat(Base):
    """A worker process seen recently (readiness and the queue view)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    active_jobs: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=_now)
    last_seen_at: Mapped[datetime] = mapped_column(default=_now)


class DailySyncStats(Base):
    """Outcomes of one company's jobs on one platform created on one UTC day (the rollup).

    Written by the maintenance tick once the day is over (``sync/rollup.py``); analytics reads
    whole days from here and only the edges of its window from the jobs. A row is trusted only
    when ``is_final``: every job of the day had finished when it was counted. Re-queueing a
    finished job of the day clears ``is_final`` and bumps ``version`` until it is counted again.
    """

    __tablename__ = "sync_daily_stats"

    company_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    with_duration: Mapped[int] = mapped_column(Integer, default=0)
    """Completed jobs that have a duration (the mean's denominator)."""
    duration_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    """Milliseconds, summed over the completed jobs that have a duration."""
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=_now)


class RollupProgress(Base):
    """How far the daily rollup has gone: every company's days in ``[from_day, through_day)``
    are in ``sync_daily_stats`` (a company with no row for such a day had no job that day)."""

    __tablename__ = "sync_rollup_progress"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    from_day: Mapped[date] = mapped_column(Date)
    through_day: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(default=_now)
