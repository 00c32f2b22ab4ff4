"""The worker's maintenance tick: everything that happens because time passed.

- follow pushes awaiting the platform's confirmation: poll the platform's status endpoint when
  a job's poll time comes (the webhook usually arrives first), and turn a passed confirmation
  deadline into a retry;
- enqueue scheduled syncs (``syncSchedule`` cron) exactly once, however many workers tick: the
  configuration row is claimed with ``FOR UPDATE SKIP LOCKED`` and its ``next_run_at`` moved in
  the same transaction as the job insert;
- roll finished days of jobs up for analytics, and count again the days a retry reopened
  (``sync/rollup.py``);
- record this worker's heartbeat; prune old realtime events.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

import structlog
from croniter import croniter
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.config import EngineSettings
from menusync.core.clock import Clock
from menusync.core.http import CallLog
from menusync.core.resilience.rate_limit import RateLimiter
from menusync.menus.models import Menu
from menusync.platforms.base import MenuPayload
from menusync.platforms.connections import PlatformGateway
from menusync.platforms.errors import PlatformError
from menusync.platforms.models import IntegrationLog
from menusync.platforms.repository import ConnectionRepository
from menusync.realtime.models import SyncEvent
from menusync.sync import transitions
from menusync.sync.models import SyncConfiguration, SyncJob, WorkerHeartbeat
from menusync.sync.policy import EnginePolicies
from menusync.sync.queue import notify_jobs
from menusync.sync.rollup import DailyRollup
from menusync.sync.tracking import Tracker
from menusync.sync.webhooks import apply_result

log = structlog.get_logger(__name__)

UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]
ROLL_DAYS_PER_TICK = 7
"""A new installation catches up on its past days a week per tick."""


def is_valid_schedule(schedule: str) -> bool:
    """A standard 5-field cron expression (minute hour day month weekday)."""
    return len(schedule.split()) == 5 and bool(croniter.is_valid(schedule))


def next_run(schedule: str, after: datetime) -> datetime:
    """The first time after ``after`` that the cron ``schedule`` fires (UTC)."""
    value: datetime = croniter(schedule, after).get_next(datetime)
    return value


class Maintenance:
    def __init__(
        self,
        unit_of_work: UnitOfWork,
        gateway: PlatformGateway,
        limiter: RateLimiter,
        policies: EnginePolicies,
        settings: EngineSettings,
        clock: Clock,
        worker_id: str,
        concurrency: int,
    ) -> None:
        self.unit_of_work = unit_of_work
        self.gateway = gateway
        self.limiter = limiter
        self.policies = policies
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.started_at = clock.now()

    async def tick(self, active_jobs: int = 0) -> None:
        await self.heartbeat(active_jobs)
        await self.expire_confirmations()
        while await self.poll_one_confirmation():
            pass
        while await self.enqueue_one_schedule():
            pass
        await self.roll_up()
        await self.prune_events()

    async def roll_up(self) -> None:
        """Roll up to ``ROLL_DAYS_PER_TICK`` finished days; once none is due, recount one
        reopened day (in the same transaction: one per tick in the steady state)."""
        rollup = DailyRollup(self.clock)
        for _ in range(ROLL_DAYS_PER_TICK):
            async with self.unit_of_work() as session:
                if await rollup.roll_next_day(session) is None:
                    await rollup.recount_one(session)
                    return

    async def heartbeat(self, active_jobs: int) -> None:
        now = self.clock.now()
        async with self.unit_of_work() as session:
            beat = await session.get(WorkerHeartbeat, self.worker_id)
            if beat is None:
                beat = WorkerHeartbeat(
                    worker_id=self.worker_id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    concurrency=self.concurrency,
                    started_at=self.started_at,
                )
                session.add(beat)
            beat.active_jobs = active_jobs
            beat.last_seen_at = now

    async def expire_confirmations(self) -> None:
        """A push whose confirmation never came (lost webhook, platform silent) is retried."""
        now = self.clock.now()
        async with self.unit_of_work() as session:
            jobs = (
                (
                    await session.execute(
                        select(SyncJob)
                        .where(
                            SyncJob.status == "awaiting_confirmation",
                            SyncJob.confirmation_deadline_at <= now,
                        )
                        .with_for_update(skip_locked=True)
                        .limit(50)
                    )
                )
                .scalars()
                .all()
            )
            tracker = Tracker(session, self.clock)
            for job in jobs:
                message = f"{job.platform} did not confirm the push in time"
                if job.attempt < job.max_attempts:
                    delay = self.policies[job.platform].retry.backoff(job.attempt)
                    await transitions.schedule_retry(
                        tracker,
                        job,
                        now + timedelta(seconds=delay),
                        now,
                        code="confirmation_timeout",
                        message=message,
                    )
                else:
                    await transitions.fail(
                        session,
                        tracker,
                        job,
                        now,
                        code="confirmation_timeout",
                        message=message,
                        retryable=True,
                    )
            if jobs:
                await notify_jobs(session)

    async def poll_one_confirmation(self) -> bool:
        """Poll the platform for one awaiting job whose poll time has come. False when none."""
        now = self.clock.now()
        async with self.unit_of_work() as session:
            job = (
                await session.execute(
                    select(SyncJob)
                    .where(SyncJob.status == "awaiting_confirmation", SyncJob.next_poll_at <= now)
                    .order_by(SyncJob.next_poll_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if job is None:
                return False
            # Claim it for this poll: push the next poll time out, so other workers skip it.
            job.next_poll_at = now + timedelta(seconds=self.settings.status_poll_seconds)
            job_id, platform, external_ref = job.id, job.platform, job.external_ref
            connection = await ConnectionRepository(session).get_by_platform(
                job.company_id, platform
            )
            pushed = ((job.request or {}).get("pushedPayload") or {}).get("body")
            limits = self.policies[platform].limits_for("push_status", job.store_key)
            reservation = await self.limiter.reserve(
                session, limits, max_wait=self.settings.max_inline_wait_seconds
            )
            company_id = job.company_id
        if connection is None or external_ref is None or not reservation.is_granted:
            return True
        calls = CallLog()
        adapter = self.gateway.adapter_for(connection, calls)
        payload = MenuPayload(body=pushed, items_total=0) if pushed else None
        try:
            result = await adapter.get_push_result(external_ref, payload)
        except PlatformError as exc:
            log.info("confirmation_poll_failed", sync_id=str(job_id), error=exc.message)
            result = None
        async with self.unit_of_work() as session:
            session.add_all(
                IntegrationLog.of_call(
                    call, company_id=company_id, platform=platform, sync_id=job_id
                )
                for call in calls.drain()
            )
            if result is None:
                return True
            locked = (
                await session.execute(
                    select(SyncJob)
                    .where(
                        SyncJob.id == job_id,
                        SyncJob.status == "awaiting_confirmation",
                        SyncJob.external_ref == external_ref,
                    )
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            ).scalar_one_or_none()
            if locked is not None:
                await apply_result(
                    session,
                    Tracker(session, self.clock),
                    locked,
                    result,
                    self.clock.now(),
                    source="polling",
                )
        return True

    async def enqueue_one_schedule(self) -> bool:
        """Queue the sync of one due schedule and move it to its next time. False when none."""
        now = self.clock.now()
        async with self.unit_of_work() as session:
            config = (
                await session.execute(
                    select(SyncConfiguration)
                    .where(
                        SyncConfiguration.auto_sync_enabled.is_(True),
                        SyncConfiguration.next_run_at <= now,
                    )
                    .order_by(SyncConfiguration.next_run_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if config is None:
                return False
            config.last_run_at = now
            config.next_run_at = (
                next_run(config.sync_schedule, now) if config.sync_schedule else None
            )
            menu = await session.get(Menu, config.menu_id)
            connection = await ConnectionRepository(session).get_by_platform(
                config.company_id, config.platform
            )
            if (
                menu is None
                or connection is None
                or not connection.is_enabled
                or config.platform not in self.gateway.registry
            ):
                log.warning(
                    "scheduled_sync_skipped", menu_id=str(config.menu_id), platform=config.platform
                )
                return True
            job = SyncJob(
                id=uuid.uuid4(),
                company_id=config.company_id,
                menu_id=menu.id,
                menu_version=menu.version,
                platform=config.platform,
                store_key=connection.store_key,
                kind="menu",
                status="pending",
                priority=3,
                max_attempts=self.policies[config.platform].retry.max_attempts,
                next_attempt_at=now,
                request={"configuration": config.configuration, "itemIds": None},
                trigger="schedule",
                initiated_by="scheduler",
                stage="queued",
                message=f"Scheduled ({config.sync_schedule})",
                created_at=now,
                updated_at=now,
            )
            session.add(job)
            await session.flush()
            await Tracker(session, self.clock).started(job)
            await notify_jobs(session)
            return True

    async def prune_events(self) -> None:
        cutoff = self.clock.now() - timedelta(days=self.settings.event_retention_days)
        async with self.unit_of_work() as session:
            await session.execute(delete(SyncEvent).where(SyncEvent.created_at < cutoff))
            stale = self.clock.now() - timedelta(days=1)
            await session.execute(
                delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < stale)
            )
