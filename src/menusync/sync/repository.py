"""SQL of the sync domain; every query that serves a user is filtered by company."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.platforms.models import IntegrationLog
from menusync.realtime.models import SyncEvent
from menusync.sync.models import PushRecord, SyncBatch, SyncConfiguration, SyncJob, WorkerHeartbeat
from menusync.sync.rollup import FINISHED, count_created
from menusync.sync.schemas import ACTIVE_STATUSES


@dataclass(frozen=True)
class HistoryFilter:
    platform: str | None = None
    status: str | None = None
    menu_id: uuid.UUID | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    user_id: str | None = None
    retryable_only: bool = False
    kind: str | None = None


SORTABLE = {
    "createdAt": SyncJob.created_at,
    "startedAt": SyncJob.started_at,
    "completedAt": SyncJob.completed_at,
    "duration": SyncJob.duration_ms,
    "priority": SyncJob.priority,
    "status": SyncJob.status,
    "platformType": SyncJob.platform,
}


class SyncRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_job(
        self, company_id: str, sync_id: uuid.UUID, *, lock: bool = False
    ) -> SyncJob | None:
        statement = select(SyncJob).where(SyncJob.company_id == company_id, SyncJob.id == sync_id)
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_job_any_company(
        self, sync_id: uuid.UUID, *, lock: bool = False
    ) -> SyncJob | None:
        """For the worker and webhook intake only (they act for the job's own company)."""
        statement = select(SyncJob).where(SyncJob.id == sync_id)
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_batch(
        self, company_id: str, batch_id: uuid.UUID, *, lock: bool = False
    ) -> SyncBatch | None:
        statement = select(SyncBatch).where(
            SyncBatch.company_id == company_id, SyncBatch.id == batch_id
        )
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_batch_jobs(self, batch_id: uuid.UUID) -> Sequence[SyncJob]:
        statement = (
            select(SyncJob)
            .where(SyncJob.batch_id == batch_id)
            .order_by(SyncJob.sequence, SyncJob.platform)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def find_queued_duplicate(
        self, company_id: str, menu_id: uuid.UUID, platform: str, store_key: str
    ) -> SyncJob | None:
        statement = (
            select(SyncJob)
            .where(
                SyncJob.company_id == company_id,
                SyncJob.menu_id == menu_id,
                SyncJob.platform == platform,
                SyncJob.store_key == store_key,
                SyncJob.kind == "menu",
                SyncJob.status.in_(("pending", "scheduled_retry")),
            )
            .order_by(SyncJob.created_at)
            .limit(1)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_awaiting_by_external_ref(
        self, platform: str, external_ref: str
    ) -> SyncJob | None:
        statement = (
            select(SyncJob)
            .where(
                SyncJob.platform == platform,
                SyncJob.external_ref == external_ref,
                SyncJob.status.in_(("awaiting_confirmation", "in_progress")),
            )
            .order_by(SyncJob.created_at.desc())
            .limit(1)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    def history_statement(self, company_id: str, filters: HistoryFilter) -> Select[SyncJob]:
        statement = select(SyncJob).where(SyncJob.company_id == company_id)
        if filters.platform:
            statement = statement.where(SyncJob.platform == filters.platform)
        if filters.status:
            statement = statement.where(SyncJob.status == filters.status)
        if filters.menu_id:
            statement = statement.where(SyncJob.menu_id == filters.menu_id)
        if filters.date_from:
            statement = statement.where(SyncJob.created_at >= filters.date_from)
        if filters.date_to:
            statement = statement.where(SyncJob.created_at <= filters.date_to)
        if filters.user_id:
            statement = statement.where(SyncJob.initiated_by == filters.user_id)
        if filters.retryable_only:
            statement = statement.where(
                SyncJob.status == "failed", SyncJob.error_retryable.is_(True)
            )
        if filters.kind:
            statement = statement.where(SyncJob.kind == filters.kind)
        return statement

    async def list_history(
        self,
        company_id: str,
        filters: HistoryFilter,
        *,
        sort_by: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[SyncJob], int]:
        base = self.history_statement(company_id, filters)
        total = await self.count_history(company_id, filters)
        column = SORTABLE[sort_by]
        ordered = (
            base.order_by(column.desc() if descending else column.asc(), SyncJob.id)
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(ordered)).scalars().all()
        return rows, int(total)

    async def count_history(self, company_id: str, filters: HistoryFilter) -> int:
        """How many jobs match: from the daily rollup (whole days) when the filters are ones it
        keeps (platform, dates, a finished status), else a count of the matching jobs."""
        counted_by_rollup = filters.status in (None, *FINISHED) and filters == HistoryFilter(
            platform=filters.platform,
            status=filters.status,
            date_from=filters.date_from,
            date_to=filters.date_to,
        )
        if counted_by_rollup:
            return await count_created(
                self.session,
                company_id,
                filters.date_from,
                filters.date_to,
                filters.platform,
                filters.status,
            )
        statement = select(func.count()).select_from(
            self.history_statement(company_id, filters).subquery()
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def list_active(self, company_id: str, limit: int = 500) -> Sequence[SyncJob]:
        statement = (
            select(SyncJob)
            .where(SyncJob.company_id == company_id, SyncJob.status.in_(ACTIVE_STATUSES))
            .order_by(SyncJob.created_at)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def list_scheduled_retries(self, company_id: str, limit: int = 500) -> Sequence[SyncJob]:
        statement = (
            select(SyncJob)
            .where(SyncJob.company_id == company_id, SyncJob.status == "scheduled_retry")
            .order_by(SyncJob.next_attempt_at)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def queue_depth(self, company_id: str) -> Sequence[tuple[str, str, int, datetime | None]]:
        statement = (
            select(
                SyncJob.platform, SyncJob.status, func.count(), func.min(SyncJob.next_attempt_at)
            )
            .where(SyncJob.company_id == company_id, SyncJob.status.in_(ACTIVE_STATUSES))
            .group_by(SyncJob.platform, SyncJob.status)
            .order_by(SyncJob.platform, SyncJob.status)
        )
        return [
            (row[0], row[1], int(row[2]), row[3])
            for row in (await self.session.execute(statement)).all()
        ]

    async def list_workers(self, since: datetime) -> Sequence[WorkerHeartbeat]:
        statement = (
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_seen_at >= since)
            .order_by(WorkerHeartbeat.worker_id)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def list_events(self, sync_id: uuid.UUID) -> Sequence[SyncEvent]:
        statement = select(SyncEvent).where(SyncEvent.sync_id == sync_id).order_by(SyncEvent.id)
        return (await self.session.execute(statement)).scalars().all()

    async def list_integration_logs(
        self, company_id: str, sync_id: uuid.UUID
    ) -> Sequence[IntegrationLog]:
        statement = (
            select(IntegrationLog)
            .where(IntegrationLog.company_id == company_id, IntegrationLog.sync_id == sync_id)
            .order_by(IntegrationLog.created_at, IntegrationLog.id)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def get_configuration(
        self, company_id: str, menu_id: uuid.UUID, platform: str
    ) -> SyncConfiguration | None:
        statement = select(SyncConfiguration).where(
            SyncConfiguration.company_id == company_id,
            SyncConfiguration.menu_id == menu_id,
            SyncConfiguration.platform == platform,
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_configurations(
        self, company_id: str, menu_id: uuid.UUID
    ) -> Sequence[SyncConfiguration]:
        statement = (
            select(SyncConfiguration)
            .where(SyncConfiguration.company_id == company_id, SyncConfiguration.menu_id == menu_id)
            .order_by(SyncConfiguration.platform)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def get_push_record(
        self, company_id: str, menu_id: uuid.UUID, platform: str, store_key: str
    ) -> PushRecord | None:
        statement = select(PushRecord).where(
            PushRecord.company_id == company_id,
            PushRecord.menu_id == menu_id,
            PushRecord.platform == platform,
            PushRecord.store_key == store_key,
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def average_duration_ms(self, company_id: str, platform: str) -> float | None:
        recent = (
            select(SyncJob.duration_ms)
            .where(
                SyncJob.company_id == company_id,
                SyncJob.platform == platform,
                SyncJob.status == "completed",
                SyncJob.duration_ms.is_not(None),
            )
            .order_by(SyncJob.completed_at.desc())
            .limit(20)
            .subquery()
        )
        value = (
            await self.session.execute(select(func.avg(recent.c.duration_ms)))
        ).scalar_one_or_none()
        return None if value is None else float(value)
