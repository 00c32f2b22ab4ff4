"""The state changes of a job, each with its event, in the caller's transaction.

Runner, confirmation poller, webhook intake and service all move jobs through these functions, so
a job reaches ``completed`` (or ``failed``...) the same way whoever observed it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.sync.models import PushRecord, SyncBatch, SyncJob
from menusync.sync.queue import notify_jobs
from menusync.sync.schemas import TERMINAL_STATUSES
from menusync.sync.tracking import Tracker


def _finish(job: SyncJob, status: str, now: datetime) -> None:
    job.status = status
    job.lease_owner = None
    job.lease_expires_at = None
    job.next_poll_at = None
    job.confirmation_deadline_at = None
    job.completed_at = now
    job.updated_at = now
    if job.started_at is not None:
        job.duration_ms = max(0, int((now - job.started_at).total_seconds() * 1000))


async def complete(
    session: AsyncSession,
    tracker: Tracker,
    job: SyncJob,
    now: datetime,
    *,
    message: str,
    unchanged: bool = False,
    pushed_payload: dict[str, Any] | None = None,
) -> None:
    """Done. For a menu push, remember what the target now has (no-op detection, diffs)."""
    _finish(job, "completed", now)
    job.progress = 100
    job.stage = "completed"
    job.message = message
    job.items_processed = job.items_total
    job.is_unchanged = unchanged
    job.error_code = job.error_message = None
    job.error_retryable = None
    job.error_details = None
    if (
        job.kind == "menu"
        and job.menu_id is not None
        and job.payload_hash
        and pushed_payload is not None
    ):
        await record_push(session, job, now, pushed_payload)
    if job.kind == "menu" and pushed_payload and pushed_payload.get("followUp"):
        await _queue_follow_up(session, tracker, job, now, pushed_payload["followUp"])
    if "pushedPayload" in (job.request or {}):
        # The push record keeps it; the history row need not carry a second copy.
        job.request = {k: v for k, v in job.request.items() if k != "pushedPayload"}
    await tracker.completed(job)


async def _queue_follow_up(
    session: AsyncSession,
    tracker: Tracker,
    job: SyncJob,
    now: datetime,
    changes: list[dict[str, Any]],
) -> None:
    """Availability the menu body could not carry, applied now that the menu is live (the
    store was busy until this moment, so the change cannot race the upload)."""
    follow_up = SyncJob(
        id=uuid.uuid4(),
        company_id=job.company_id,
        batch_id=None,
        menu_id=job.menu_id,
        menu_version=job.menu_version,
        platform=job.platform,
        store_key=job.store_key,
        kind="availability",
        status="pending",
        priority=max(job.priority, 7),
        max_attempts=job.max_attempts,
        next_attempt_at=now,
        is_forced=True,
        request={"changes": changes, "after": str(job.id)},
        trigger="follow_up",
        initiated_by=job.initiated_by,
        correlation_id=job.correlation_id,
        stage="queued",
        message=f"Marks {len(changes)} item(s) unavailable after the menu went live",
        created_at=now,
        updated_at=now,
    )
    session.add(follow_up)
    await session.flush()
    await tracker.started(follow_up)
    await notify_jobs(session)


async def record_push(
    session: AsyncSession, job: SyncJob, now: datetime, payload: dict[str, Any]
) -> None:
    assert job.menu_id is not None
    assert job.payload_hash is not None
    record = (
        await session.execute(
            select(PushRecord).where(
                PushRecord.company_id == job.company_id,
                PushRecord.menu_id == job.menu_id,
                PushRecord.platform == job.platform,
                PushRecord.store_key == job.store_key,
            )
        )
    ).scalar_one_or_none()
    if record is None:
        record = PushRecord(
            company_id=job.company_id,
            menu_id=job.menu_id,
            platform=job.platform,
            store_key=job.store_key,
        )
        session.add(record)
    record.payload_hash = job.payload_hash
    record.payload = payload
    record.menu_version = job.menu_version or 0
    record.sync_id = job.id
    record.pushed_at = now


async def fail(
    session: AsyncSession,
    tracker: Tracker,
    job: SyncJob,
    now: datetime,
    *,
    code: str,
    message: str,
    retryable: bool = False,
    details: dict[str, Any] | None = None,
) -> None:
    """Failed for good (a permanent error, or retries exhausted)."""
    _finish(job, "failed", now)
    job.stage = "failed"
    job.message = message
    job.error_code = code
    job.error_message = message
    job.error_retryable = retryable
    job.error_details = details or {}
    await tracker.failed(job)
    if job.batch_id is not None:
        await _fail_fast(session, tracker, job, now)


async def schedule_retry(
    tracker: Tracker,
    job: SyncJob,
    at: datetime,
    now: datetime,
    *,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> None:
    """A transient failure: run again at ``at`` (the attempt was counted when it was made)."""
    job.status = "scheduled_retry"
    job.lease_owner = None
    job.lease_expires_at = None
    job.next_poll_at = None
    job.confirmation_deadline_at = None
    job.next_attempt_at = at
    job.stage = "retry_scheduled"
    job.message = message
    job.error_code = code
    job.error_message = message
    job.error_retryable = True
    job.error_details = details or {}
    job.updated_at = now
    await tracker.retry_scheduled(job)


async def defer(
    tracker: Tracker, job: SyncJob, at: datetime, now: datetime, *, reason: str, code: str
) -> None:
    """Not now, through no fault of the job (breaker open, rate budget used): come back at
    ``at`` without consuming an attempt."""
    job.status = "scheduled_retry" if job.attempt else "pending"
    job.lease_owner = None
    job.lease_expires_at = None
    job.next_attempt_at = at
    job.stage = "deferred"
    job.message = reason
    job.updated_at = now
    if job.status == "scheduled_retry":
        job.error_code = code
        job.error_message = reason
        job.error_retryable = True
        await tracker.retry_scheduled(job)
    else:
        await tracker.progress(job)


async def cancel(tracker: Tracker, job: SyncJob, now: datetime, *, message: str) -> None:
    _finish(job, "cancelled", now)
    job.stage = "cancelled"
    job.message = message
    job.cancel_requested = True
    await tracker.cancelled(job)


async def _fail_fast(
    session: AsyncSession, tracker: Tracker, failed: SyncJob, now: datetime
) -> None:
    """In a ``failFast`` batch, one failure cancels the batch's unfinished jobs."""
    batch = await session.get(SyncBatch, failed.batch_id)
    if batch is None or not batch.fail_fast:
        return
    others = (
        (
            await session.execute(
                select(SyncJob)
                .where(SyncJob.batch_id == failed.batch_id, SyncJob.id != failed.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    for other in others:
        if other.status in TERMINAL_STATUSES:
            continue
        if other.status in ("pending", "scheduled_retry"):
            await cancel(
                tracker,
                other,
                now,
                message=f"Cancelled: {failed.platform} failed in a failFast batch",
            )
        else:
            other.cancel_requested = True
            other.message = f"Cancel requested: {failed.platform} failed in a failFast batch"
