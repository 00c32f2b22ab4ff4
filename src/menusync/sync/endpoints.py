"""``/api/v1/platform-sync``: request, follow, cancel and retry syncs; the platforms' webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response

from menusync.core.dependencies import ResourcesDep, SessionDep
from menusync.core.errors import PayloadTooLarge
from menusync.core.schemas import PageParams, Pagination, page_params
from menusync.core.web import error_responses
from menusync.sync.dependencies import GatewayDep, SyncServiceDep
from menusync.sync.models import SyncConfiguration, SyncJob
from menusync.sync.repository import SORTABLE, HistoryFilter, SyncRepository
from menusync.sync.schemas import (
    ActiveResponse,
    AvailabilityRequest,
    BatchCancelResponse,
    BatchStatusResponse,
    BatchSyncRequest,
    BatchSyncResponse,
    CancelResponse,
    ConfigurationRead,
    ConfigurationResponse,
    ConfigurationUpdate,
    HistoryResponse,
    IntegrationLogRead,
    JobStatus,
    MenuConfigurations,
    MenuConfigurationsResponse,
    OperationsResponse,
    PlatformPreview,
    PlatformType,
    PreviewRequest,
    PreviewResponse,
    QueueDepth,
    QueueOverview,
    QueueResponse,
    RetryQueueEntry,
    RetryQueueResponse,
    RetryRequest,
    RetryResponse,
    SingleSyncRequest,
    SingleSyncResponse,
    StoreStatusRequest,
    SyncDetails,
    SyncDetailsResponse,
    SyncOperation,
    SyncStatusResponse,
    TimelineEvent,
    Validation,
    WorkerSeen,
)
from menusync.sync.tracking import Tracker, batch_status, job_status
from menusync.sync.webhooks import MAX_WEBHOOK_BYTES, WebhookIntake, reconcile_webhooks
from menusync.tenancy.dependencies import Reader, Writer

router = APIRouter(prefix="/platform-sync", tags=["sync"], responses=error_responses(401, 403, 422))

SyncIdPath = Annotated[uuid.UUID, Path(alias="syncId")]
BatchIdPath = Annotated[uuid.UUID, Path(alias="batchId")]


@router.post(
    "/single",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SingleSyncResponse,
    summary="Sync a menu to one platform",
    responses=error_responses(400, 404, 409),
)
async def sync_single(
    auth: Writer, service: SyncServiceDep, body: SingleSyncRequest
) -> SingleSyncResponse:
    job, warnings, is_new = await service.request_sync(auth, body)
    estimate = await service.estimate_seconds(auth, job.platform)
    message = (
        f"Sync to {job.platform} queued"
        if is_new
        else f"A sync of this menu to {job.platform} is already queued; returning it (use forceSync for another)"
    )
    return SingleSyncResponse(
        sync_id=job.id,
        status=job.status,
        estimated_duration=estimate,
        message=message,
        validation=Validation(warnings=warnings),
    )


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchSyncResponse,
    summary="Sync a menu to several platforms",
    responses=error_responses(400, 404, 409),
)
async def sync_batch(
    auth: Writer, service: SyncServiceDep, body: BatchSyncRequest
) -> BatchSyncResponse:
    batch, jobs = await service.request_batch(auth, body)
    estimates = [await service.estimate_seconds(auth, job.platform) for job in jobs]
    total = sum(estimates) if body.execution_mode == "sequence" else max(estimates, default=0)
    return BatchSyncResponse(
        batch_id=batch.id,
        sync_operations=[
            SyncOperation(sync_id=j.id, platform_type=j.platform, status=j.status) for j in jobs
        ],
        estimated_total_duration=total,
        message=f"Batch of {len(jobs)} syncs queued ({body.execution_mode})",
    )


@router.get(
    "/status/{syncId}",
    response_model=SyncStatusResponse,
    summary="A sync's status",
    responses=error_responses(404),
)
async def get_sync_status(
    auth: Reader, service: SyncServiceDep, sync_id: SyncIdPath
) -> SyncStatusResponse:
    return SyncStatusResponse(data=job_status(await service.get_job(auth, sync_id)))


@router.get(
    "/batch/{batchId}/status",
    response_model=BatchStatusResponse,
    summary="A batch's status",
    responses=error_responses(404),
)
async def get_batch_status(
    auth: Reader, service: SyncServiceDep, batch_id: BatchIdPath
) -> BatchStatusResponse:
    batch, jobs = await service.get_batch(auth, batch_id)
    return BatchStatusResponse(data=batch_status(batch, jobs))


@router.delete(
    "/batch/{batchId}/cancel",
    response_model=BatchCancelResponse,
    summary="Cancel every unfinished sync of a batch",
    responses=error_responses(404),
)
async def cancel_batch(
    auth: Writer, service: SyncServiceDep, batch_id: BatchIdPath
) -> BatchCancelResponse:
    cancelled, requested = await service.cancel_batch(auth, batch_id)
    return BatchCancelResponse(
        message=f"{len(cancelled)} cancelled, {len(requested)} stopping",
        cancelled_operations=cancelled,
        cancel_requested_operations=requested,
    )


@router.post(
    "/batch/{batchId}/retry",
    response_model=RetryResponse,
    summary="Re-queue a batch's failed syncs",
    responses=error_responses(404),
)
async def retry_batch(
    auth: Writer, service: SyncServiceDep, batch_id: BatchIdPath
) -> RetryResponse:
    retried, skipped = await service.retry_batch(auth, batch_id)
    return RetryResponse(
        retried_operations=retried,
        skipped_operations=skipped,
        message=f"{len(retried)} sync(s) re-queued",
    )


def history_filter(
    platform_type: Annotated[PlatformType | None, Query(alias="platformType")] = None,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    platform_menu_id: Annotated[uuid.UUID | None, Query(alias="platformMenuId")] = None,
    date_from: Annotated[datetime | None, Query(alias="dateFrom", description="ISO 8601")] = None,
    date_to: Annotated[datetime | None, Query(alias="dateTo", description="ISO 8601")] = None,
    user_id: Annotated[str | None, Query(alias="userId", max_length=128)] = None,
    retryable_only: Annotated[bool, Query(alias="retryableOnly")] = False,
    kind: Annotated[Literal["menu", "availability", "store_status"] | None, Query()] = None,
) -> HistoryFilter:
    return HistoryFilter(
        platform=platform_type,
        status=status_,
        menu_id=platform_menu_id,
        date_from=_aware(date_from),
        date_to=_aware(date_to),
        user_id=user_id,
        retryable_only=retryable_only,
        kind=kind,
    )


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


SortBy = Literal[
    "createdAt", "startedAt", "completedAt", "duration", "priority", "status", "platformType"
]


@router.get(
    "/history", response_model=HistoryResponse, summary="Sync history, filtered and paginated"
)
async def list_history(
    auth: Reader,
    service: SyncServiceDep,
    filters: Annotated[HistoryFilter, Depends(history_filter)],
    paging: Annotated[PageParams, Depends(page_params)],
    sort_by: Annotated[SortBy, Query(alias="sortBy")] = "createdAt",
    sort_order: Annotated[Literal["asc", "desc"], Query(alias="sortOrder")] = "desc",
) -> HistoryResponse:
    assert sort_by in SORTABLE
    rows, total = await service.history(
        auth,
        filters,
        sort_by=sort_by,
        descending=sort_order == "desc",
        offset=paging.offset,
        limit=paging.limit,
    )
    return HistoryResponse(
        data=[job_status(row) for row in rows],
        pagination=Pagination.of(paging.page, paging.limit, total),
    )


@router.get(
    "/history/{syncId}/details",
    response_model=SyncDetailsResponse,
    summary="One sync with its event timeline and platform calls",
    responses=error_responses(404),
)
async def get_sync_details(
    auth: Reader, service: SyncServiceDep, sync_id: SyncIdPath
) -> SyncDetailsResponse:
    job, events, logs = await service.details(auth, sync_id)
    request = {k: v for k, v in (job.request or {}).items() if k != "pushedPayload"}
    return SyncDetailsResponse(
        data=SyncDetails(
            sync_details=job_status(job),
            request=request,
            timeline=[
                TimelineEvent(event_id=e.id, type=e.type, data=e.data, timestamp=e.created_at)
                for e in events
            ],
            integration_logs=[IntegrationLogRead.model_validate(log) for log in logs],
        )
    )


@router.post(
    "/retry", response_model=RetryResponse, summary="Re-queue syncs (the same jobs, same ids)"
)
async def retry_syncs(auth: Writer, service: SyncServiceDep, body: RetryRequest) -> RetryResponse:
    retried, skipped = await service.retry_syncs(auth, body)
    return RetryResponse(
        retried_operations=retried,
        skipped_operations=skipped,
        message=f"{len(retried)} sync(s) re-queued, {len(skipped)} skipped",
    )


@router.delete(
    "/cancel/{syncId}",
    response_model=CancelResponse,
    summary="Cancel a sync",
    responses=error_responses(404, 409),
)
async def cancel_sync(auth: Writer, service: SyncServiceDep, sync_id: SyncIdPath) -> CancelResponse:
    job = await service.cancel_sync(auth, sync_id)
    message = (
        "Sync cancelled"
        if job.status == "cancelled"
        else "Cancel requested; the worker stops at its next step"
    )
    return CancelResponse(message=message, status=job.status)


@router.get(
    "/active", response_model=ActiveResponse, summary="Syncs not finished yet, with progress"
)
async def list_active(auth: Reader, session: SessionDep) -> ActiveResponse:
    rows = await SyncRepository(session).list_active(auth.company_id)
    return ActiveResponse(data=[job_status(row) for row in rows])


@router.get(
    "/queue",
    response_model=QueueResponse,
    summary="Queue depth per platform and status; workers seen",
)
async def get_queue(auth: Writer, session: SessionDep, resources: ResourcesDep) -> QueueResponse:
    repository = SyncRepository(session)
    now = resources.clock.now()
    depth = [
        QueueDepth(
            platform_type=platform,
            status=status_,
            count=count,
            oldest_waiting_seconds=max(0.0, (now - oldest).total_seconds())
            if oldest and status_ in ("pending", "scheduled_retry")
            else None,
        )
        for platform, status_, count, oldest in await repository.queue_depth(auth.company_id)
    ]
    from datetime import timedelta

    workers = [
        WorkerSeen.model_validate(worker)
        for worker in await repository.list_workers(now - timedelta(minutes=2))
    ]
    return QueueResponse(data=QueueOverview(depth=depth, workers=workers))


@router.get(
    "/retry-queue", response_model=RetryQueueResponse, summary="Scheduled retries and when they run"
)
async def get_retry_queue(auth: Writer, session: SessionDep) -> RetryQueueResponse:
    rows: list[SyncJob] = list(
        await SyncRepository(session).list_scheduled_retries(auth.company_id)
    )
    entries = []
    for row in rows:
        view = job_status(row)
        entries.append(
            RetryQueueEntry(
                sync_id=row.id,
                platform_type=row.platform,
                attempt=row.attempt,
                max_attempts=row.max_attempts,
                next_retry_at=row.next_attempt_at,
                error=view.error,
            )
        )
    return RetryQueueResponse(data=entries)


@router.post(
    "/webhook/{platformType}",
    summary="Platforms' webhooks (verified by the platform's own signature; no JWT)",
    responses={
        200: {"description": "Accepted (or a duplicate, acknowledged)"},
        204: {"description": "Accepted; stop sending updates (Delivery Hero)"},
        400: {"description": "Not a webhook of this platform"},
        401: {"description": "Signature did not verify; nothing changed"},
        404: {"description": "Unknown platform"},
        413: {"description": "Body too large"},
    },
)
async def receive_webhook(
    platform_type: Annotated[str, Path(alias="platformType")],
    request: Request,
    resources: ResourcesDep,
    gateway: GatewayDep,
) -> Response:
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"Webhook body exceeds {MAX_WEBHOOK_BYTES} bytes")
    async with resources.unit_of_work() as session:
        intake = WebhookIntake(session, gateway, Tracker(session, resources.clock))
        outcome = await intake.receive(platform_type, dict(request.headers), body)
    if outcome.unmatched_ref is not None:
        async with resources.unit_of_work() as session:
            await reconcile_webhooks(
                session,
                Tracker(session, resources.clock),
                gateway,
                platform_type,
                outcome.unmatched_ref,
            )
    if outcome.status_code == 204:
        return Response(status_code=204)
    return JSONResponse(outcome.body, status_code=outcome.status_code)


def _configuration_read(row: SyncConfiguration) -> ConfigurationRead:
    return ConfigurationRead(
        platform_menu_id=row.menu_id,
        platform_type=row.platform,
        configuration=row.configuration,
        auto_sync_enabled=row.auto_sync_enabled,
        sync_schedule=row.sync_schedule,
        webhook_url=row.webhook_url,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        updated_at=row.updated_at,
    )


MenuIdPath = Annotated[uuid.UUID, Path(alias="platformMenuId")]


@router.get(
    "/configurations/{platformMenuId}",
    response_model=MenuConfigurationsResponse,
    summary="A menu's sync configuration on every platform",
    responses=error_responses(404),
)
async def get_configurations(
    auth: Reader, service: SyncServiceDep, menu_id: MenuIdPath
) -> MenuConfigurationsResponse:
    rows = await service.get_configurations(auth, menu_id)
    return MenuConfigurationsResponse(
        data=MenuConfigurations(
            platform_menu_id=menu_id,
            configurations={row.platform: _configuration_read(row) for row in rows},
        )
    )


@router.put(
    "/configurations/{platformMenuId}/{platformType}",
    response_model=ConfigurationResponse,
    summary="Set a menu's configuration and schedule on one platform",
    responses=error_responses(404),
)
async def put_configuration(
    auth: Writer,
    service: SyncServiceDep,
    menu_id: MenuIdPath,
    platform_type: Annotated[PlatformType, Path(alias="platformType")],
    body: ConfigurationUpdate,
) -> ConfigurationResponse:
    row = await service.set_configuration(auth, menu_id, platform_type, body)
    message = (
        f"Saved; next scheduled sync at {row.next_run_at.isoformat()}"
        if row.next_run_at
        else "Saved"
    )
    return ConfigurationResponse(data=_configuration_read(row), message=message)


@router.post(
    "/preview",
    response_model=PreviewResponse,
    summary="The exact payload each platform would receive, its issues and the diff; calls no platform",
    responses=error_responses(404, 409),
)
async def preview_sync(
    auth: Reader, service: SyncServiceDep, body: PreviewRequest
) -> PreviewResponse:
    previews = await service.preview(auth, body)
    return PreviewResponse(data=[PlatformPreview(**entry) for entry in previews])


def _operations(jobs: list[SyncJob], what: str) -> OperationsResponse:
    return OperationsResponse(
        sync_operations=[
            SyncOperation(sync_id=j.id, platform_type=j.platform, status=j.status) for j in jobs
        ],
        message=f"{what} queued on {len(jobs)} platform(s)",
    )


@router.post(
    "/availability",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationsResponse,
    summary="Mark items or options (un)available on chosen platforms (a job per platform)",
    responses=error_responses(400, 404, 409),
)
async def set_availability(
    auth: Writer, service: SyncServiceDep, body: AvailabilityRequest
) -> OperationsResponse:
    return _operations(await service.request_availability(auth, body), "Availability change")


@router.post(
    "/store-status",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationsResponse,
    summary="Open, close or pause a store on chosen platforms (a job per platform)",
    responses=error_responses(400, 404, 409),
)
async def set_store_status(
    auth: Writer, service: SyncServiceDep, body: StoreStatusRequest
) -> OperationsResponse:
    return _operations(await service.request_store_status(auth, body), f"Store {body.state}")
