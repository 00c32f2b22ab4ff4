"""The worker: claims due jobs and runs them, N at a time, plus the maintenance tick.

Wake-ups: the in-process signal (embedded mode, where the API shares the process) and
PostgreSQL ``LISTEN menusync_jobs`` (any process inserting a job notifies); polling every
``idle_poll_seconds`` is the fallback, and also catches retries whose time has come.

Shutdown (SIGTERM, or the app lifespan ending): stop claiming, give running jobs a grace period,
cancel what is left and hand back the leases so other workers take the jobs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager

import psycopg
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.resilience.circuit_breaker import CircuitBreaker
from menusync.core.resilience.rate_limit import RateLimiter
from menusync.core.resources import Resources
from menusync.platforms.runtime import PlatformRuntime
from menusync.sync.maintenance import Maintenance
from menusync.sync.policy import EnginePolicies
from menusync.sync.queue import JOBS_CHANNEL, JobQueue
from menusync.sync.runner import SyncRunner

log = structlog.get_logger(__name__)
LISTEN = "worker-listen"
"""The NOTIFY listener's task: it never ends by itself, so a stop cancels it at once."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        resources: Resources,
        runtime: PlatformRuntime,
        policies: EnginePolicies,
        *,
        concurrency: int | None = None,
        worker_id: str | None = None,
        shutdown_grace_seconds: float = 10.0,
    ) -> None:
        settings = resources.settings.engine
        self.resources = resources
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = concurrency or settings.concurrency
        self.settings = settings
        self.grace = shutdown_grace_seconds
        self.queue = JobQueue(
            resources.sessions, resources.clock, lease_seconds=settings.lease_seconds
        )
        gateway = runtime.gateway(resources)
        limiter = RateLimiter(resources.clock)
        breaker = CircuitBreaker(resources.clock, policies.breaker)
        unit: Callable[[], AbstractAsyncContextManager[AsyncSession]] = resources.unit_of_work
        self.runner = SyncRunner(
            unit,
            self.queue,
            gateway,
            limiter,
            breaker,
            policies,
            settings,
            resources.clock,
            self.worker_id,
        )
        self.maintenance = Maintenance(
            unit,
            gateway,
            limiter,
            policies,
            settings,
            resources.clock,
            self.worker_id,
            self.concurrency,
        )
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def active_jobs(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        """Start the claim loop, the maintenance loop and (PostgreSQL) the NOTIFY listener."""
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="worker-claim"),
            asyncio.create_task(self._maintenance_loop(), name="worker-maintenance"),
        ]
        if not self.resources.settings.is_sqlite:
            self._tasks.append(asyncio.create_task(self._listen(), name=LISTEN))
        log.info("worker_started", worker=self.worker_id, concurrency=self.concurrency)

    async def stop(self) -> None:
        """Stop claiming, let running jobs finish for a grace period, hand back the rest."""
        self._stopping.set()
        self.resources.signals.jobs.set()
        # The loops see the stop between two transactions and end; cancelling one inside a
        # transaction could leave its connection holding SQLite's write lock until collected.
        await self._finish(self._tasks, wait=[t for t in self._tasks if t.get_name() != LISTEN])
        await self._finish(set(self._running), wait=self._running)
        released = await self.queue.release_all(self.worker_id, self.resources.clock.now())
        log.info("worker_stopped", worker=self.worker_id, released_jobs=released)

    async def _finish(
        self, tasks: Collection[asyncio.Task[None]], *, wait: Collection[asyncio.Task[None]]
    ) -> None:
        """Give ``wait`` the grace period to end by themselves, then cancel what is left."""
        if wait:
            await asyncio.wait(wait, timeout=self.grace)
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_until_stopped(self) -> None:
        await self.start()
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def _claim_loop(self) -> None:
        signal = self.resources.signals.jobs
        while not self._stopping.is_set():
            while len(self._running) < self.concurrency and not self._stopping.is_set():
                try:
                    job_id = await self.queue.claim(self.worker_id)
                except Exception:
                    log.exception("claim_failed")
                    job_id = None
                if job_id is None:
                    break  # nothing due: wait for a wake-up (or the polling interval)
                task = asyncio.create_task(self._run(job_id))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            await signal.wait(self.settings.idle_poll_seconds)

    async def _run(self, job_id: uuid.UUID) -> None:
        try:
            await self.runner.run(job_id)
        finally:
            # A slot is free: look for more work at once.
            self.resources.signals.jobs.set()

    async def _maintenance_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.maintenance.tick(self.active_jobs)
            except Exception:
                log.exception("maintenance_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.maintenance_seconds)

    async def _listen(self) -> None:
        """Turn PostgreSQL notifications on ``menusync_jobs`` into wake-ups (reconnecting)."""
        url = make_url(self.resources.settings.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not self._stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {JOBS_CHANNEL}")
                    async for _ in conn.notifies():
                        self.resources.signals.jobs.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("listen_failed", error=str(exc))
                await asyncio.sleep(2)
