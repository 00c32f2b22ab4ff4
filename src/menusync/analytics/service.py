"""Sync analytics for one company: windows on the injected clock, rates and rollups over the
repository's aggregates. Read-only; never commits."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from menusync.analytics.repository import AnalyticsRepository, CallStats, Distribution, ErrorRow
from menusync.analytics.schemas import (
    ApiCallStats,
    Bucket,
    ErrorCodeTotal,
    ErrorCounts,
    ErrorGroup,
    ErrorPlatformTotal,
    ErrorsData,
    Period,
    PlatformBreakdown,
    PlatformsData,
    PlatformStats,
    RetriesData,
    RetryAttempts,
    SummaryData,
    TimelineBucket,
    TimelineData,
    Trend,
)
from menusync.core.clock import Clock
from menusync.sync.rollup import StatusCounts
from menusync.tenancy.context import AuthContext

PERIODS: dict[Period, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "quarter": timedelta(days=90),
}
BUCKETS: dict[Bucket, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
UNKNOWN_ERROR = "unknown"


def percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def success_rate(counts: StatusCounts) -> float:
    return percent(counts.completed, counts.completed + counts.failed)


def avg_duration(counts: StatusCounts) -> int:
    if not counts.with_duration:
        return 0
    return round(counts.duration_sum / counts.with_duration)


def combine(counts: Iterable[StatusCounts]) -> StatusCounts:
    return sum(counts, StatusCounts())


def truncate(moment: datetime, bucket: Bucket) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


def trend_of(count: int, previous: int) -> dict[str, Any]:
    """The fields of ``ErrorCounts``: this window's count against the previous one's."""
    change = count - previous
    trend: Trend = "up" if change > 0 else "down" if change < 0 else "flat"
    return {
        "count": count,
        "previous_count": previous,
        "change": change,
        "change_percent": round(100 * change / previous, 2) if previous else None,
        "trend": trend,
    }


CountsT = TypeVar("CountsT", bound=ErrorCounts)


def _largest_first(items: Iterable[CountsT], key: Callable[[CountsT], str]) -> list[CountsT]:
    return sorted(items, key=lambda item: (-item.count, -item.previous_count, key(item)))


class AnalyticsService:
    def __init__(self, repository: AnalyticsRepository, clock: Clock) -> None:
        self.repository = repository
        self.clock = clock

    def _window(self, period: Period) -> tuple[datetime, datetime]:
        end = self.clock.now()
        return end - PERIODS[period], end

    async def summarize(
        self, auth: AuthContext, period: Period, platform: str | None = None
    ) -> SummaryData:
        """Totals, outcomes, success rate and mean duration of the company's jobs created in the
        period, overall and per platform."""
        start, end = self._window(period)
        by_platform = await self.repository.count_outcomes_by_platform(
            auth.company_id, start, end, platform
        )
        overall = combine(by_platform.values())
        return SummaryData(
            period=period,
            period_start=start,
            period_end=end,
            total_syncs=overall.total,
            successful_syncs=overall.completed,
            failed_syncs=overall.failed,
            cancelled_syncs=overall.cancelled,
            success_rate=success_rate(overall),
            avg_duration=avg_duration(overall),
            platform_breakdown={
                name: PlatformBreakdown(
                    total=counts.total,
                    successful=counts.completed,
                    failed=counts.failed,
                    cancelled=counts.cancelled,
                    success_rate=success_rate(counts),
                    avg_duration=avg_duration(counts),
                )
                for name, counts in sorted(by_platform.items())
            },
        )

    async def compare_platforms(
        self, auth: AuthContext, period: Period, platform: str | None = None
    ) -> PlatformsData:
        """Per platform: job volume and outcomes, duration mean and p95, and the latency and
        failures of the calls made to the platform's API."""
        start, end = self._window(period)
        company = auth.company_id
        outcomes = await self.repository.count_outcomes_by_platform(company, start, end, platform)
        durations = await self.repository.duration_percentile_by_platform(
            company, start, end, platform
        )
        calls = await self.repository.call_stats_by_platform(company, start, end, platform)
        platforms = []
        for name in sorted(outcomes.keys() | calls.keys()):
            counts = outcomes.get(name, StatusCounts())
            duration = durations.get(name, Distribution())
            call = calls.get(name, CallStats(total=0, failed=0, latency=Distribution()))
            platforms.append(
                PlatformStats(
                    platform_type=name,
                    total_syncs=counts.total,
                    successful_syncs=counts.completed,
                    failed_syncs=counts.failed,
                    cancelled_syncs=counts.cancelled,
                    success_rate=success_rate(counts),
                    avg_duration=avg_duration(counts),
                    p95_duration=round(duration.percentile),
                    api_calls=ApiCallStats(
                        total=call.total,
                        failed=call.failed,
                        error_rate=percent(call.failed, call.total),
                        avg_latency=round(call.latency.mean),
                        p95_latency=round(call.latency.percentile),
                    ),
                )
            )
        return PlatformsData(period=period, period_start=start, period_end=end, platforms=platforms)

    async def chart_timeline(
        self, auth: AuthContext, period: Period, bucket: Bucket, platform: str | None = None
    ) -> TimelineData:
        """Jobs by outcome per hour or day of the period (UTC), every bucket present."""
        start, end = self._window(period)
        found = {
            row.start: row.counts
            for row in await self.repository.count_outcomes_by_bucket(
                auth.company_id, start, end, bucket, platform
            )
        }
        buckets = []
        moment = truncate(start, bucket)
        while moment <= end:
            counts = found.get(moment, StatusCounts())
            buckets.append(
                TimelineBucket(
                    start=moment,
                    total=counts.total,
                    completed=counts.completed,
                    failed=counts.failed,
                    cancelled=counts.cancelled,
                    active=counts.active,
                )
            )
            moment += BUCKETS[bucket]
        return TimelineData(
            period=period, period_start=start, period_end=end, bucket=bucket, buckets=buckets
        )

    async def break_down_errors(
        self, auth: AuthContext, period: Period, platform: str | None = None
    ) -> ErrorsData:
        """Failed jobs by error code and platform, each against the previous period of equal
        length."""
        start, end = self._window(period)
        previous_start = start - PERIODS[period]
        rows = await self.repository.count_failures(
            auth.company_id, previous_start, start, end, platform
        )
        errors = [
            ErrorGroup(
                error_code=row.error_code or UNKNOWN_ERROR,
                platform_type=row.platform,
                retryable=row.retryable,
                **trend_of(row.current, row.previous),
            )
            for row in rows
        ]
        by_code = _sum_by(rows, lambda row: row.error_code or UNKNOWN_ERROR)
        by_platform = _sum_by(rows, lambda row: row.platform)
        current = sum(row.current for row in rows)
        previous = sum(row.previous for row in rows)
        return ErrorsData(
            period=period,
            period_start=start,
            period_end=end,
            previous_period_start=previous_start,
            **trend_of(current, previous),
            errors=_largest_first(
                errors, lambda group: f"{group.error_code}/{group.platform_type}"
            ),
            by_code=_largest_first(
                (ErrorCodeTotal(error_code=code, **trend_of(*pair)) for code, pair in by_code),
                lambda total: total.error_code,
            ),
            by_platform=_largest_first(
                (
                    ErrorPlatformTotal(platform_type=name, **trend_of(*pair))
                    for name, pair in by_platform
                ),
                lambda total: total.platform_type,
            ),
        )

    async def measure_retries(
        self, auth: AuthContext, period: Period, platform: str | None = None
    ) -> RetriesData:
        """Of the jobs that needed more than one attempt: how many completed, failed, were
        cancelled or are still going, by number of attempts."""
        start, end = self._window(period)
        by_attempts = await self.repository.count_outcomes_by_attempts(
            auth.company_id, start, end, platform
        )
        retried = {attempts: c for attempts, c in by_attempts.items() if attempts > 1}
        everything = combine(by_attempts.values())
        overall = combine(retried.values())
        attempts_of_recovered = sum(attempts * c.completed for attempts, c in retried.items())
        return RetriesData(
            period=period,
            period_start=start,
            period_end=end,
            total_syncs=everything.total,
            retried_syncs=overall.total,
            retry_rate=percent(overall.total, everything.total),
            recovered_syncs=overall.completed,
            failed_after_retry=overall.failed,
            cancelled_after_retry=overall.cancelled,
            still_retrying=overall.active,
            recovery_rate=success_rate(overall),
            avg_attempts_to_recover=(
                round(attempts_of_recovered / overall.completed, 2) if overall.completed else 0.0
            ),
            distribution=[
                RetryAttempts(
                    attempts=attempts,
                    total=c.total,
                    completed=c.completed,
                    failed=c.failed,
                    cancelled=c.cancelled,
                    active=c.active,
                )
                for attempts, c in sorted(retried.items())
            ],
        )


def _sum_by(
    rows: Iterable[ErrorRow], key: Callable[[ErrorRow], str]
) -> list[tuple[str, tuple[int, int]]]:
    sums: dict[str, tuple[int, int]] = {}
    for row in rows:
        current, previous = sums.get(key(row), (0, 0))
        sums[key(row)] = (current + row.current, previous + row.previous)
    return sorted(sums.items())
