"""SQL of the operations views (health, export, received webhooks), filtered by company.

Health reads aggregates only (one ``GROUP BY`` per question, on ``ix_sync_jobs_company_created``
and ``ix_sync_jobs_company_platform_status``); the export streams rows instead of loading them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, defer

from menusync.platforms.models import IntegrationLog
from menusync.sync.models import DUE_STATUSES, SyncJob, WebhookEvent
from menusync.sync.repository import SORTABLE, HistoryFilter, SyncRepository
from menusync.sync.schemas import ACTIVE_STATUSES

EXPORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "syncId": SyncJob.id,
    "batchId": SyncJob.batch_id,
    "platformType": SyncJob.platform,
    "platformMenuId": SyncJob.menu_id,
    "kind": SyncJob.kind,
    "status": SyncJob.status,
    "progress": SyncJob.progress,
    "stage": SyncJob.stage,
    "message": SyncJob.message,
    "attempt": SyncJob.attempt,
    "maxAttempts": SyncJob.max_attempts,
    "priority": SyncJob.priority,
    "trigger": SyncJob.trigger,
    "initiatedBy": SyncJob.initiated_by,
    "createdAt": SyncJob.created_at,
    "startedAt": SyncJob.started_at,
    "completedAt": SyncJob.completed_at,
    "duration": SyncJob.duration_ms,
    "itemsProcessed": SyncJob.items_processed,
    "itemsTotal": SyncJob.items_total,
    "errorCode": SyncJob.error_code,
    "errorMessage": SyncJob.error_message,
    "errorRetryable": SyncJob.error_retryable,
    "externalId": SyncJob.external_ref,
    "nextRetryAt": SyncJob.next_attempt_at,
    "unchanged": SyncJob.is_unchanged,
}
"""The CSV header (the names of ``SyncStatus``) and the column each is read from; only these
columns are read (no payloads, no request bodies)."""


@dataclass(frozen=True)
class OutcomeCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class DueBacklog:
    due: int
    oldest_due_at: datetime | None


@dataclass(frozen=True)
class WebhookFilter:
    platform: str | None = None
    outcome: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None


@dataclass(frozen=True)
class WebhookRow:
    event: WebhookEvent
    body: str
    body_size: int


class OperationsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_outcomes_since(
        self, company_id: str, since: datetime
    ) -> dict[str, OutcomeCounts]:
        """The company's jobs created at or after ``since``, by platform."""
        statement = (
            select(
                SyncJob.platform,
                func.count().label("total"),
                func.count().filter(SyncJob.status == "completed").label("completed"),
                func.count().filter(SyncJob.status == "failed").label("failed"),
            )
            .where(SyncJob.company_id == company_id, SyncJob.created_at >= since)
            .group_by(SyncJob.platform)
        )
        return {
            row.platform: OutcomeCounts(int(row.total), int(row.completed), int(row.failed))
            for row in (await self.session.execute(statement)).all()
        }

    async def count_active(self, company_id: str) -> int:
        statement = select(func.count()).where(
            SyncJob.company_id == company_id, SyncJob.status.in_(ACTIVE_STATUSES)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def due_backlog(self, company_id: str, now: datetime) -> DueBacklog:
        """The company's jobs waiting for a worker although their time has come."""
        statement = select(func.count(), func.min(SyncJob.next_attempt_at)).where(
            SyncJob.company_id == company_id,
            SyncJob.status.in_(DUE_STATUSES),
            SyncJob.next_attempt_at <= now,
        )
        count, oldest = (await self.session.execute(statement)).one()
        return DueBacklog(int(count), oldest)

    async def average_call_latency(self, company_id: str, since: datetime) -> float | None:
        """Mean duration of the company's platform API calls made at or after ``since``, ms."""
        statement = select(func.avg(IntegrationLog.duration_ms)).where(
            IntegrationLog.company_id == company_id, IntegrationLog.created_at >= since
        )
        value = (await self.session.execute(statement)).scalar_one_or_none()
        return None if value is None else float(value)

    async def stream_history(
        self,
        company_id: str,
        filters: HistoryFilter,
        *,
        sort_by: str,
        descending: bool,
        batch_size: int = 500,
    ) -> AsyncIterator[Row[Any]]:
        """The filtered history as rows of :data:`EXPORT_COLUMNS`, fetched ``batch_size`` at a
        time through a server-side cursor (never the whole result in memory)."""
        column = SORTABLE[sort_by]
        statement = (
            SyncRepository(self.session)
            .history_statement(company_id, filters)
            .with_only_columns(*EXPORT_COLUMNS.values())
            .order_by(column.desc() if descending else column.asc(), SyncJob.id)
            .execution_options(yield_per=batch_size)
        )
        result = await self.session.stream(statement)
        async for row in result:
            yield row

    async def list_webhook_events(
        self,
        company_id: str,
        filters: WebhookFilter,
        *,
        offset: int,
        limit: int,
        body_limit: int,
    ) -> tuple[list[WebhookRow], int]:
        """Webhooks matched to the company, newest first; bodies cut to ``body_limit`` characters
        in SQL, so a page never reads whole large bodies."""
        where = [WebhookEvent.company_id == company_id]
        if filters.platform:
            where.append(WebhookEvent.platform == filters.platform)
        if filters.outcome:
            where.append(WebhookEvent.outcome == filters.outcome)
        if filters.date_from:
            where.append(WebhookEvent.received_at >= filters.date_from)
        if filters.date_to:
            where.append(WebhookEvent.received_at <= filters.date_to)
        total = (
            await self.session.execute(select(func.count()).select_from(WebhookEvent).where(*where))
        ).scalar_one()
        statement = (
            select(
                WebhookEvent,
                func.substr(WebhookEvent.body, 1, body_limit).label("body_head"),
                func.length(WebhookEvent.body).label("body_size"),
            )
            .options(defer(WebhookEvent.body))
            .where(*where)
            .order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = [
            WebhookRow(event=row[0], body=row.body_head or "", body_size=int(row.body_size or 0))
            for row in (await self.session.execute(statement)).all()
        ]
        return rows, int(total)
