"""The sync service: request, follow, cancel and retry syncs and batches. Never commits; never
calls a platform (the worker does)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from menusync.core.clock import Clock
from menusync.core.errors import ValidationFailed
from menusync.core.web import validation_issues
from menusync.menus.canonical import CanonicalMenu, content_hash
from menusync.menus.errors import MenuNotFound
from menusync.menus.models import Menu
from menusync.menus.repository import MenuRepository
from menusync.platforms.base import Capability, PlatformAdapter
from menusync.platforms.connections import ConnectionNotFound, PlatformGateway
from menusync.platforms.models import PlatformConnection
from menusync.platforms.repository import ConnectionRepository
from menusync.sync import transitions
from menusync.sync.errors import (
    BatchNotFound,
    ConfigurationInvalid,
    ConnectionDisabled,
    MenuRejectedByPlatform,
    SyncAlreadyFinished,
    SyncNotFound,
)
from menusync.sync.maintenance import is_valid_schedule, next_run
from menusync.sync.models import SyncBatch, SyncConfiguration, SyncJob
from menusync.sync.planner import diff_summaries, menu_summary
from menusync.sync.policy import EnginePolicies
from menusync.sync.queue import notify_jobs
from menusync.sync.repository import HistoryFilter, SyncRepository
from menusync.sync.rollup import reopen_day
from menusync.sync.schemas import (
    TERMINAL_STATUSES,
    AvailabilityRequest,
    BatchSyncRequest,
    ConfigurationUpdate,
    PreviewRequest,
    RetryRequest,
    SingleSyncRequest,
    SkippedOperation,
    StoreStatusRequest,
)
from menusync.sync.tracking import Tracker
from menusync.tenancy.audit import AuditTrail
from menusync.tenancy.context import AuthContext

DEFAULT_ESTIMATE_SECONDS = 30


class SyncService:
    def __init__(
        self,
        repository: SyncRepository,
        menus: MenuRepository,
        connections: ConnectionRepository,
        gateway: PlatformGateway,
        policies: EnginePolicies,
        tracker: Tracker,
        audit: AuditTrail,
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.menus = menus
        self.connections = connections
        self.gateway = gateway
        self.policies = policies
        self.tracker = tracker
        self.audit = audit
        self.clock = clock
        self.jobs_added = False
        """Set when this unit of work queued jobs (the caller wakes the workers after commit)."""

    # ---- requesting ------------------------------------------------------------------------

    async def request_sync(
        self, auth: AuthContext, request: SingleSyncRequest
    ) -> tuple[SyncJob, list[dict[str, Any]], bool]:
        """Queue a menu push to one platform. Returns (job, warnings, is_new)."""
        menu = await self._menu(auth, request.platform_menu_id)
        adapter, connection = await self._target(auth, request.platform_type)
        configuration = await self._configuration(
            auth, menu, request.platform_type, request.configuration, adapter
        )
        warnings = self._check_menu(adapter, menu, configuration, request.platform_type)
        if request.item_ids:
            _check_item_ids(request.item_ids, menu)
        if not request.force_sync:
            duplicate = await self.repository.find_queued_duplicate(
                auth.company_id, menu.id, request.platform_type, connection.store_key
            )
            if duplicate is not None:
                return duplicate, warnings, False
        job = self._new_job(
            auth,
            menu=menu,
            platform=request.platform_type,
            store_key=connection.store_key,
            kind="menu",
            priority=request.priority,
            force=request.force_sync,
            request={"configuration": configuration, "itemIds": request.item_ids},
            trigger="manual",
        )
        self.repository.session.add(job)
        await self.repository.session.flush()
        await self.tracker.started(job)
        self.audit.record(
            auth,
            "sync.requested",
            "sync",
            job.id,
            platformType=job.platform,
            menuId=str(menu.id),
            force=request.force_sync,
        )
        await self._queued()
        return job, warnings, True

    async def request_batch(
        self, auth: AuthContext, request: BatchSyncRequest
    ) -> tuple[SyncBatch, list[SyncJob]]:
        """Queue a push of one menu to several platforms, in parallel or in sequence."""
        menu = await self._menu(auth, request.platform_menu_id)
        plans: list[tuple[str, PlatformConnection, dict[str, Any], int]] = []
        issues: list[dict[str, Any]] = []
        for index, entry in enumerate(request.platforms):
            try:
                adapter, connection = await self._target(auth, entry.platform_type)
                configuration = await self._configuration(
                    auth, menu, entry.platform_type, entry.configuration, adapter
                )
                self._check_menu(adapter, menu, configuration, entry.platform_type)
            except (
                MenuRejectedByPlatform,
                ConfigurationInvalid,
                ConnectionNotFound,
                ConnectionDisabled,
            ) as exc:
                for issue in exc.details.get(
                    "issues", [{"path": "", "message": exc.message, "code": exc.error_code}]
                ):
                    issues.append(
                        {
                            **issue,
                            "path": f"body.platforms[{index}]"
                            + (f".{issue['path']}" if issue.get("path") else ""),
                            "platformType": entry.platform_type,
                        }
                    )
                continue
            plans.append(
                (entry.platform_type, connection, configuration, entry.priority or request.priority)
            )
        if issues:
            raise ValidationFailed(
                "The batch cannot run as asked; nothing was queued", issues, status_code=400
            )
        now = self.clock.now()
        batch = SyncBatch(
            id=uuid.uuid4(),
            company_id=auth.company_id,
            menu_id=menu.id,
            platforms=[platform for platform, *_ in plans],
            execution_mode=request.execution_mode,
            fail_fast=request.fail_fast,
            overall_status="pending",
            total_operations=len(plans),
            initiated_by=auth.user_id,
            created_at=now,
            updated_at=now,
        )
        self.repository.session.add(batch)
        await self.repository.session.flush()
        await self.tracker.batch_started(batch)
        jobs = []
        for sequence, (platform, connection, configuration, priority) in enumerate(plans):
            job = self._new_job(
                auth,
                menu=menu,
                platform=platform,
                store_key=connection.store_key,
                kind="menu",
                priority=priority,
                force=request.force_sync,
                request={"configuration": configuration, "itemIds": None},
                trigger="batch",
                batch=batch,
                sequence=sequence if request.execution_mode == "sequence" else 0,
            )
            self.repository.session.add(job)
            jobs.append(job)
        await self.repository.session.flush()
        for job in jobs:
            await self.tracker.started(job)
        self.audit.record(
            auth,
            "batch.requested",
            "batch",
            batch.id,
            platforms=batch.platforms,
            executionMode=request.execution_mode,
        )
        await self._queued()
        return batch, jobs

    async def request_operation(
        self,
        auth: AuthContext,
        *,
        platform: str,
        kind: str,
        request: dict[str, Any],
        priority: int,
        action: str,
    ) -> SyncJob:
        """Queue an availability or store-status change for one platform."""
        _adapter, connection = await self._target(auth, platform)
        job = self._new_job(
            auth,
            menu=None,
            platform=platform,
            store_key=connection.store_key,
            kind=kind,
            priority=priority,
            force=True,
            request=request,
            trigger="api",
        )
        self.repository.session.add(job)
        await self.repository.session.flush()
        await self.tracker.started(job)
        self.audit.record(auth, action, "sync", job.id, platformType=platform)
        await self._queued()
        return job

    async def request_availability(
        self, auth: AuthContext, request: AvailabilityRequest
    ) -> list[SyncJob]:
        """One availability job per platform; refused up front where a platform cannot do it."""
        changes = [
            change.model_dump(mode="json", by_alias=True, exclude_none=True)
            for change in request.changes
        ]
        needs_until = any(change.until is not None for change in request.changes)
        issues = []
        for index, platform in enumerate(request.platforms):
            capabilities = self.gateway.registry.get(platform).capabilities
            if Capability.ITEM_AVAILABILITY not in capabilities:
                issues.append(_unsupported(index, platform, "item availability"))
            elif needs_until and Capability.AVAILABILITY_UNTIL not in capabilities:
                issues.append(
                    _unsupported(index, platform, "availability with an end time (`until`)")
                )
        if issues:
            raise ValidationFailed(
                "Some platforms cannot make this change; nothing was queued",
                issues,
                status_code=400,
            )
        return [
            await self.request_operation(
                auth,
                platform=platform,
                kind="availability",
                request={"changes": changes},
                priority=request.priority,
                action="availability.requested",
            )
            for platform in dict.fromkeys(request.platforms)
        ]

    async def request_store_status(
        self, auth: AuthContext, request: StoreStatusRequest
    ) -> list[SyncJob]:
        """One store-status job per platform (open, close, or pause until a time)."""
        if request.state == "paused" and request.until is None:
            raise ValidationFailed(
                "A pause needs `until`",
                [
                    {
                        "path": "body.until",
                        "message": "required when state is paused",
                        "code": "missing",
                    }
                ],
            )
        if request.until is not None and request.until <= self.clock.now():
            raise ValidationFailed(
                "`until` is in the past",
                [{"path": "body.until", "message": "must be in the future", "code": "in_past"}],
            )
        issues = []
        for index, platform in enumerate(request.platforms):
            capabilities = self.gateway.registry.get(platform).capabilities
            if Capability.STORE_STATUS not in capabilities:
                issues.append(_unsupported(index, platform, "store status"))
            elif request.state == "paused" and Capability.STORE_PAUSE not in capabilities:
                issues.append(_unsupported(index, platform, "a timed pause"))
        if issues:
            raise ValidationFailed(
                "Some platforms cannot make this change; nothing was queued",
                issues,
                status_code=400,
            )
        body = {
            "state": request.state,
            "until": request.until.isoformat() if request.until else None,
            "reason": request.reason,
        }
        return [
            await self.request_operation(
                auth,
                platform=platform,
                kind="store_status",
                request=body,
                priority=request.priority,
                action="store_status.requested",
            )
            for platform in dict.fromkeys(request.platforms)
        ]

    # ---- configurations ------------------------------------------------------------------------

    async def get_configurations(
        self, auth: AuthContext, menu_id: uuid.UUID
    ) -> list[SyncConfiguration]:
        menu = await self._menu(auth, menu_id)
        return list(await self.repository.list_configurations(auth.company_id, menu.id))

    async def set_configuration(
        self, auth: AuthContext, menu_id: uuid.UUID, platform: str, update: ConfigurationUpdate
    ) -> SyncConfiguration:
        """Validate with the platform's schema, check the cron expression, and schedule it."""
        menu = await self._menu(auth, menu_id)
        adapter_cls = self.gateway.registry.get(platform)
        configuration = _validated_config(adapter_cls, update.configuration)
        schedule = update.sync_schedule or None
        if schedule is not None and not is_valid_schedule(schedule):
            raise ValidationFailed(
                "syncSchedule is not a valid cron expression",
                [
                    {
                        "path": "body.syncSchedule",
                        "message": f"{schedule!r} is not a 5-field cron expression",
                        "code": "invalid_cron",
                    }
                ],
            )
        if update.auto_sync_enabled and schedule is None:
            raise ValidationFailed(
                "autoSyncEnabled needs a syncSchedule",
                [
                    {
                        "path": "body.syncSchedule",
                        "message": "required when autoSyncEnabled is true",
                        "code": "missing",
                    }
                ],
            )
        now = self.clock.now()
        row = await self.repository.get_configuration(auth.company_id, menu.id, platform)
        if row is None:
            row = SyncConfiguration(
                company_id=auth.company_id, menu_id=menu.id, platform=platform, created_at=now
            )
            self.repository.session.add(row)
        row.configuration = configuration
        row.auto_sync_enabled = update.auto_sync_enabled
        row.sync_schedule = schedule
        row.webhook_url = str(update.webhook_url) if update.webhook_url else None
        row.next_run_at = next_run(schedule, now) if schedule and update.auto_sync_enabled else None
        row.updated_by = auth.user_id
        row.updated_at = now
        await self.repository.session.flush()
        self.audit.record(
            auth,
            "configuration.updated",
            "configuration",
            f"{menu.id}/{platform}",
            autoSyncEnabled=update.auto_sync_enabled,
            syncSchedule=schedule,
        )
        return row

    # ---- preview ---------------------------------------------------------------------------------

    async def preview(self, auth: AuthContext, request: PreviewRequest) -> list[dict[str, Any]]:
        """For each platform: the exact payload, its issues, and what it would change. No calls."""
        menu = await self._menu(auth, request.platform_menu_id)
        canonical = CanonicalMenu.model_validate(menu.document)
        previews = []
        for platform in dict.fromkeys(request.platforms):
            adapter, connection = await self._target(auth, platform)
            configuration = await self._configuration(
                auth, menu, platform, request.configuration.get(platform, {}), adapter
            )
            sync_config = adapter.SyncConfig.model_validate(configuration)
            issues = [issue.as_dict() for issue in adapter.validate_menu(canonical, sync_config)]
            errors = [issue for issue in issues if issue["severity"] == "error"]
            record = await self.repository.get_push_record(
                auth.company_id, menu.id, platform, connection.store_key
            )
            previous_items = (record.payload or {}).get("items") if record else None
            entry: dict[str, Any] = {
                "platform_type": platform,
                "issues": errors,
                "warnings": [issue for issue in issues if issue["severity"] != "error"],
                "last_pushed_at": record.pushed_at if record else None,
                "last_sync_id": record.sync_id if record else None,
                "payload": None,
                "items_total": 0,
                "is_partial": False,
                "payload_hash": None,
                "would_change": True,
                "diff": None,
            }
            if not errors:
                payload = adapter.build_payload(canonical, sync_config, request.item_ids)
                payload_hash = content_hash(payload.body)
                entry.update(
                    payload=payload.body,
                    items_total=payload.items_total,
                    is_partial=payload.is_partial,
                    payload_hash=payload_hash,
                    would_change=record is None or record.payload_hash != payload_hash,
                    diff=diff_summaries(previous_items, menu_summary(canonical, platform)),
                )
            previews.append(entry)
        return previews

    # ---- reading -------------------------------------------------------------------------------

    async def get_job(self, auth: AuthContext, sync_id: uuid.UUID) -> SyncJob:
        job = await self.repository.get_job(auth.company_id, sync_id)
        if job is None:
            raise SyncNotFound(sync_id)
        return job

    async def get_batch(
        self, auth: AuthContext, batch_id: uuid.UUID
    ) -> tuple[SyncBatch, list[SyncJob]]:
        batch = await self.repository.get_batch(auth.company_id, batch_id)
        if batch is None:
            raise BatchNotFound(batch_id)
        return batch, list(await self.repository.list_batch_jobs(batch.id))

    async def history(
        self,
        auth: AuthContext,
        filters: HistoryFilter,
        *,
        sort_by: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[SyncJob], int]:
        return await self.repository.list_history(
            auth.company_id,
            filters,
            sort_by=sort_by,
            descending=descending,
            offset=offset,
            limit=limit,
        )

    async def details(
        self, auth: AuthContext, sync_id: uuid.UUID
    ) -> tuple[SyncJob, Sequence[Any], Sequence[Any]]:
        job = await self.get_job(auth, sync_id)
        events = await self.repository.list_events(job.id)
        logs = await self.repository.list_integration_logs(auth.company_id, job.id)
        return job, events, logs

    # ---- cancel and retry ----------------------------------------------------------------------

    async def cancel_sync(self, auth: AuthContext, sync_id: uuid.UUID) -> SyncJob:
        """Cancel a queued job at once; ask a running one to stop at its next step."""
        job = await self.repository.get_job(auth.company_id, sync_id, lock=True)
        if job is None:
            raise SyncNotFound(sync_id)
        if job.status in TERMINAL_STATUSES:
            raise SyncAlreadyFinished(sync_id, job.status)
        await self._cancel(job, f"Cancelled by {auth.user_id}")
        self.audit.record(auth, "sync.cancelled", "sync", job.id, status=job.status)
        return job

    async def cancel_batch(
        self, auth: AuthContext, batch_id: uuid.UUID
    ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        batch = await self.repository.get_batch(auth.company_id, batch_id)
        if batch is None:
            raise BatchNotFound(batch_id)
        cancelled: list[uuid.UUID] = []
        requested: list[uuid.UUID] = []
        for job in await self.repository.list_batch_jobs(batch.id):
            locked = await self.repository.get_job(auth.company_id, job.id, lock=True)
            if locked is None or locked.status in TERMINAL_STATUSES:
                continue
            await self._cancel(locked, f"Batch cancelled by {auth.user_id}")
            (cancelled if locked.status == "cancelled" else requested).append(locked.id)
        self.audit.record(
            auth,
            "batch.cancelled",
            "batch",
            batch.id,
            cancelled=len(cancelled),
            requested=len(requested),
        )
        return cancelled, requested

    async def _cancel(self, job: SyncJob, message: str) -> None:
        now = self.clock.now()
        if job.status in ("pending", "scheduled_retry", "awaiting_confirmation"):
            # Not running anywhere: cancelled at once (an awaiting push is no longer followed).
            await transitions.cancel(self.tracker, job, now, message=message)
        else:
            job.cancel_requested = True
            job.message = "Cancel requested; stopping at the next step"
            job.updated_at = now
            await self.tracker.progress(job)

    async def retry_syncs(
        self, auth: AuthContext, request: RetryRequest
    ) -> tuple[list[uuid.UUID], list[SkippedOperation]]:
        """Re-queue the same jobs (same ids)."""
        retried: list[uuid.UUID] = []
        skipped: list[SkippedOperation] = []
        for sync_id in dict.fromkeys(request.sync_ids):
            job = await self.repository.get_job(auth.company_id, sync_id, lock=True)
            if job is None:
                skipped.append(SkippedOperation(sync_id=sync_id, reason="not found"))
                continue
            reason = await self._requeue(
                auth,
                job,
                force=request.force_retry,
                reset=request.reset_retry_count,
                configuration=request.updated_configuration,
            )
            if reason:
                skipped.append(SkippedOperation(sync_id=sync_id, reason=reason))
            else:
                retried.append(sync_id)
        if retried:
            self.audit.record(auth, "sync.retried", "sync", None, syncIds=[str(i) for i in retried])
            await self._queued()
        return retried, skipped

    async def retry_batch(
        self, auth: AuthContext, batch_id: uuid.UUID
    ) -> tuple[list[uuid.UUID], list[SkippedOperation]]:
        batch, jobs = await self.get_batch(auth, batch_id)
        failed = [job.id for job in jobs if job.status == "failed"]
        if not failed:
            return [], [
                SkippedOperation(sync_id=job.id, reason=f"status is {job.status}") for job in jobs
            ]
        retried, skipped = await self.retry_syncs(
            auth, RetryRequest(sync_ids=failed, reset_retry_count=True)
        )
        batch.overall_status = "in_progress"
        batch.completed_at = None
        return retried, skipped

    async def _requeue(
        self,
        auth: AuthContext,
        job: SyncJob,
        *,
        force: bool,
        reset: bool,
        configuration: dict[str, Any] | None,
    ) -> str | None:
        if job.status in ("pending", "scheduled_retry", "in_progress", "awaiting_confirmation"):
            if job.status == "scheduled_retry":
                job.next_attempt_at = self.clock.now()
                return None
            return f"already {job.status}"
        if job.status in ("completed", "cancelled") and not force:
            return f"status is {job.status} (use forceRetry)"
        if configuration is not None and job.kind == "menu":
            adapter, _connection = await self._target(auth, job.platform)
            menu = await self._menu(auth, job.menu_id) if job.menu_id else None
            if menu is None:
                return "the menu was deleted"
            merged = {**(job.request.get("configuration") or {}), **configuration}
            job.request = {**job.request, "configuration": _validated_config(adapter, merged)}
        now = self.clock.now()
        await reopen_day(self.repository.session, job, now)
        if reset or job.attempt >= job.max_attempts:
            job.attempt = 0
        job.status = "pending" if job.attempt == 0 else "scheduled_retry"
        job.next_attempt_at = now
        job.cancel_requested = False
        job.is_forced = job.is_forced or force
        job.completed_at = None
        job.duration_ms = None
        job.progress = 0
        job.stage = "queued"
        job.message = f"Retry requested by {auth.user_id}"
        job.error_code = job.error_message = None
        job.error_retryable = None
        job.error_details = None
        job.external_ref = None
        job.updated_at = now
        await self.tracker.started(job)
        return None

    # ---- helpers -------------------------------------------------------------------------------

    async def estimate_seconds(self, auth: AuthContext, platform: str) -> int:
        average = await self.repository.average_duration_ms(auth.company_id, platform)
        return DEFAULT_ESTIMATE_SECONDS if average is None else max(1, round(average / 1000))

    async def _menu(self, auth: AuthContext, menu_id: uuid.UUID) -> Menu:
        menu = await self.menus.get_by_id(auth.company_id, menu_id)
        if menu is None:
            raise MenuNotFound(menu_id)
        return menu

    async def _target(
        self, auth: AuthContext, platform: str
    ) -> tuple[PlatformAdapter, PlatformConnection]:
        self.gateway.registry.get(platform)  # unknown platform: 404 before anything else
        connection = await self.connections.get_by_platform(auth.company_id, platform)
        if connection is None:
            raise ConnectionNotFound(platform)
        if not connection.is_enabled:
            raise ConnectionDisabled(
                f"The {platform} connection is disabled", details={"platformType": platform}
            )
        return self.gateway.adapter_for(connection), connection

    async def _configuration(
        self,
        auth: AuthContext,
        menu: Menu,
        platform: str,
        overrides: dict[str, Any],
        adapter: PlatformAdapter,
    ) -> dict[str, Any]:
        stored = await self.repository.get_configuration(auth.company_id, menu.id, platform)
        merged = {**(stored.configuration if stored else {}), **overrides}
        return _validated_config(adapter, merged)

    def _check_menu(
        self,
        adapter: PlatformAdapter,
        menu: Menu,
        configuration: dict[str, Any],
        platform: str,
    ) -> list[dict[str, Any]]:
        canonical = CanonicalMenu.model_validate(menu.document)
        sync_config = adapter.SyncConfig.model_validate(configuration)
        issues = adapter.validate_menu(canonical, sync_config)
        errors = [issue.as_dict() for issue in issues if issue.severity == "error"]
        if errors:
            raise MenuRejectedByPlatform(platform, errors)
        return [issue.as_dict() for issue in issues if issue.severity == "warning"]

    def _new_job(
        self,
        auth: AuthContext,
        *,
        menu: Menu | None,
        platform: str,
        store_key: str,
        kind: str,
        priority: int,
        force: bool,
        request: dict[str, Any],
        trigger: str,
        batch: SyncBatch | None = None,
        sequence: int = 0,
    ) -> SyncJob:
        now = self.clock.now()
        return SyncJob(
            id=uuid.uuid4(),
            company_id=auth.company_id,
            batch_id=batch.id if batch else None,
            menu_id=menu.id if menu else None,
            menu_version=menu.version if menu else None,
            platform=platform,
            store_key=store_key,
            kind=kind,
            status="pending",
            priority=priority,
            sequence=sequence,
            attempt=0,
            max_attempts=self.policies[platform].retry.max_attempts,
            next_attempt_at=now,
            is_forced=force,
            progress=0,
            stage="queued",
            message="Queued",
            request=request,
            trigger=trigger,
            initiated_by=auth.user_id,
            correlation_id=auth.request_id,
            created_at=now,
            updated_at=now,
        )

    async def _queued(self) -> None:
        self.jobs_added = True
        await notify_jobs(self.repository.session)


def _validated_config(
    adapter: PlatformAdapter | type[PlatformAdapter], values: dict[str, Any]
) -> dict[str, Any]:
    try:
        model = adapter.SyncConfig.model_validate(values)
    except ValidationError as exc:
        issues = validation_issues(exc.errors())
        for issue in issues:
            issue["path"] = f"configuration.{issue['path']}" if issue["path"] else "configuration"
        raise ConfigurationInvalid(
            "The sync configuration is invalid for this platform", issues
        ) from exc
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dumped


def _unsupported(index: int, platform: str, what: str) -> dict[str, Any]:
    return {
        "path": f"body.platforms[{index}]",
        "message": f"{platform} does not support {what}",
        "code": "unsupported",
        "platformType": platform,
    }


def _check_item_ids(item_ids: list[str], menu: Menu) -> None:
    known = {item["id"] for item in menu.document.get("items", [])}
    unknown = [item_id for item_id in item_ids if item_id not in known]
    if unknown:
        raise ValidationFailed(
            "itemIds name items that are not in the menu",
            [
                {
                    "path": f"body.itemIds[{item_ids.index(i)}]",
                    "message": f"unknown item {i!r}",
                    "code": "unknown_item",
                }
                for i in unknown
            ],
        )
