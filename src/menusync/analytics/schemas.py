"""Response bodies of ``/platform-sync/analytics/*`` (CONTRACT.md #11 and section 2).

Conventions shared by every answer: counts are jobs (``platform_sync_logs`` rows) created inside
the window; a job is *successful* when ``completed``, *failed* when ``failed``; rates are
percentages 0..100 with two decimals over finished jobs (``completed / (completed + failed)``:
running and cancelled jobs are neither); durations and latencies are whole milliseconds. No data
gives zeros, never an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from menusync.core.schemas import ApiModel, SuccessFlag

Period = Literal["day", "week", "month", "quarter"]
"""The window ending now: 24 hours, 7 days, 30 days or 90 days."""
Bucket = Literal["hour", "day"]
PlatformFilter = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]

Rate = Annotated[float, Field(ge=0, le=100, description="Percent, 0..100, two decimals")]
Millis = Annotated[int, Field(ge=0, description="Milliseconds")]
Count = Annotated[int, Field(ge=0)]


class Window(ApiModel):
    period: Period
    period_start: datetime = Field(description="Start of the window (inclusive)")
    period_end: datetime = Field(description="End of the window: the time of the request")


# ---- summary -------------------------------------------------------------------------------


class PlatformBreakdown(ApiModel):
    total: Count
    successful: Count
    failed: Count
    cancelled: Count
    success_rate: Rate
    avg_duration: Millis = Field(description="Mean duration of the completed jobs")


class SummaryData(Window):
    total_syncs: Count
    successful_syncs: Count
    failed_syncs: Count
    cancelled_syncs: Count
    success_rate: Rate
    avg_duration: Millis = Field(description="Mean duration of the completed jobs")
    platform_breakdown: dict[str, PlatformBreakdown] = Field(
        description="Per platform type, only platforms with jobs in the window"
    )


class SummaryResponse(ApiModel):
    success: SuccessFlag = True
    data: SummaryData


# ---- platforms -----------------------------------------------------------------------------


class ApiCallStats(ApiModel):
    """Outbound calls to the platform's API (``platform_integration_logs``)."""

    total: Count
    failed: Count = Field(description="Calls with no answer or an HTTP status >= 400")
    error_rate: Rate = Field(description="failed / total, percent")
    avg_latency: Millis
    p95_latency: Millis


class PlatformStats(ApiModel):
    platform_type: str
    total_syncs: Count
    successful_syncs: Count
    failed_syncs: Count
    cancelled_syncs: Count
    success_rate: Rate
    avg_duration: Millis = Field(description="Mean duration of the completed jobs")
    p95_duration: Millis = Field(
        description="95th percentile (linear interpolation) of completed jobs' durations"
    )
    api_calls: ApiCallStats


class PlatformsData(Window):
    platforms: list[PlatformStats] = Field(description="Sorted by platform type")


class PlatformsResponse(ApiModel):
    success: SuccessFlag = True
    data: PlatformsData


# ---- timeline ------------------------------------------------------------------------------


class TimelineBucket(ApiModel):
    start: datetime = Field(description="Start of the bucket (UTC, truncated to the hour or day)")
    total: Count
    completed: Count
    failed: Count
    cancelled: Count
    active: Count = Field(description="Not finished yet: pending, running, awaiting, retrying")


class TimelineData(Window):
    bucket: Bucket
    buckets: list[TimelineBucket] = Field(
        description="Every bucket of the window in order, empty ones included"
    )


class TimelineResponse(ApiModel):
    success: SuccessFlag = True
    data: TimelineData


# ---- errors --------------------------------------------------------------------------------

Trend = Literal["up", "down", "flat"]


class ErrorCounts(ApiModel):
    count: Count = Field(description="Failed jobs in this window")
    previous_count: Count = Field(description="Failed jobs in the previous window of equal length")
    change: int = Field(description="count - previousCount")
    change_percent: float | None = Field(
        description="change / previousCount, percent; null when previousCount is 0"
    )
    trend: Trend


class ErrorGroup(ErrorCounts):
    error_code: str = Field(description="`unknown` when the job recorded no code")
    platform_type: str
    retryable: Count = Field(description="Of `count`, those whose error was retryable")


class ErrorCodeTotal(ErrorCounts):
    error_code: str


class ErrorPlatformTotal(ErrorCounts):
    platform_type: str


class ErrorsData(ErrorCounts, Window):
    previous_period_start: datetime
    errors: list[ErrorGroup] = Field(description="Per (error code, platform), largest first")
    by_code: list[ErrorCodeTotal] = Field(description="Largest first")
    by_platform: list[ErrorPlatformTotal] = Field(description="Largest first")


class ErrorsResponse(ApiModel):
    success: SuccessFlag = True
    data: ErrorsData


# ---- retries -------------------------------------------------------------------------------


class RetryAttempts(ApiModel):
    attempts: int = Field(ge=2, description="Attempts made (the first try included)")
    total: Count
    completed: Count
    failed: Count
    cancelled: Count
    active: Count


class RetriesData(Window):
    total_syncs: Count = Field(description="Every job in the window")
    retried_syncs: Count = Field(description="Jobs that needed more than one attempt")
    retry_rate: Rate = Field(description="retriedSyncs / totalSyncs, percent")
    recovered_syncs: Count = Field(description="Retried jobs that completed")
    failed_after_retry: Count = Field(description="Retried jobs that failed in the end")
    cancelled_after_retry: Count
    still_retrying: Count = Field(description="Retried jobs not finished yet")
    recovery_rate: Rate = Field(description="recovered / (recovered + failed), percent")
    avg_attempts_to_recover: float = Field(
        ge=0, description="Mean attempts of the recovered jobs, two decimals; 0 when none"
    )
    distribution: list[RetryAttempts] = Field(description="By number of attempts, ascending")


class RetriesResponse(ApiModel):
    success: SuccessFlag = True
    data: RetriesData
