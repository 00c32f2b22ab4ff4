"""How a job's state is shown and announced: the ``SyncStatus`` view, the events of every change,
and the batch aggregate recomputed in the same transaction as each job change."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.clock import Clock
from menusync.realtime.events import EventType
from menusync.realtime.outbox import EventWriter
from menusync.sync.models import SyncBatch, SyncJob
from menusync.sync.schemas import TERMINAL_STATUSES, BatchStatus, SyncError, SyncStatus


def job_status(job: SyncJob) -> SyncStatus:
    error = None
    if job.error_code:
        error = SyncError(
            code=job.error_code,
            message=job.error_message or "",
            retryable=bool(job.error_retryable),
            details=job.error_details or {},
        )
    return SyncStatus(
        sync_id=job.id,
        batch_id=job.batch_id,
        platform_type=job.platform,
        platform_menu_id=job.menu_id,
        kind=job.kind,
        status=job.status,
        progress=job.progress,
        stage=job.stage,
        message=job.message,
        started_at=job.started_at,
        completed_at=job.completed_at,
        duration=job.duration_ms,
        items_processed=job.items_processed,
        items_total=job.items_total,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        next_retry_at=job.next_attempt_at if job.status == "scheduled_retry" else None,
        error=error,
        external_id=job.external_ref,
        trigger=job.trigger,
        initiated_by=job.initiated_by,
        priority=job.priority,
        unchanged=job.is_unchanged,
        created_at=job.created_at,
    )


def batch_status(batch: SyncBatch, jobs: list[SyncJob]) -> BatchStatus:
    return BatchStatus(
        batch_id=batch.id,
        platform_menu_id=batch.menu_id,
        platforms=[str(p) for p in batch.platforms],
        execution_mode=batch.execution_mode,
        fail_fast=batch.fail_fast,
        overall_status=batch.overall_status,
        overall_progress=batch.overall_progress,
        started_at=batch.started_at,
        completed_at=batch.completed_at,
        total_operations=batch.total_operations,
        completed_operations=batch.completed_operations,
        failed_operations=batch.failed_operations,
        cancelled_operations=batch.cancelled_operations,
        in_progress_operations=sum(1 for job in jobs if job.status not in TERMINAL_STATUSES),
        operations=[job_status(job) for job in jobs],
    )


def overall_status(counts: dict[str, int], total: int) -> str:
    finished = counts.get("completed", 0) + counts.get("failed", 0) + counts.get("cancelled", 0)
    if finished < total:
        return (
            "in_progress"
            if finished or counts.get("in_progress") or counts.get("awaiting_confirmation")
            else "pending"
        )
    if counts.get("completed", 0) == total:
        return "completed"
    if counts.get("cancelled", 0) == total:
        return "cancelled"
    if counts.get("completed", 0) > 0:
        return "partial"
    return "failed" if counts.get("failed", 0) else "cancelled"


class Tracker:
    """Writes the events of job and batch changes into the current transaction."""

    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self.events = EventWriter(session, clock)

    async def emit(self, job: SyncJob, event_type: EventType, **data: Any) -> None:
        payload = {"syncId": str(job.id), "platformType": job.platform, **data}
        await self.events.emit(
            job.company_id, event_type, payload, sync_id=job.id, batch_id=job.batch_id
        )

    async def started(self, job: SyncJob) -> None:
        await self.emit(
            job,
            EventType.SYNC_STARTED,
            platformMenuId=str(job.menu_id) if job.menu_id else None,
            status=job.status,
            kind=job.kind,
        )

    async def progress(self, job: SyncJob, *, estimated_seconds_left: float | None = None) -> None:
        await self.emit(
            job,
            EventType.SYNC_PROGRESS,
            status=job.status,
            progress=job.progress,
            stage=job.stage,
            message=job.message,
            itemsProcessed=job.items_processed,
            totalItems=job.items_total,
            estimatedTimeRemaining=estimated_seconds_left,
        )
        await self.refresh_batch(job)

    async def retry_scheduled(self, job: SyncJob) -> None:
        await self.emit(
            job,
            EventType.SYNC_RETRY_SCHEDULED,
            attempt=job.attempt,
            nextRetryAt=job.next_attempt_at.isoformat(),
            error={"code": job.error_code, "message": job.error_message, "retryable": True}
            if job.error_code
            else None,
            message=job.message,
        )
        await self.refresh_batch(job)

    async def completed(self, job: SyncJob) -> None:
        await self.emit(
            job,
            EventType.SYNC_COMPLETED,
            status=job.status,
            progress=100,
            duration=job.duration_ms,
            itemsProcessed=job.items_processed,
            message=job.message,
            unchanged=job.is_unchanged,
        )
        await self.refresh_batch(job)

    async def failed(self, job: SyncJob) -> None:
        await self.emit(
            job,
            EventType.SYNC_FAILED,
            status=job.status,
            error={
                "code": job.error_code,
                "message": job.error_message,
                "retryable": bool(job.error_retryable),
                "details": job.error_details or {},
            },
        )
        await self.refresh_batch(job)

    async def cancelled(self, job: SyncJob) -> None:
        await self.emit(job, EventType.SYNC_CANCELLED, status=job.status, message=job.message)
        await self.refresh_batch(job)

    async def batch_started(self, batch: SyncBatch) -> None:
        await self.events.emit(
            batch.company_id,
            EventType.BATCH_STARTED,
            {
                "batchId": str(batch.id),
                "platforms": list(batch.platforms),
                "platformMenuId": str(batch.menu_id) if batch.menu_id else None,
                "totalOperations": batch.total_operations,
            },
            batch_id=batch.id,
        )

    async def refresh_batch(self, job: SyncJob) -> None:
        """Recompute the job's batch from its jobs (under the batch row lock) and announce it."""
        if job.batch_id is None:
            return
        await self.session.flush()
        batch = await self._lock_batch(job.batch_id)
        if batch is None:
            return
        rows = (
            await self.session.execute(
                select(SyncJob.status, func.count(), func.sum(SyncJob.progress))
                .where(SyncJob.batch_id == batch.id)
                .group_by(SyncJob.status)
            )
        ).all()
        counts = {row[0]: int(row[1]) for row in rows}
        progress_sum = sum(
            100 * int(row[1]) if row[0] in TERMINAL_STATUSES else int(row[2] or 0) for row in rows
        )
        total = batch.total_operations or sum(counts.values())
        previous = batch.overall_status
        batch.completed_operations = counts.get("completed", 0)
        batch.failed_operations = counts.get("failed", 0)
        batch.cancelled_operations = counts.get("cancelled", 0)
        batch.overall_progress = int(progress_sum / total) if total else 0
        batch.overall_status = overall_status(counts, total)
        now = self.clock.now()
        if batch.started_at is None and batch.overall_status != "pending":
            batch.started_at = now
        batch.updated_at = now
        data = {
            "batchId": str(batch.id),
            "overallProgress": batch.overall_progress,
            "overallStatus": batch.overall_status,
            "completedOperations": batch.completed_operations,
            "failedOperations": batch.failed_operations,
            "totalOperations": total,
            "currentOperation": {
                "syncId": str(job.id),
                "platformType": job.platform,
                "status": job.status,
            },
        }
        await self.events.emit(batch.company_id, EventType.BATCH_PROGRESS, data, batch_id=batch.id)
        finished = batch.overall_status in ("completed", "partial", "failed", "cancelled")
        if finished and previous not in ("completed", "partial", "failed", "cancelled"):
            batch.completed_at = now
            await self.events.emit(
                batch.company_id,
                EventType.BATCH_COMPLETED,
                {
                    "batchId": str(batch.id),
                    "overallStatus": batch.overall_status,
                    "completedOperations": batch.completed_operations,
                    "failedOperations": batch.failed_operations,
                    "cancelledOperations": batch.cancelled_operations,
                },
                batch_id=batch.id,
            )

    async def _lock_batch(self, batch_id: uuid.UUID) -> SyncBatch | None:
        statement = (
            select(SyncBatch)
            .where(SyncBatch.id == batch_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()
