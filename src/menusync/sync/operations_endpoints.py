"""``/api/v1/platform-sync``: the engine's health, breakers, rate limits, received webhooks and the
history export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from menusync.core.dependencies import ResourcesDep, SessionDep
from menusync.core.errors import ValidationFailed
from menusync.core.schemas import PageParams, Pagination, page_params
from menusync.core.web import error_responses
from menusync.platforms.dependencies import RuntimeDep
from menusync.sync.dependencies import PoliciesDep
from menusync.sync.endpoints import SortBy, history_filter
from menusync.sync.operations import (
    WEBHOOK_BODY_LIMIT,
    OperationsService,
    build_operations_service,
    history_csv,
)
from menusync.sync.operations_repository import WebhookFilter
from menusync.sync.operations_schemas import (
    CircuitBreakerResetResponse,
    CircuitBreakersResponse,
    HealthResponse,
    RateLimitsResponse,
    WebhookEventsResponse,
    WebhookOutcome,
)
from menusync.sync.repository import HistoryFilter
from menusync.sync.schemas import PlatformType
from menusync.tenancy.dependencies import Admin, Reader, Writer

router = APIRouter(
    prefix="/platform-sync", tags=["operations"], responses=error_responses(401, 403, 422)
)


def get_operations_service(
    session: SessionDep, resources: ResourcesDep, runtime: RuntimeDep, policies: PoliciesDep
) -> OperationsService:
    return build_operations_service(session, resources, runtime, policies)


async def get_operations_reader(
    session: SessionDep, resources: ResourcesDep, runtime: RuntimeDep, policies: PoliciesDep
) -> OperationsService:
    # Read-only views: on SQLite a deferred transaction takes no write lock (as analytics does).
    await session.connection(execution_options={"sqlite_begin": "DEFERRED"})
    return build_operations_service(session, resources, runtime, policies)


OperationsDep = Annotated[OperationsService, Depends(get_operations_service)]
OperationsReaderDep = Annotated[OperationsService, Depends(get_operations_reader)]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _check_range(date_from: datetime | None, date_to: datetime | None) -> None:
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ValidationFailed(
            "dateFrom is after dateTo",
            [{"path": "query.dateFrom", "message": "must not be after dateTo", "code": "range"}],
        )


HEALTH_DESCRIPTION = """
The caller's company over the last 24 hours, with every registered platform's circuit breaker
(global) and whole-platform request budget (shared by every company).

`healthScore` = round((6 S + 3 B + Q) / 10), where **S** is the 24 h success rate of finished
syncs (`completed / (completed + failed)`, 100 when none finished), **B** the mean breaker score
(closed 100, half-open 50, open 0) and **Q** the backlog score (100 while the oldest due sync has
waited at most 60 s, linearly down to 0 at 10 minutes); `scoreComponents` gives S, B and Q.
`status`: `unhealthy` below 50 or with every breaker open, `degraded` below 80 or with any
breaker not closed, else `healthy`. A platform is `unhealthy` with its breaker open or a success
rate below 50, `degraded` half-open or below 80.
"""


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Health score, recent outcomes, breakers and budgets per platform",
    description=HEALTH_DESCRIPTION,
)
async def get_health(auth: Reader, service: OperationsReaderDep) -> HealthResponse:
    return HealthResponse(data=await service.check_health(auth))


@router.get(
    "/circuit-breakers",
    response_model=CircuitBreakersResponse,
    summary="Each platform's circuit breaker: state, counters, when it may half-open",
)
async def list_circuit_breakers(
    auth: Reader, service: OperationsReaderDep
) -> CircuitBreakersResponse:
    del auth  # breakers are global; the dependency checks the role
    return CircuitBreakersResponse(data=await service.list_breakers())


@router.post(
    "/circuit-breakers/{platformType}/reset",
    response_model=CircuitBreakerResetResponse,
    summary="Force a platform's circuit breaker closed (audited)",
    description="Roles `super_admin` and `company_owner` only. Counters of consecutive failures "
    "and probes are cleared; totals are kept. Emits `circuit-breaker-changed` to the caller's "
    "company when the breaker was not closed.",
    responses=error_responses(404),
)
async def reset_circuit_breaker(
    auth: Admin,
    service: OperationsDep,
    platform_type: Annotated[PlatformType, Path(alias="platformType")],
) -> CircuitBreakerResetResponse:
    previous, changed, breaker = await service.reset_breaker(auth, platform_type)
    message = (
        f"The {platform_type} circuit breaker was {previous.value}; it is now closed"
        if changed
        else f"The {platform_type} circuit breaker was already closed"
    )
    return CircuitBreakerResetResponse(
        message=message, changed=changed, previous_state=previous.value, data=breaker
    )


@router.get(
    "/rate-limits",
    response_model=RateLimitsResponse,
    summary="Each rate-limiter key: budget, calls booked, remaining, next free slot",
)
async def list_rate_limits(auth: Reader, service: OperationsReaderDep) -> RateLimitsResponse:
    return RateLimitsResponse(data=await service.list_rate_limits(auth))


@router.get(
    "/webhooks/events",
    response_model=WebhookEventsResponse,
    summary="Received platform webhooks with their verdicts and outcomes",
    description="Webhooks matched to the company's syncs, newest first. Credentials in headers "
    f"are masked; bodies are cut at {WEBHOOK_BODY_LIMIT} characters.",
)
async def list_webhook_events(
    auth: Writer,
    service: OperationsReaderDep,
    paging: Annotated[PageParams, Depends(page_params)],
    platform_type: Annotated[PlatformType | None, Query(alias="platformType")] = None,
    outcome: Annotated[WebhookOutcome | None, Query()] = None,
    date_from: Annotated[
        datetime | None, Query(alias="dateFrom", description="Received at or after (ISO 8601)")
    ] = None,
    date_to: Annotated[
        datetime | None, Query(alias="dateTo", description="Received at or before (ISO 8601)")
    ] = None,
) -> WebhookEventsResponse:
    filters = WebhookFilter(
        platform=platform_type,
        outcome=outcome,
        date_from=_aware(date_from),
        date_to=_aware(date_to),
    )
    _check_range(filters.date_from, filters.date_to)
    events, total = await service.list_webhook_events(
        auth, filters, offset=paging.offset, limit=paging.limit
    )
    return WebhookEventsResponse(
        data=events,
        pagination=Pagination.of(paging.page, paging.limit, total),
        body_limit=WEBHOOK_BODY_LIMIT,
    )


class CsvResponse(StreamingResponse):
    media_type = "text/csv"


def _json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error entries for a route whose success is not JSON: FastAPI would document a
    ``model`` under the route's own media type (``text/csv``), so they name the JSON schema."""
    return {
        status: {
            "description": entry["description"],
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        }
        for status, entry in error_responses(*statuses).items()
    }


@router.get(
    "/history/export",
    response_class=CsvResponse,
    summary="The filtered sync history as CSV (streamed)",
    description="Same filters as `GET /history`; one row per sync, a header row first, columns "
    "named as in `SyncStatus` (`duration` in ms, times ISO 8601, error flattened to `errorCode`, "
    "`errorMessage`, `errorRetryable`). Free text that a spreadsheet would evaluate as a formula "
    "is prefixed with `'`.",
    responses={
        200: {
            "description": "CSV, sent as an attachment",
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "headers": {
                "Content-Disposition": {
                    "description": "`attachment; filename=sync-history-<UTC time>.csv`",
                    "schema": {"type": "string"},
                }
            },
        },
        **_json_errors(401, 403, 422),
    },
)
async def export_history(
    auth: Writer,
    resources: ResourcesDep,
    filters: Annotated[HistoryFilter, Depends(history_filter)],
    sort_by: Annotated[SortBy, Query(alias="sortBy")] = "createdAt",
    sort_order: Annotated[Literal["asc", "desc"], Query(alias="sortOrder")] = "desc",
) -> CsvResponse:
    _check_range(filters.date_from, filters.date_to)
    filename = f"sync-history-{resources.clock.now():%Y%m%dT%H%M%SZ}.csv"
    # The body is read after this handler returns, in its own read-only transaction.
    body = history_csv(
        resources.sessions,
        auth.company_id,
        filters,
        sort_by=sort_by,
        descending=sort_order == "desc",
    )
    return CsvResponse(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
