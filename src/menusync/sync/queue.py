"""The job queue lives on the job row (``platform_sync_logs``): claim, lease, heartbeat, fence.

A worker claims one due job per statement::

    UPDATE platform_sync_logs SET status='in_progress', lease_owner=:me, lease_expires_at=:until
    WHERE id = (SELECT id FROM platform_sync_logs
                WHERE <due> AND <target free> AND <earlier jobs of a sequence batch finished>
                ORDER BY priority DESC, next_attempt_at, created_at
                LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id

*Due* is ``pending``/``scheduled_retry`` whose ``next_attempt_at`` has come, or ``in_progress``
whose lease expired (its worker died). On PostgreSQL ``SKIP LOCKED`` lets workers claim side by
side; on SQLite the statement runs inside ``BEGIN IMMEDIATE`` (see ``core.db``), which serialises
claims. One job at a time per (platform, store) target is guaranteed by a partial unique index
(``uq_sync_jobs_active_target``): if two workers race for two jobs of one target, the second
claim fails on the index and that worker simply claims again.

Every later write by the worker is *fenced*: it locks the row ``WHERE id = :id AND lease_owner =
:me``; a worker whose lease was taken over finds nothing and stops (``LeaseLost``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningUpdate

from menusync.core.clock import Clock
from menusync.core.db import dialect_name
from menusync.core.signals import wake_after_commit
from menusync.sync.models import DUE_STATUSES, SyncJob

JOBS_CHANNEL = "menusync_jobs"
TARGET_BUSY_STATUSES = ("in_progress", "awaiting_confirmation")
UNFINISHED_STATUSES = ("pending", "scheduled_retry", "in_progress", "awaiting_confirmation")


class LeaseLost(Exception):
    """The job's lease now belongs to another worker (or the job was finished elsewhere)."""


def _claim_statement(kinds: tuple[str, ...] | None) -> ReturningUpdate[uuid.UUID]:
    """The claim, built once per queue with bound parameters ``now``, ``lease_until``, ``me``."""
    other = aliased(SyncJob)
    earlier = aliased(SyncJob)
    now = bindparam("now", type_=SyncJob.__table__.c.next_attempt_at.type)
    target_busy = exists().where(
        other.platform == SyncJob.platform,
        other.store_key == SyncJob.store_key,
        other.id != SyncJob.id,
        other.status.in_(TARGET_BUSY_STATUSES),
    )
    waiting_for_earlier = exists().where(
        earlier.batch_id == SyncJob.batch_id,
        earlier.sequence < SyncJob.sequence,
        earlier.status.in_(UNFINISHED_STATUSES),
    )
    due = or_(
        and_(SyncJob.status.in_(DUE_STATUSES), SyncJob.next_attempt_at <= now),
        and_(SyncJob.status == "in_progress", SyncJob.lease_expires_at < now),
    )
    candidate = (
        select(SyncJob.id)
        .where(due, ~target_busy, or_(SyncJob.sequence == 0, ~waiting_for_earlier))
        .order_by(SyncJob.priority.desc(), SyncJob.next_attempt_at, SyncJob.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if kinds:
        candidate = candidate.where(SyncJob.kind.in_(kinds))
    return (
        update(SyncJob)
        .where(SyncJob.id == candidate.scalar_subquery())
        .values(
            status="in_progress",
            lease_owner=bindparam("me"),
            lease_expires_at=bindparam(
                "lease_until", type_=SyncJob.__table__.c.lease_expires_at.type
            ),
            updated_at=now,
        )
        .returning(SyncJob.id)
        .execution_options(synchronize_session=False)
    )


class JobQueue:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        lease_seconds: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self._claims: dict[tuple[str, ...] | None, ReturningUpdate[uuid.UUID]] = {}

    async def claim(
        self, worker_id: str, *, now: datetime | None = None, kinds: tuple[str, ...] | None = None
    ) -> uuid.UUID | None:
        """Claim the next due job for ``worker_id``, or ``None`` when nothing is due.

        The time is read once the transaction has begun (on SQLite: once it holds the write
        lock), so a start time never predates a change the claim depended on."""
        for _ in range(5):
            try:
                async with self.sessions() as session, session.begin():
                    await session.connection()  # BEGIN (IMMEDIATE on SQLite) happens here
                    at = now or self.clock.now()
                    statement = self._claims.get(kinds)
                    if statement is None:
                        statement = self._claims[kinds] = _claim_statement(kinds)
                    params = {"now": at, "lease_until": at + self.lease, "me": worker_id}
                    job_id = (await session.execute(statement, params)).scalar_one_or_none()
                    if job_id is not None:
                        # First start time, kept across retries.
                        await session.execute(
                            update(SyncJob)
                            .where(SyncJob.id == job_id, SyncJob.started_at.is_(None))
                            .values(started_at=at)
                            .execution_options(synchronize_session=False)
                        )
                    return job_id
            except IntegrityError:
                # Another worker took a job of the same target at the same moment; try again.
                continue
        return None

    async def heartbeat(self, job_id: uuid.UUID, worker_id: str, now: datetime) -> bool:
        """Extend the lease; ``False`` when the lease is no longer ours (the caller stops)."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(SyncJob)
                .where(
                    SyncJob.id == job_id,
                    SyncJob.lease_owner == worker_id,
                    SyncJob.status == "in_progress",
                )
                .values(lease_expires_at=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def is_cancel_requested(self, job_id: uuid.UUID) -> bool:
        async with self.sessions() as session:
            value = (
                await session.execute(select(SyncJob.cancel_requested).where(SyncJob.id == job_id))
            ).scalar_one_or_none()
            return bool(value)

    async def release_all(self, worker_id: str, now: datetime) -> int:
        """Hand back every job this worker holds (graceful shutdown): they become due at once."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(SyncJob)
                .where(SyncJob.lease_owner == worker_id, SyncJob.status == "in_progress")
                .values(
                    status="pending",
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    stage="queued",
                    message="Released by a worker that shut down",
                )
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


async def lock_owned(session: AsyncSession, job_id: uuid.UUID, worker_id: str) -> SyncJob:
    """The job row, locked, if ``worker_id`` still holds its lease; else ``LeaseLost``."""
    statement = (
        select(SyncJob)
        .where(
            SyncJob.id == job_id, SyncJob.lease_owner == worker_id, SyncJob.status == "in_progress"
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    job = (await session.execute(statement)).scalar_one_or_none()
    if job is None:
        raise LeaseLost(str(job_id))
    return job


async def notify_jobs(session: AsyncSession) -> None:
    """Wake workers when the transaction commits: in this process (signal) and in others
    (PostgreSQL NOTIFY, delivered by PostgreSQL only on commit)."""
    wake_after_commit(session.info, "jobs")
    if dialect_name(session) == "postgresql":
        await session.execute(text(f"NOTIFY {JOBS_CHANNEL}"))
