"""The daily rollup: analytics read whole days from it and give the same figures as the jobs."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.core.clock import FrozenClock
from menusync.core.db import unit_of_work
from menusync.sync.models import DailySyncStats, RollupProgress, SyncJob
from menusync.sync.rollup import RECOUNT_AFTER, SETTLE, DailyRollup, day_of
from tests.analytics.conftest import NOW, AddRows, job
from tests.support import auth_headers

BASE = "/api/v1/platform-sync/analytics"
OWNER = auth_headers()
DAY = timedelta(days=1)
PERIODS = ("day", "week", "month", "quarter")
STATUSES = ("completed",) * 6 + ("failed", "failed", "cancelled", "pending", "in_progress")


async def _get(api: httpx2.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    response = await api.get(f"{BASE}/{path}", params=params, headers=OWNER)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _figures(api: httpx2.AsyncClient) -> list[dict[str, Any]]:
    """Summary and platform comparison for every period, overall and for one platform."""
    figures = []
    for period in PERIODS:
        for platform in (None, "talabat"):
            params = {"period": period} | ({"platformType": platform} if platform else {})
            figures.append(await _get(api, "summary", **params))
            figures.append(await _get(api, "platforms", **params))
    return figures


async def _roll_all(sessions: async_sessionmaker[AsyncSession], rollup: DailyRollup) -> int:
    rolled = 0
    while True:
        async with unit_of_work(sessions) as session:
            if await rollup.roll_next_day(session) is None:
                return rolled
        rolled += 1


async def _history(add: AddRows, *, days: int = 100, seed: int = 7) -> None:
    """Jobs at random times over ``days`` days; the ones of the last hours may still be running."""
    rng = random.Random(seed)
    rows = []
    for _ in range(600):
        ago = timedelta(seconds=rng.uniform(0, days * 86_400))
        status = rng.choice(STATUSES) if ago < timedelta(hours=6) else rng.choice(STATUSES[:9])
        rows.append(
            job(
                status,
                rng.choice(("careem", "talabat", "deliveroo")),
                ago=ago,
                duration_ms=rng.choice((None, rng.randint(100, 9_000))),
                company=rng.choice(("acme", "acme", "globex")),
            )
        )
    await add(*rows)


async def test_summaries_from_the_rollup_equal_summaries_from_the_jobs(
    api: httpx2.AsyncClient,
    add: AddRows,
    sessions: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> None:
    await _history(add)
    from_jobs = await _figures(api)

    rolled = await _roll_all(sessions, DailyRollup(clock))

    # Every day from the oldest job's to yesterday (NOW is past midnight's settle time), once.
    async with unit_of_work(sessions) as session:
        oldest = await session.scalar(select(func.min(SyncJob.created_at)))
        rows = await session.scalar(select(func.count()).select_from(DailySyncStats))
    assert oldest is not None
    assert rolled == (NOW.date() - oldest.date()).days
    assert rows is not None
    assert rows > 100
    assert await _figures(api) == from_jobs


async def test_whole_days_are_read_from_the_rollup(
    api: httpx2.AsyncClient,
    add: AddRows,
    sessions: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> None:
    await add(job("completed", "careem", ago=10 * DAY, duration_ms=1000))
    await _roll_all(sessions, DailyRollup(clock))
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(DailySyncStats)
            .where(DailySyncStats.day == day_of(NOW - 10 * DAY))
            .values(total=5, completed=5)
        )

    month = await _get(api, "summary", period="month")

    history = await api.get("/api/v1/platform-sync/history", headers=OWNER)

    # The doctored rollup row is what both read: proof that whole days come from it.
    assert (month["totalSyncs"], month["successfulSyncs"]) == (5, 5)
    assert history.json()["pagination"]["total"] == 5


async def test_a_day_with_running_jobs_is_counted_from_the_jobs_until_it_is_final(
    api: httpx2.AsyncClient,
    add: AddRows,
    sessions: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> None:
    stuck = job("in_progress", "careem", ago=3 * DAY)
    await add(stuck, job("completed", "careem", ago=3 * DAY, duration_ms=2000))
    rollup = DailyRollup(clock)
    await _roll_all(sessions, rollup)
    async with unit_of_work(sessions) as session:
        [row] = (await session.execute(select(DailySyncStats))).scalars().all()
    assert (row.total, row.completed, row.is_final) == (2, 1, False)

    async with unit_of_work(sessions) as session:
        await session.execute(update(SyncJob).where(SyncJob.id == stuck.id).values(status="failed"))
    week = await _get(api, "summary", period="week")
    assert (week["totalSyncs"], week["failedSyncs"]) == (2, 1)  # from the jobs: not final

    async with unit_of_work(sessions) as session:
        assert await rollup.recount_one(session) is None  # counted too recently
    clock.advance(RECOUNT_AFTER.total_seconds() + 1)
    async with unit_of_work(sessions) as session:
        assert await rollup.recount_one(session) == ("acme", day_of(NOW - 3 * DAY))
    async with unit_of_work(sessions) as session:
        [row] = (await session.execute(select(DailySyncStats))).scalars().all()
    assert (row.total, row.completed, row.failed, row.is_final) == (2, 1, 1, True)
    assert (await _get(api, "summary", period="week"))["failedSyncs"] == 1


async def test_retrying_an_old_job_reopens_its_day(
    api: httpx2.AsyncClient,
    add: AddRows,
    sessions: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> None:
    failed = job("failed", "talabat", ago=20 * DAY, error_code="upstream")
    await add(failed, job("completed", "talabat", ago=20 * DAY, duration_ms=1000))
    rollup = DailyRollup(clock)
    await _roll_all(sessions, rollup)
    before = await _get(api, "summary", period="month")
    assert (before["failedSyncs"], before["successfulSyncs"]) == (1, 1)

    response = await api.post(
        "/api/v1/platform-sync/retry", json={"syncIds": [str(failed.id)]}, headers=OWNER
    )
    assert response.status_code == 200, response.text

    after = await _get(api, "summary", period="month")
    assert (after["totalSyncs"], after["failedSyncs"], after["successfulSyncs"]) == (2, 0, 1)
    async with unit_of_work(sessions) as session:
        [row] = (await session.execute(select(DailySyncStats))).scalars().all()
    assert (row.is_final, row.version) == (False, 1)

    # The retried job completes; the next recount makes the day final again.
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(SyncJob)
            .where(SyncJob.id == failed.id)
            .values(status="completed", duration_ms=3000)
        )
    clock.advance(RECOUNT_AFTER.total_seconds() + 1)
    async with unit_of_work(sessions) as session:
        assert await rollup.recount_one(session) is not None
    async with unit_of_work(sessions) as session:
        [row] = (await session.execute(select(DailySyncStats))).scalars().all()
    assert (row.completed, row.failed, row.duration_sum, row.is_final) == (2, 0, 4000, True)
    done = await _get(api, "summary", period="month")
    assert (done["successfulSyncs"], done["avgDuration"]) == (2, 2000)


async def test_a_recount_leaves_a_row_reopened_since_it_was_locked(
    add: AddRows, sessions: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    """The version check: a count is written only over the row version it locked."""
    await add(job("in_progress", "careem", ago=4 * DAY))
    rollup = DailyRollup(clock)
    await _roll_all(sessions, rollup)
    clock.advance(RECOUNT_AFTER.total_seconds() + 1)
    async with unit_of_work(sessions) as session:
        # Another transaction reopened the day after this count read its rows: simulated by
        # bumping the version the count will compare against, inside the same transaction.
        original = session.execute

        async def reopen_after_lock(statement: Any, *args: Any, **kwargs: Any) -> Any:
            result = await original(statement, *args, **kwargs)
            if getattr(statement, "_for_update_arg", None) is not None:
                await original(update(DailySyncStats).values(version=DailySyncStats.version + 1))
            return result

        session.execute = reopen_after_lock  # type: ignore[method-assign]
        assert await rollup.recount_one(session) is not None
    async with unit_of_work(sessions) as session:
        [row] = (await session.execute(select(DailySyncStats))).scalars().all()
    assert (row.version, row.is_final, row.updated_at < clock.now()) == (1, False, True)


async def test_workers_roll_each_day_once(
    add: AddRows, sessions: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    await add(job("completed", "careem", ago=2 * DAY))
    first, second = DailyRollup(clock), DailyRollup(clock)
    async with unit_of_work(sessions) as session:
        assert await first.roll_next_day(session) == day_of(NOW - 2 * DAY)
    async with unit_of_work(sessions) as session:
        assert await second.roll_next_day(session) == day_of(NOW - DAY)
    async with unit_of_work(sessions) as session:
        assert await first.roll_next_day(session) is None
        progress = await session.get(RollupProgress, "sync_jobs")
        stats = (await session.execute(select(DailySyncStats))).scalars().all()
    assert progress is not None
    assert progress.through_day == day_of(NOW - SETTLE)
    assert [(s.day, s.total, s.is_final) for s in stats] == [(day_of(NOW - 2 * DAY), 1, True)]


@pytest.mark.parametrize("hours_after_midnight", [0.5, 1.5])
async def test_yesterday_is_rolled_once_it_has_settled(
    add: AddRows,
    sessions: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
    hours_after_midnight: float,
) -> None:
    await add(job("completed", "careem", ago=3 * DAY))
    midnight = NOW.replace(hour=0, minute=0)
    clock.set(midnight + timedelta(hours=hours_after_midnight))
    await _roll_all(sessions, DailyRollup(clock))
    async with unit_of_work(sessions) as session:
        progress = await session.get(RollupProgress, "sync_jobs")
    assert progress is not None
    settled = hours_after_midnight * 3600 > SETTLE.total_seconds()
    assert progress.through_day == (midnight.date() if settled else midnight.date() - DAY)


HISTORY_FILTERS: list[dict[str, str]] = [
    {},
    {"platformType": "careem"},
    {"status": "completed"},
    {"status": "failed", "platformType": "talabat"},
    {"status": "pending"},
    {"dateFrom": "2026-01-15T06:00:00Z"},
    {"dateFrom": "2026-02-01T00:00:00Z", "dateTo": "2026-03-01T00:00:00Z"},
    {"dateTo": "2026-02-20T13:14:15Z", "status": "cancelled"},
    {"kind": "menu"},
    {"retryableOnly": "true"},
]


async def test_history_totals_from_the_rollup_equal_the_jobs_counted(
    api: httpx2.AsyncClient,
    add: AddRows,
    sessions: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> None:
    await _history(add)

    async def totals() -> list[int]:
        found = []
        for params in HISTORY_FILTERS:
            response = await api.get(
                "/api/v1/platform-sync/history", params={**params, "limit": "5"}, headers=OWNER
            )
            assert response.status_code == 200, response.text
            found.append(response.json()["pagination"]["total"])
        return found

    from_jobs = await totals()
    await _roll_all(sessions, DailyRollup(clock))

    assert await totals() == from_jobs
    assert from_jobs[0] > from_jobs[1] > 0
