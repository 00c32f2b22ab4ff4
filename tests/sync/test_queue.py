"""The queue on the job row, on both databases: claim order, one job per target, sequence gating,
leases, fencing, hand-back at shutdown."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.core.clock import FrozenClock
from menusync.sync.models import SyncBatch, SyncJob
from menusync.sync.queue import JobQueue, LeaseLost, lock_owned

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def queue(sessions: Sessions, clock: FrozenClock) -> JobQueue:
    return JobQueue(sessions, clock, lease_seconds=30)


async def _add(sessions: Sessions, clock: FrozenClock, **values: Any) -> uuid.UUID:
    job_id = uuid.uuid4()
    row: dict[str, Any] = {
        "id": job_id,
        "company_id": "acme",
        "platform": "careem",
        "store_key": f"store-{job_id.hex[:6]}",
        "status": "pending",
        "request": {},
        "next_attempt_at": clock.now(),
        "created_at": clock.now(),
        "updated_at": clock.now(),
    }
    row.update(values)
    async with sessions() as session, session.begin():
        session.add(SyncJob(**row))
    return job_id


async def _job(sessions: Sessions, job_id: uuid.UUID) -> SyncJob:
    async with sessions() as session:
        job = await session.get(SyncJob, job_id)
        assert job is not None
        return job


async def test_claims_by_priority_then_age(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    old_low = await _add(
        sessions, clock, priority=3, next_attempt_at=clock.now() - timedelta(minutes=5)
    )
    new_high = await _add(sessions, clock, priority=8)
    old_high = await _add(
        sessions, clock, priority=8, next_attempt_at=clock.now() - timedelta(minutes=1)
    )

    claimed = [await queue.claim("w1") for _ in range(4)]

    assert claimed == [old_high, new_high, old_low, None]


async def test_future_retries_are_not_claimed_until_due(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    later = await _add(
        sessions,
        clock,
        status="scheduled_retry",
        next_attempt_at=clock.now() + timedelta(seconds=30),
    )

    assert await queue.claim("w1") is None
    clock.advance(31)
    assert await queue.claim("w1") == later


async def test_one_job_at_a_time_per_platform_store(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    first = await _add(sessions, clock, store_key="branch-1")
    second = await _add(sessions, clock, store_key="branch-1")
    other_store = await _add(sessions, clock, store_key="branch-2")
    other_platform = await _add(sessions, clock, store_key="branch-1", platform="talabat")

    claimed = {await queue.claim("w1") for _ in range(4)}

    assert claimed == {first, other_store, other_platform, None}
    async with sessions() as session, session.begin():
        await session.execute(
            update(SyncJob).where(SyncJob.id == first).values(status="completed", lease_owner=None)
        )
    assert await queue.claim("w1") == second


async def test_a_job_awaiting_confirmation_keeps_its_store_busy(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    await _add(sessions, clock, store_key="site-1", status="awaiting_confirmation")
    waiting = await _add(sessions, clock, store_key="site-1", kind="availability")

    assert await queue.claim("w1") is None
    async with sessions() as session, session.begin():
        await session.execute(
            update(SyncJob)
            .where(SyncJob.status == "awaiting_confirmation")
            .values(status="completed")
        )
    assert await queue.claim("w1") == waiting


async def test_sequence_batch_runs_one_after_another(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    batch_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        session.add(
            SyncBatch(
                id=batch_id,
                company_id="acme",
                platforms=["a", "b"],
                execution_mode="sequence",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    first = await _add(sessions, clock, batch_id=batch_id, sequence=0, priority=1)
    second = await _add(sessions, clock, batch_id=batch_id, sequence=1, priority=10)

    assert await queue.claim("w1") == first
    assert await queue.claim("w1") is None
    async with sessions() as session, session.begin():
        await session.execute(
            update(SyncJob).where(SyncJob.id == first).values(status="failed", lease_owner=None)
        )
    assert await queue.claim("w1") == second


async def test_claim_sets_the_lease_and_the_first_start(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    job_id = await _add(sessions, clock)

    await queue.claim("w1")

    job = await _job(sessions, job_id)
    assert (job.status, job.lease_owner) == ("in_progress", "w1")
    assert job.lease_expires_at == clock.now() + timedelta(seconds=30)
    assert job.started_at == clock.now()


async def test_expired_lease_is_taken_over_and_the_old_owner_is_fenced_out(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    job_id = await _add(sessions, clock)
    await queue.claim("dead")

    assert await queue.claim("alive") is None  # the lease still runs
    clock.advance(31)
    assert await queue.claim("alive") == job_id

    async with sessions() as session, session.begin():
        with pytest.raises(LeaseLost):
            await lock_owned(session, job_id, "dead")
        assert (await lock_owned(session, job_id, "alive")).lease_owner == "alive"
    assert await queue.heartbeat(job_id, "dead", clock.now()) is False
    assert await queue.heartbeat(job_id, "alive", clock.now()) is True


async def test_heartbeat_extends_the_lease(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    job_id = await _add(sessions, clock)
    await queue.claim("w1")

    clock.advance(25)
    assert await queue.heartbeat(job_id, "w1", clock.now())
    clock.advance(25)

    assert await queue.claim("w2") is None
    assert (await _job(sessions, job_id)).lease_expires_at == clock.now() + timedelta(seconds=5)


async def test_shutdown_hands_jobs_back_at_once(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    job_id = await _add(sessions, clock)
    await queue.claim("w1")

    released = await queue.release_all("w1", clock.now())

    assert released == 1
    assert await queue.claim("w2") == job_id


async def test_cancel_request_is_visible_to_the_worker(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    job_id = await _add(sessions, clock)
    await queue.claim("w1")

    async with sessions() as session, session.begin():
        await session.execute(
            update(SyncJob).where(SyncJob.id == job_id).values(cancel_requested=True)
        )

    assert await queue.is_cancel_requested(job_id)


async def test_terminal_jobs_are_never_claimed(
    queue: JobQueue, sessions: Sessions, clock: FrozenClock
) -> None:
    for status in ("completed", "failed", "cancelled", "awaiting_confirmation"):
        await _add(sessions, clock, status=status)

    assert await queue.claim("w1") is None
    async with sessions() as session:
        statuses = set((await session.execute(select(SyncJob.status))).scalars())
    assert "in_progress" not in statuses
