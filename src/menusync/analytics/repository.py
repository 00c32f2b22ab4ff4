"""Analytics SQL: aggregates only, every query filtered by company and by a created-at window.

Nothing here loads job rows into Python: each method answers one ``GROUP BY`` whose result has
one row per platform, bucket, error code or attempt count. Two portable tricks:

* Percentiles are ``percentile_cont`` on PostgreSQL. SQLite has no ordered-set aggregates, so
  there window functions (``row_number`` and ``count`` over the group) pick the two ranks around
  ``q * (n - 1)`` and interpolate the same way: both databases give the same numbers.
* Time buckets: ``date_trunc`` on PostgreSQL (in UTC, whatever the session time zone),
  ``strftime`` on SQLite (which stores UTC without a zone).

These two are the only dialect branches; everything else is one statement for both.

The window is ``[start, end]`` on ``created_at``, served by ``ix_sync_jobs_company_created`` and
``ix_integration_logs_company_created``.

Outcome counts by platform (the summary and the platform comparison) read whole days from the
daily rollup (``sync/rollup.py``) where it is final, and only the rest of the window from the
jobs: a quarter is about ninety rollup rows per platform plus two partial days of jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.analytics.schemas import Bucket
from menusync.platforms.models import IntegrationLog
from menusync.sync.models import SyncJob
from menusync.sync.rollup import StatusCounts, count_outcomes, outcome_columns

FINISHED_OK = "completed"
FINISHED_FAILED = "failed"
FINISHED_CANCELLED = "cancelled"
FINISHED = (FINISHED_OK, FINISHED_FAILED, FINISHED_CANCELLED)


@dataclass(frozen=True)
class Distribution:
    """Size, mean and one percentile of a set of values."""

    count: int = 0
    mean: float = 0.0
    percentile: float = 0.0


@dataclass(frozen=True)
class CallStats:
    total: int
    failed: int
    latency: Distribution


@dataclass(frozen=True)
class BucketCounts:
    start: datetime
    counts: StatusCounts


@dataclass(frozen=True)
class ErrorRow:
    error_code: str | None
    platform: str
    current: int
    previous: int
    retryable: int


def _percentile_by_group(
    group: SQLColumnExpression[Any],
    value: SQLColumnExpression[Any],
    where: Sequence[ColumnElement[bool]],
    percent: int,
    dialect: str,
) -> Select[Any]:
    """``(grp, n, mean, percentile)`` per group; the percentile interpolated as ``percentile_cont``.

    PostgreSQL runs ``percentile_cont`` itself (an ordered-set aggregate: one sort, no window).
    Elsewhere ranks come from window functions: the 0-based position of the percentile is
    ``percent * (n - 1) / 100``, so with integer arithmetic (portable, exact) its rank is
    ``lo = percent * (n - 1) // 100 + 1`` and the fraction towards rank ``lo + 1`` is
    ``percent * (n - 1) % 100 / 100``.
    """
    if dialect == "postgresql":
        return (
            select(
                group.label("grp"),
                func.count().label("n"),
                func.avg(value).label("mean"),
                func.percentile_cont(percent / 100).within_group(value).label("percentile"),
            )
            .where(*where, value.is_not(None))
            .group_by(group)
        )
    ranked = (
        select(
            group.label("grp"),
            value.label("v"),
            func.row_number().over(partition_by=group, order_by=value).label("rn"),
            func.count().over(partition_by=group).label("n"),
        )
        .where(*where, value.is_not(None))
        .subquery()
    )
    position = literal(percent) * (ranked.c.n - 1)
    lo = position // 100 + 1
    fraction = position % 100
    lo_value = func.max(case((ranked.c.rn == lo, ranked.c.v)))
    hi_value = func.coalesce(func.max(case((ranked.c.rn == lo + 1, ranked.c.v))), lo_value)
    percentile = lo_value + (hi_value - lo_value) * func.max(fraction) / 100.0
    return select(
        ranked.c.grp,
        func.count().label("n"),
        func.avg(ranked.c.v).label("mean"),
        percentile.label("percentile"),
    ).group_by(ranked.c.grp)


def _distribution(row: Any) -> Distribution:
    return Distribution(
        count=int(row.n), mean=float(row.mean or 0), percentile=float(row.percentile or 0)
    )


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    @staticmethod
    def _jobs_in(
        company_id: str, start: datetime, end: datetime, platform: str | None
    ) -> list[ColumnElement[bool]]:
        where = [
            SyncJob.company_id == company_id,
            SyncJob.created_at >= start,
            SyncJob.created_at <= end,
        ]
        if platform is not None:
            where.append(SyncJob.platform == platform)
        return where

    async def count_outcomes_by_platform(
        self, company_id: str, start: datetime, end: datetime, platform: str | None = None
    ) -> dict[str, StatusCounts]:
        """Jobs created in the window by platform: totals, outcomes, completed durations (whole
        days from the daily rollup)."""
        return await count_outcomes(self.session, company_id, start, end, platform)

    async def duration_percentile_by_platform(
        self,
        company_id: str,
        start: datetime,
        end: datetime,
        platform: str | None = None,
        *,
        percent: int = 95,
    ) -> dict[str, Distribution]:
        """Durations of the completed jobs created in the window, by platform."""
        where = [*self._jobs_in(company_id, start, end, platform), SyncJob.status == FINISHED_OK]
        statement = _percentile_by_group(
            SyncJob.platform, SyncJob.duration_ms, where, percent, self._dialect
        )
        rows = (await self.session.execute(statement)).all()
        return {row.grp: _distribution(row) for row in rows}

    async def call_stats_by_platform(
        self,
        company_id: str,
        start: datetime,
        end: datetime,
        platform: str | None = None,
        *,
        percent: int = 95,
    ) -> dict[str, CallStats]:
        """Outbound platform API calls made in the window, by platform: volume, failures, latency."""
        where = [
            IntegrationLog.company_id == company_id,
            IntegrationLog.created_at >= start,
            IntegrationLog.created_at <= end,
        ]
        if platform is not None:
            where.append(IntegrationLog.platform == platform)
        failed = IntegrationLog.status_code.is_(None) | (IntegrationLog.status_code >= 400)
        counts = (
            select(
                IntegrationLog.platform,
                func.count().label("total"),
                func.count().filter(failed).label("failed"),
            )
            .where(*where)
            .group_by(IntegrationLog.platform)
        )
        latency = _percentile_by_group(
            IntegrationLog.platform, IntegrationLog.duration_ms, where, percent, self._dialect
        )
        distributions = {
            row.grp: _distribution(row) for row in (await self.session.execute(latency)).all()
        }
        return {
            row.platform: CallStats(
                total=int(row.total),
                failed=int(row.failed),
                latency=distributions.get(row.platform, Distribution()),
            )
            for row in (await self.session.execute(counts)).all()
        }

    def _bucket_start(self, bucket: Bucket) -> ColumnElement[Any]:
        if self._dialect == "postgresql":
            # timezone('UTC', timestamptz) is the UTC wall time, so the session zone is moot.
            return func.date_trunc(bucket, func.timezone("UTC", SyncJob.created_at))
        pattern = "%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00"
        return func.strftime(pattern, SyncJob.created_at)

    async def count_outcomes_by_bucket(
        self,
        company_id: str,
        start: datetime,
        end: datetime,
        bucket: Bucket,
        platform: str | None = None,
    ) -> list[BucketCounts]:
        """Jobs created in the window by hour or day (UTC); only buckets that have jobs."""
        bucket_start = self._bucket_start(bucket).label("bucket_start")
        statement = (
            select(bucket_start, *outcome_columns())
            .where(*self._jobs_in(company_id, start, end, platform))
            .group_by(bucket_start)
            .order_by(bucket_start)
        )
        rows = (await self.session.execute(statement)).all()
        return [
            BucketCounts(start=_as_utc(row.bucket_start), counts=StatusCounts.of(row))
            for row in rows
        ]

    async def count_failures(
        self,
        company_id: str,
        previous_start: datetime,
        start: datetime,
        end: datetime,
        platform: str | None = None,
    ) -> list[ErrorRow]:
        """Failed jobs by (error code, platform), in ``[start, end]`` and ``[previous_start,
        start)``, in one pass over both windows."""
        where = [
            *self._jobs_in(company_id, previous_start, end, platform),
            SyncJob.status == FINISHED_FAILED,
        ]
        current = SyncJob.created_at >= start
        statement = (
            select(
                SyncJob.error_code,
                SyncJob.platform,
                func.count().filter(current).label("current"),
                func.count().filter(~current).label("previous"),
                func.count().filter(current, SyncJob.error_retryable.is_(True)).label("retryable"),
            )
            .where(*where)
            .group_by(SyncJob.error_code, SyncJob.platform)
        )
        rows = (await self.session.execute(statement)).all()
        return [
            ErrorRow(
                error_code=row.error_code,
                platform=row.platform,
                current=int(row.current),
                previous=int(row.previous),
                retryable=int(row.retryable),
            )
            for row in rows
        ]

    async def count_outcomes_by_attempts(
        self, company_id: str, start: datetime, end: datetime, platform: str | None = None
    ) -> dict[int, StatusCounts]:
        """Jobs created in the window by the number of attempts they made."""
        statement = (
            select(SyncJob.attempt, *outcome_columns())
            .where(*self._jobs_in(company_id, start, end, platform))
            .group_by(SyncJob.attempt)
        )
        rows = (await self.session.execute(statement)).all()
        return {int(row.attempt): StatusCounts.of(row) for row in rows}


def _as_utc(value: datetime | str) -> datetime:
    """A bucket start as read back: naive UTC ``datetime`` (PostgreSQL) or text (SQLite)."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
