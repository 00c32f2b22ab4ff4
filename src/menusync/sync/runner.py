"""Runs one claimed job: the life of a sync (DESIGN section 4, steps 3 to 6).

    prepare   load menu, connection and configuration; build and hash the payload;
              unchanged since the last successful push -> completed without a call
    guard     circuit breaker (open: defer to the half-open time, no attempt used)
              rate limiter   (a short wait is slept, a long one defers the job)
    call      the adapter, as a task: the heartbeat renews the lease and watches for a cancel
              request, cancelling the call in flight when one arrives or the lease is lost
    record    integration logs, breaker verdict, and the outcome, in one transaction:
              accepted  -> awaiting_confirmation (webhook or poll completes it)
              completed -> completed, push remembered
              transient -> scheduled_retry at now + backoff (full jitter, >= Retry-After)
              permanent -> failed, with the platform's own details

Every write is fenced by the lease (``queue.lock_owned``): a worker that lost its lease writes
nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx2
import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.config import EngineSettings
from menusync.core.clock import Clock
from menusync.core.db import dialect_name
from menusync.core.http import CallLog
from menusync.core.resilience.circuit_breaker import CircuitBreaker
from menusync.core.resilience.rate_limit import Limit, RateLimiter, Reservation
from menusync.menus.canonical import CanonicalMenu, content_hash
from menusync.menus.models import Menu
from menusync.platforms.base import (
    AvailabilityChange,
    MenuPayload,
    OperationResult,
    PlatformAdapter,
    PlatformIssue,
    PushReceipt,
    StoreStatusChange,
)
from menusync.platforms.connections import PlatformGateway
from menusync.platforms.errors import (
    PlatformAuthError,
    PlatformError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from menusync.platforms.models import IntegrationLog, PlatformConnection
from menusync.platforms.repository import ConnectionRepository
from menusync.realtime.events import EventType
from menusync.sync import transitions
from menusync.sync.models import SyncJob
from menusync.sync.planner import menu_summary
from menusync.sync.policy import EnginePolicies
from menusync.sync.queue import JobQueue, LeaseLost, lock_owned
from menusync.sync.repository import SyncRepository
from menusync.sync.tracking import Tracker
from menusync.sync.webhooks import reconcile_webhooks

log = structlog.get_logger(__name__)
T = TypeVar("T")

OPERATIONS = {
    "menu": "push_menu",
    "availability": "item_availability",
    "store_status": "store_status",
}


class JobCancelled(Exception):
    pass


class PermanentJobError(Exception):
    """Found while preparing: the job cannot succeed as asked (no retry)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


BUILD_CACHE_SIZE = 32


@dataclass(frozen=True)
class Built:
    """A menu turned into one platform's payload (pure work, cached per process)."""

    menu_version: int
    payload: MenuPayload
    payload_hash: str
    summary: dict[str, Any]
    errors: tuple[PlatformIssue, ...]


@dataclass
class Prepared:
    job_id: uuid.UUID
    company_id: str
    platform: str
    store_key: str
    kind: str
    adapter: PlatformAdapter
    calls: CallLog
    payload: MenuPayload | None = None
    request: dict[str, Any] | None = None
    probe_owner: str = ""
    """Who holds the breaker's probe, if this job gets it: unique per job, not per worker."""
    pushed: dict[str, Any] | None = None
    """What a successful push leaves on the platform: ``{"body": payload, "items": summary}``."""


class SyncRunner:
    def __init__(
        self,
        unit_of_work: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        queue: JobQueue,
        gateway: PlatformGateway,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        policies: EnginePolicies,
        settings: EngineSettings,
        clock: Clock,
        worker_id: str,
    ) -> None:
        self.unit_of_work = unit_of_work
        self.queue = queue
        self.gateway = gateway
        self.limiter = limiter
        self.breaker = breaker
        self.policies = policies
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id
        self._built: OrderedDict[tuple[Any, ...], Built] = OrderedDict()

    async def run(self, job_id: uuid.UUID) -> None:
        """Run the claimed job until it leaves ``in_progress`` (or the lease is lost)."""
        with structlog.contextvars.bound_contextvars(sync_id=str(job_id)):
            try:
                await self._run(job_id)
            except LeaseLost:
                log.warning("lease_lost", worker=self.worker_id)
            except Exception:
                log.exception("job_crashed")
                await self._crash(job_id)

    async def _run(self, job_id: uuid.UUID) -> None:
        prepared = await self._start(job_id)
        if prepared is None:
            return
        try:
            outcome = await self._call_with_watch(prepared, self._operation(prepared))
        except JobCancelled:
            await self._after_cancel(prepared)
            return
        except (PlatformError, httpx2.HTTPError) as exc:
            await self._after_error(prepared, _as_platform_error(exc))
            return
        await self._after_success(prepared, outcome)

    async def _start(self, job_id: uuid.UUID) -> Prepared | None:
        """Prepare and guard in one transaction; sleep a short rate-limit wait after it commits.
        None when the job ended or was deferred instead of calling the platform."""
        async with self.unit_of_work() as session:
            job = await lock_owned(session, job_id, self.worker_id)
            tracker = Tracker(session, self.clock)
            now = self.clock.now()
            if job.cancel_requested:
                await transitions.cancel(tracker, job, now, message="Cancelled before it ran")
                return None
            try:
                prepared = await self._prepare_job(session, tracker, job)
            except PermanentJobError as exc:
                await transitions.fail(
                    session,
                    tracker,
                    job,
                    now,
                    code=exc.code,
                    message=exc.message,
                    details=exc.details,
                )
                return None
            if prepared is None:
                return None
            allowed_at = await self._guard(
                session, tracker, job, prepared, OPERATIONS[prepared.kind]
            )
        if allowed_at is None:
            return None
        # Sleep until the booked slot itself (measured after the commit), not for a wait
        # computed before it: the call then leaves as close to its slot as the clock allows.
        wait = (allowed_at - self.clock.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        return prepared

    # ---- prepare ------------------------------------------------------------------------

    async def _prepare_job(
        self, session: AsyncSession, tracker: Tracker, job: SyncJob
    ) -> Prepared | None:
        connection = await ConnectionRepository(session).get_by_platform(
            job.company_id, job.platform
        )
        if connection is None:
            raise PermanentJobError(
                "connection_missing", f"No {job.platform} connection is configured"
            )
        if not connection.is_enabled:
            raise PermanentJobError(
                "connection_disabled", f"The {job.platform} connection is disabled"
            )
        calls = CallLog()
        adapter = self.gateway.adapter_for(connection, calls)
        prepared = Prepared(
            job.id,
            job.company_id,
            job.platform,
            job.store_key,
            job.kind,
            adapter,
            calls,
            request=job.request,
        )
        now = self.clock.now()
        if job.kind != "menu":
            job.progress = 20
            job.items_total = len(job.request.get("changes", [])) or 1
            return prepared
        built = await self._build(session, job, connection, adapter)
        if built.errors:
            raise PermanentJobError(
                "platform_validation_failed",
                f"{job.platform} would reject this menu: {len(built.errors)} issue(s)",
                {"issues": [issue.as_dict() for issue in built.errors]},
            )
        payload = built.payload
        job.menu_version = built.menu_version
        job.payload_hash = built.payload_hash
        job.items_total = payload.items_total
        assert job.menu_id is not None
        menu_id = job.menu_id
        record = await SyncRepository(session).get_push_record(
            job.company_id, menu_id, job.platform, job.store_key
        )
        if not job.is_forced and record is not None and record.payload_hash == job.payload_hash:
            await transitions.complete(
                session,
                tracker,
                job,
                now,
                message=f"{job.platform} already has this menu",
                unchanged=True,
            )
            return None
        job.progress = 20
        prepared.payload = payload
        prepared.pushed = {
            "body": payload.body,
            "items": built.summary,
            "followUp": [
                {"itemId": c.item_id, "isAvailable": c.is_available, "kind": c.kind}
                for c in payload.follow_up_availability
            ],
        }
        return prepared

    async def _build(
        self,
        session: AsyncSession,
        job: SyncJob,
        connection: PlatformConnection,
        adapter: PlatformAdapter,
    ) -> Built:
        """The payload for this job, from the process cache when the menu version, connection
        and configuration are the same as for an earlier job (a batch, a backlog)."""
        head = None
        if job.menu_id is not None:
            head = (
                await session.execute(
                    select(Menu.version, Menu.company_id).where(Menu.id == job.menu_id)
                )
            ).one_or_none()
        if head is None or head.company_id != job.company_id:
            raise PermanentJobError(
                "menu_not_found", "The menu was deleted before it could be synced"
            )
        configuration = job.request.get("configuration") or {}
        item_ids = job.request.get("itemIds")
        key = (
            job.menu_id,
            head.version,
            connection.id,
            connection.updated_at,
            json.dumps(configuration, sort_keys=True),
            tuple(item_ids) if item_ids else None,
        )
        cached = self._built.get(key)
        if cached is not None:
            self._built.move_to_end(key)
            return cached
        document = (
            await session.execute(select(Menu.document).where(Menu.id == job.menu_id))
        ).scalar_one()
        canonical = CanonicalMenu.model_validate(document)
        sync_config = _sync_config(adapter, configuration)
        errors = tuple(
            issue
            for issue in adapter.validate_menu(canonical, sync_config)
            if issue.severity == "error"
        )
        payload = (
            adapter.build_payload(canonical, sync_config, item_ids)
            if not errors
            else MenuPayload({}, 0)
        )
        built = Built(
            menu_version=head.version,
            payload=payload,
            payload_hash=content_hash(payload.body),
            summary=menu_summary(canonical, job.platform),
            errors=errors,
        )
        self._built[key] = built
        if len(self._built) > BUILD_CACHE_SIZE:
            self._built.popitem(last=False)
        return built

    # ---- guard ----------------------------------------------------------------------------

    async def _guard(
        self,
        session: AsyncSession,
        tracker: Tracker,
        job: SyncJob,
        prepared: Prepared,
        operation: str,
    ) -> datetime | None:
        """Breaker, then limiter. Returns when the call may go, or None when the job was
        deferred (no attempt used)."""
        now = self.clock.now()
        permit = await self.breaker.acquire(session, prepared.platform, prepared.probe_owner)
        await self._announce_breaker(tracker, job, permit.changed_to)
        if not permit.is_allowed:
            assert permit.retry_at is not None
            await transitions.defer(
                tracker,
                job,
                permit.retry_at,
                now,
                reason=f"{prepared.platform} is failing; circuit open until {permit.retry_at.isoformat()}",
                code="circuit_open",
            )
            return None
        limits = self.policies[prepared.platform].limits_for(operation, prepared.store_key)
        reservation = await self._reserve(session, limits)
        if not reservation.is_granted:
            if permit.is_probe:
                await self.breaker.release(session, prepared.platform, prepared.probe_owner)
            await transitions.defer(
                tracker,
                job,
                reservation.allowed_at,
                now,
                reason=f"Waiting for the {prepared.platform} rate budget ({reservation.limiting_key})",
                code="rate_budget",
            )
            return None
        job.attempt += 1
        job.stage = "calling_platform"
        job.progress = max(job.progress, 40)
        items = f"{job.items_total} items; " if job.kind == "menu" else ""
        job.message = (
            f"Calling {prepared.platform} ({items}attempt {job.attempt} of {job.max_attempts})"
        )
        await tracker.progress(job)
        return reservation.allowed_at

    async def _reserve(self, session: AsyncSession, limits: dict[str, Limit]) -> Reservation:
        """Book the rate-limit slot. On PostgreSQL in a transaction of its own, committed at
        once: the limiter's rows are shared by every job of every worker, and holding their
        lock until the job's own commit made all jobs queue on them. A slot booked for a job
        whose transaction then fails is only wasted, never over budget. On SQLite the job's
        transaction already holds the database's write lock, so the booking stays inside it."""
        if dialect_name(session) != "postgresql":
            return await self.limiter.reserve(
                session, limits, max_wait=self.settings.max_inline_wait_seconds
            )
        async with self.unit_of_work() as own:
            return await self.limiter.reserve(
                own, limits, max_wait=self.settings.max_inline_wait_seconds
            )

    # ---- call -------------------------------------------------------------------------------

    def _operation(
        self, prepared: Prepared
    ) -> Callable[[], Awaitable[PushReceipt | OperationResult]]:
        adapter = prepared.adapter
        request = prepared.request or {}
        if prepared.kind == "menu":
            assert prepared.payload is not None
            payload = prepared.payload
            return lambda: adapter.push_menu(payload)
        if prepared.kind == "availability":
            changes = [
                AvailabilityChange(**_availability_args(c)) for c in request.get("changes", [])
            ]
            return lambda: adapter.set_item_availability(changes)
        change = StoreStatusChange(**_store_status_args(request))
        return lambda: adapter.set_store_status(change)

    async def _call_with_watch(self, prepared: Prepared, call: Callable[[], Awaitable[T]]) -> T:
        """Run the platform call; renew the lease meanwhile; cancel it on a cancel request."""
        task = asyncio.ensure_future(call())
        interval = max(0.2, min(self.queue.lease.total_seconds() / 3, 5.0))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=interval)
                if done:
                    return task.result()
                if not await self.queue.heartbeat(
                    prepared.job_id, self.worker_id, self.clock.now()
                ):
                    raise LeaseLost(str(prepared.job_id))
                if await self.queue.is_cancel_requested(prepared.job_id):
                    raise JobCancelled
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # ---- record ------------------------------------------------------------------------------

    async def _after_success(
        self, prepared: Prepared, outcome: PushReceipt | OperationResult
    ) -> None:
        async with self.unit_of_work() as session:
            job = await lock_owned(session, prepared.job_id, self.worker_id)
            tracker = Tracker(session, self.clock)
            now = self.clock.now()
            self._write_calls(session, prepared, job.attempt)
            await self._announce_breaker(
                tracker,
                job,
                await self.breaker.record_success(session, prepared.platform, prepared.probe_owner),
            )
            if isinstance(outcome, OperationResult):
                await self._finish_operation(session, tracker, job, outcome, now)
                return
            assert prepared.payload is not None
            if outcome.outcome == "accepted":
                job.status = "awaiting_confirmation"
                job.lease_owner = None
                job.lease_expires_at = None
                job.external_ref = outcome.external_ref
                job.stage = "awaiting_confirmation"
                job.progress = 70
                job.message = (
                    outcome.message
                    or f"{prepared.platform} accepted the menu; waiting for its result"
                )
                poll_after = max(outcome.poll_after_seconds, 0.0)
                job.next_poll_at = now + timedelta(
                    seconds=min(
                        poll_after or self.settings.status_poll_seconds,
                        self.settings.status_poll_seconds,
                    )
                )
                job.confirmation_deadline_at = now + timedelta(
                    seconds=self.settings.confirmation_timeout_seconds
                )
                job.updated_at = now
                job.request = {**job.request, "pushedPayload": prepared.pushed}
                await tracker.progress(job)
                awaiting_ref = outcome.external_ref
            else:
                awaiting_ref = None
                await transitions.complete(
                    session,
                    tracker,
                    job,
                    now,
                    message=outcome.message
                    or (
                        f"{prepared.platform} already had this menu"
                        if outcome.outcome == "unchanged"
                        else "Menu published"
                    ),
                    unchanged=outcome.outcome == "unchanged",
                    pushed_payload=prepared.pushed,
                )
        if awaiting_ref is not None:
            # The platform's webhook may have arrived while this job was still in progress; it
            # was kept as unmatched. Checked after our commit, so either this check or the
            # webhook's own re-check (after its commit) sees the other's write.
            async with self.unit_of_work() as session:
                await reconcile_webhooks(
                    session,
                    Tracker(session, self.clock),
                    self.gateway,
                    prepared.platform,
                    awaiting_ref,
                )

    async def _finish_operation(
        self,
        session: AsyncSession,
        tracker: Tracker,
        job: SyncJob,
        result: OperationResult,
        now: Any,
    ) -> None:
        job.items_processed = result.items_processed or job.items_total
        details = {"partialFailures": [dict(item) for item in result.partial_failures]}
        if result.succeeded:
            note = (
                f" ({len(result.partial_failures)} target(s) did not apply it)"
                if result.partial_failures
                else ""
            )
            await transitions.complete(
                session, tracker, job, now, message=(result.message or "Done") + note
            )
            if result.partial_failures:
                job.error_details = details
        else:
            await transitions.fail(
                session,
                tracker,
                job,
                now,
                code="platform_operation_failed",
                message=result.message or f"{job.platform} did not apply the change",
                details=details,
            )

    async def _after_error(self, prepared: Prepared, error: PlatformError) -> None:
        async with self.unit_of_work() as session:
            job = await lock_owned(session, prepared.job_id, self.worker_id)
            tracker = Tracker(session, self.clock)
            now = self.clock.now()
            self._write_calls(session, prepared, job.attempt)
            changed = None
            if error.counts_for_breaker:
                changed = await self.breaker.record_failure(
                    session, prepared.platform, prepared.probe_owner, error.message
                )
            elif isinstance(error, PlatformRateLimited):
                await self.breaker.release(session, prepared.platform, prepared.probe_owner)
            else:
                # The platform answered (a 4xx, a busy conflict): it is up.
                changed = await self.breaker.record_success(
                    session, prepared.platform, prepared.probe_owner
                )
            await self._announce_breaker(tracker, job, changed)
            details = {**error.details, "errorClass": type(error).__name__}
            if isinstance(error, PlatformAuthError):
                connection = await ConnectionRepository(session).get_by_platform(
                    job.company_id, job.platform
                )
                if connection is not None:
                    connection.status = "needs_reauth"
                    connection.last_error = error.message
            if isinstance(error, PlatformRateLimited):
                policy = self.policies[prepared.platform]
                limits = policy.limits_for(OPERATIONS[prepared.kind], prepared.store_key)
                key = max(limits, key=lambda k: limits[k].interval)
                penalty = (
                    error.retry_after if error.retry_after is not None else limits[key].interval
                )
                await self.limiter.penalize(session, key, limits[key], penalty)
            if error.retryable and job.attempt < job.max_attempts:
                policy = self.policies[prepared.platform]
                delay = policy.retry.backoff(
                    job.attempt, retry_after=getattr(error, "retry_after", None)
                )
                await transitions.schedule_retry(
                    tracker,
                    job,
                    now + timedelta(seconds=delay),
                    now,
                    code=error.code,
                    message=f"{error.message} (retry {job.attempt} of {job.max_attempts - 1} in {delay:.1f} s)",
                    details=details,
                )
                return
            if isinstance(error, PlatformRejected):
                details["issues"] = error.issues
            await transitions.fail(
                session,
                tracker,
                job,
                now,
                code=error.code,
                message=error.message
                + (f" (gave up after {job.attempt} attempts)" if error.retryable else ""),
                retryable=error.retryable,
                details=details,
            )

    async def _after_cancel(self, prepared: Prepared) -> None:
        async with self.unit_of_work() as session:
            job = await lock_owned(session, prepared.job_id, self.worker_id)
            tracker = Tracker(session, self.clock)
            self._write_calls(session, prepared, job.attempt)
            await self.breaker.release(session, prepared.platform, prepared.probe_owner)
            await transitions.cancel(
                tracker, job, self.clock.now(), message="Cancelled while calling the platform"
            )

    async def _crash(self, job_id: uuid.UUID) -> None:
        """A bug, not a platform problem: fail the job visibly rather than retry it forever."""
        with contextlib.suppress(LeaseLost):
            async with self.unit_of_work() as session:
                job = await lock_owned(session, job_id, self.worker_id)
                await transitions.fail(
                    session,
                    Tracker(session, self.clock),
                    job,
                    self.clock.now(),
                    code="internal_error",
                    message="menusync hit an internal error running this sync; it has been logged",
                    retryable=True,
                )

    def _write_calls(self, session: AsyncSession, prepared: Prepared, attempt: int) -> None:
        session.add_all(
            [
                IntegrationLog.of_call(
                    call,
                    company_id=prepared.company_id,
                    platform=prepared.platform,
                    sync_id=prepared.job_id,
                    attempt=attempt,
                )
                for call in prepared.calls.drain()
            ]
        )

    async def _announce_breaker(self, tracker: Tracker, job: SyncJob, changed: Any) -> None:
        if changed is not None:
            await tracker.events.emit(
                job.company_id,
                EventType.CIRCUIT_BREAKER_CHANGED,
                {"platformType": job.platform, "state": str(changed)},
            )


def _sync_config(adapter: PlatformAdapter, values: dict[str, Any]) -> BaseModel:
    try:
        return adapter.SyncConfig.model_validate(values)
    except ValidationError as exc:
        raise PermanentJobError(
            "configuration_invalid",
            "The stored sync configuration is no longer valid",
            {"errors": exc.errors(include_url=False)},
        ) from exc


def _as_platform_error(exc: PlatformError | httpx2.HTTPError) -> PlatformError:
    if isinstance(exc, PlatformError):
        return exc
    return PlatformUnavailable(f"{type(exc).__name__}: {exc}")


def _availability_args(change: dict[str, Any]) -> dict[str, Any]:
    until = change.get("until")
    return {
        "item_id": change["itemId"],
        "is_available": bool(change["isAvailable"]),
        "kind": change.get("kind", "item"),
        "until": datetime.fromisoformat(until) if until else None,
    }


def _store_status_args(request: dict[str, Any]) -> dict[str, Any]:
    until = request.get("until")
    return {
        "state": request["state"],
        "until": datetime.fromisoformat(until) if until else None,
        "reason": request.get("reason"),
    }
