"""``/api/v1/platform-sync/analytics``: how the company's syncs went (W roles only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from menusync.analytics.dependencies import AnalyticsServiceDep
from menusync.analytics.schemas import (
    Bucket,
    ErrorsResponse,
    Period,
    PlatformFilter,
    PlatformsResponse,
    RetriesResponse,
    SummaryResponse,
    TimelineResponse,
)
from menusync.core.web import error_responses
from menusync.tenancy.dependencies import Writer

router = APIRouter(
    prefix="/platform-sync/analytics",
    tags=["analytics"],
    responses=error_responses(401, 403, 422),
)

PeriodQuery = Annotated[
    Period,
    Query(
        description="The window ending now: day = 24 h, week = 7 d, month = 30 d, quarter = 90 d"
    ),
]
PlatformQuery = Annotated[
    PlatformFilter | None,
    Query(alias="platformType", description="Only this platform type (e.g. `careem`)"),
]


@router.get(
    "/summary",
    response_model=SummaryResponse,
    summary="Totals, success rate and mean duration of the period's syncs, per platform",
)
async def get_summary(
    auth: Writer,
    service: AnalyticsServiceDep,
    period: PeriodQuery = "week",
    platform: PlatformQuery = None,
) -> SummaryResponse:
    return SummaryResponse(data=await service.summarize(auth, period, platform))


@router.get(
    "/platforms",
    response_model=PlatformsResponse,
    summary="Per platform: volume, success rate, duration mean and p95, API call latency",
)
async def get_platforms(
    auth: Writer,
    service: AnalyticsServiceDep,
    period: PeriodQuery = "week",
    platform: PlatformQuery = None,
) -> PlatformsResponse:
    return PlatformsResponse(data=await service.compare_platforms(auth, period, platform))


@router.get(
    "/timeline",
    response_model=TimelineResponse,
    summary="Syncs by outcome per hour or day (UTC) of the period",
)
async def get_timeline(
    auth: Writer,
    service: AnalyticsServiceDep,
    period: PeriodQuery = "week",
    bucket: Annotated[Bucket, Query(description="Bucket width")] = "day",
    platform: PlatformQuery = None,
) -> TimelineResponse:
    return TimelineResponse(data=await service.chart_timeline(auth, period, bucket, platform))


@router.get(
    "/errors",
    response_model=ErrorsResponse,
    summary="Failed syncs by error code and platform, with the trend against the previous period",
)
async def get_errors(
    auth: Writer,
    service: AnalyticsServiceDep,
    period: PeriodQuery = "week",
    platform: PlatformQuery = None,
) -> ErrorsResponse:
    return ErrorsResponse(data=await service.break_down_errors(auth, period, platform))


@router.get(
    "/retries",
    response_model=RetriesResponse,
    summary="Retry effectiveness: of the syncs that needed a retry, how many succeeded, after how many attempts",
)
async def get_retries(
    auth: Writer,
    service: AnalyticsServiceDep,
    period: PeriodQuery = "week",
    platform: PlatformQuery = None,
) -> RetriesResponse:
    return RetriesResponse(data=await service.measure_retries(auth, period, platform))
