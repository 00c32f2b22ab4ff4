"""The GCRA limiter on both databases, with a frozen clock: spacing, budget, waits, penalties."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.core.clock import FrozenClock
from menusync.core.db import unit_of_work
from menusync.core.resilience.models import RateLimitState
from menusync.core.resilience.rate_limit import KeyUsage, Limit, RateLimiter, Reservation

EPSILON = 1e-4
"""Slots are floats of epoch seconds, answered as microsecond datetimes."""

Sessions = async_sessionmaker[AsyncSession]
PER_MINUTE_60 = Limit(count=60, period_seconds=60)
ONE_PER_MINUTE = Limit(count=1, period_seconds=60)


async def reserve(
    sessions: Sessions,
    limiter: RateLimiter,
    limits: Mapping[str, Limit],
    max_wait: float | None = None,
) -> Reservation:
    async with unit_of_work(sessions) as session:
        return await limiter.reserve(session, limits, max_wait=max_wait)


async def describe(sessions: Sessions, limiter: RateLimiter, key: str, limit: Limit) -> KeyUsage:
    async with unit_of_work(sessions) as session:
        [usage] = await limiter.describe(session, {key: limit})
        return usage


def seconds_after(start: datetime, when: datetime) -> float:
    return (when - start).total_seconds()


async def test_consecutive_reservations_are_one_interval_apart(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()

    reservations = [await reserve(sessions, limiter, {"remote": PER_MINUTE_60}) for _ in range(5)]

    assert all(r.is_granted for r in reservations)
    gaps = [b.allowed_at - a.allowed_at for a, b in itertools.pairwise(reservations)]
    assert min(gaps) >= timedelta(seconds=PER_MINUTE_60.interval)
    offsets = [seconds_after(start, r.allowed_at) for r in reservations]
    assert offsets == pytest.approx([0, 1, 2, 3, 4], abs=EPSILON)
    assert [r.wait_seconds for r in reservations] == pytest.approx([0, 1, 2, 3, 4], abs=EPSILON)
    assert reservations[0].limiting_key is None
    assert reservations[1].limiting_key == "remote"


async def test_budget_never_exceeded_over_a_simulated_window(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    # Arrange: 10 calls a minute; callers arrive faster than that for five minutes and each
    # waits at most 15 s, re-trying later when refused (as the runner re-schedules).
    limit = Limit(count=10, period_seconds=60)
    rng = random.Random(42)
    start = clock.now()
    calls: list[datetime] = []

    # Act
    while clock.now() < start + timedelta(minutes=5):
        reservation = await reserve(sessions, limiter, {"remote": limit}, max_wait=15)
        if reservation.is_granted:
            calls.append(reservation.allowed_at)
        clock.advance(rng.uniform(0, 4))

    # Assert: no 60-second window holds more than 10 calls, and the budget is nearly all used.
    calls.sort()
    for i, first in enumerate(calls):
        in_window = [c for c in calls[i:] if c < first + timedelta(seconds=60 - EPSILON)]
        assert len(in_window) <= limit.count
    gaps = [seconds_after(a, b) for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= limit.interval
    assert len(calls) >= 5 * limit.count - 1


async def test_long_wait_does_not_book_the_slot(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    await reserve(sessions, limiter, {"store-7": ONE_PER_MINUTE})

    refused = await reserve(sessions, limiter, {"store-7": ONE_PER_MINUTE}, max_wait=5)
    granted = await reserve(sessions, limiter, {"store-7": ONE_PER_MINUTE})

    assert not refused.is_granted
    assert seconds_after(start, refused.allowed_at) == pytest.approx(60, abs=EPSILON)
    assert refused.wait_seconds == pytest.approx(60, abs=EPSILON)
    assert refused.limiting_key == "store-7"
    # The refused call booked nothing: the next slot is the one it was told about.
    assert granted.is_granted
    assert seconds_after(start, granted.allowed_at) == pytest.approx(60, abs=EPSILON)


async def test_wait_within_max_wait_is_granted(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    await reserve(sessions, limiter, {"remote": PER_MINUTE_60})

    reservation = await reserve(sessions, limiter, {"remote": PER_MINUTE_60}, max_wait=1)

    assert reservation.is_granted
    assert seconds_after(start, reservation.allowed_at) == pytest.approx(1, abs=EPSILON)


async def test_several_keys_refused_together_book_none_of_them(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    both = {"remote": PER_MINUTE_60, "remote:store-1": ONE_PER_MINUTE}
    await reserve(sessions, limiter, both)

    refused = await reserve(sessions, limiter, both, max_wait=5)
    whole_budget_only = await reserve(sessions, limiter, {"remote": PER_MINUTE_60})

    assert not refused.is_granted
    assert refused.limiting_key == "remote:store-1"
    assert seconds_after(start, refused.allowed_at) == pytest.approx(60, abs=EPSILON)
    # The shared key's slot was not spent on the refused call.
    assert seconds_after(start, whole_budget_only.allowed_at) == pytest.approx(1, abs=EPSILON)


async def test_several_keys_are_booked_at_their_common_time(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    both = {"remote": PER_MINUTE_60, "remote:store-1": ONE_PER_MINUTE}
    await reserve(sessions, limiter, both)

    later = await reserve(sessions, limiter, both)
    other_store = await reserve(
        sessions, limiter, {"remote": PER_MINUTE_60, "remote:store-2": ONE_PER_MINUTE}
    )

    assert later.is_granted
    assert seconds_after(start, later.allowed_at) == pytest.approx(60, abs=EPSILON)
    # The shared key was booked at the common time too: its next slot follows that call.
    assert seconds_after(start, other_store.allowed_at) == pytest.approx(61, abs=EPSILON)
    usage = await describe(sessions, limiter, "remote", PER_MINUTE_60)
    assert seconds_after(start, usage.next_free_at) == pytest.approx(62, abs=EPSILON)


async def test_burst_allows_early_calls_then_the_sustained_rate(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    bursty = Limit(count=60, period_seconds=60, burst=2)

    reservations = [await reserve(sessions, limiter, {"remote": bursty}) for _ in range(5)]

    offsets = [seconds_after(start, r.allowed_at) for r in reservations]
    assert offsets == pytest.approx([0, 0, 0, 1, 2], abs=EPSILON)


async def test_idle_key_is_free_again(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    await reserve(sessions, limiter, {"store-7": ONE_PER_MINUTE})
    clock.advance(90)

    reservation = await reserve(sessions, limiter, {"store-7": ONE_PER_MINUTE}, max_wait=0)

    assert reservation.is_granted
    assert reservation.allowed_at == clock.now()
    assert reservation.wait_seconds == 0


async def test_penalize_pushes_the_next_slot_back(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    await reserve(sessions, limiter, {"remote": PER_MINUTE_60})

    async with unit_of_work(sessions) as session:
        next_free = await limiter.penalize(session, "remote", PER_MINUTE_60, 30)
    after = await reserve(sessions, limiter, {"remote": PER_MINUTE_60})

    assert seconds_after(start, next_free) == pytest.approx(30, abs=EPSILON)
    assert seconds_after(start, after.allowed_at) == pytest.approx(30, abs=EPSILON)


async def test_penalize_never_pulls_booked_slots_forward(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    for _ in range(10):
        await reserve(sessions, limiter, {"remote": PER_MINUTE_60})

    async with unit_of_work(sessions) as session:
        next_free = await limiter.penalize(session, "remote", PER_MINUTE_60, 2)

    assert seconds_after(start, next_free) == pytest.approx(10, abs=EPSILON)


async def test_penalize_on_an_unused_key_blocks_it(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    async with unit_of_work(sessions) as session:
        await limiter.penalize(session, "remote", PER_MINUTE_60, 12)

    reservation = await reserve(sessions, limiter, {"remote": PER_MINUTE_60}, max_wait=5)

    assert not reservation.is_granted
    assert seconds_after(start, reservation.allowed_at) == pytest.approx(12, abs=EPSILON)


async def test_describe_reports_budget_used_and_next_slot(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    start = clock.now()
    limit = Limit(count=10, period_seconds=60)
    for _ in range(3):
        await reserve(sessions, limiter, {"remote": limit})

    async with unit_of_work(sessions) as session:
        used, unused = await limiter.describe(session, {"remote": limit, "zz-unused": limit})

    assert (used.key, used.used, used.remaining) == ("remote", 3, 7)
    assert seconds_after(start, used.next_free_at) == pytest.approx(18, abs=EPSILON)
    assert used.updated_at == start
    assert (unused.key, unused.used, unused.remaining) == ("zz-unused", 0, 10)
    assert unused.next_free_at == start
    assert unused.booked_until is None


async def test_usage_drains_as_time_passes(
    sessions: Sessions, limiter: RateLimiter, clock: FrozenClock
) -> None:
    limit = Limit(count=10, period_seconds=60)
    for _ in range(10):
        await reserve(sessions, limiter, {"remote": limit})
    full = await describe(sessions, limiter, "remote", limit)

    clock.advance(30)
    half = await describe(sessions, limiter, "remote", limit)

    assert (full.used, full.remaining) == (10, 0)
    assert (half.used, half.remaining) == (5, 5)
    assert half.next_free_at == full.next_free_at


async def test_snapshot_lists_stored_keys_with_known_limits(
    sessions: Sessions, limiter: RateLimiter
) -> None:
    limits = {"remote": PER_MINUTE_60, "remote:store-1": ONE_PER_MINUTE}
    await reserve(sessions, limiter, limits)
    await reserve(sessions, limiter, {"forgotten": ONE_PER_MINUTE})

    async with unit_of_work(sessions) as session:
        snapshot = await limiter.snapshot(session, limits.get)

    assert [(u.key, u.limit, u.used) for u in snapshot] == [
        ("remote", PER_MINUTE_60, 1),
        ("remote:store-1", ONE_PER_MINUTE, 1),
    ]


async def test_the_limiter_leaves_the_transaction_to_the_caller(
    sessions: Sessions, limiter: RateLimiter
) -> None:
    async with sessions() as session:
        await limiter.reserve(session, {"remote": PER_MINUTE_60})
        await limiter.reserve(session, {"remote": PER_MINUTE_60, "store": ONE_PER_MINUTE})
        await session.rollback()

    async with unit_of_work(sessions) as session:
        stored = await session.scalar(select(func.count()).select_from(RateLimitState))
    assert stored == 0


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="at least one call"):
        Limit(count=0, period_seconds=60)
    with pytest.raises(ValueError, match="positive"):
        Limit(count=1, period_seconds=0)
    with pytest.raises(ValueError, match="negative"):
        Limit(count=1, period_seconds=1, burst=-1)
