"""The circuit breaker on both databases, with a frozen clock: open, reject, probe, close."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.core.clock import FrozenClock
from menusync.core.db import unit_of_work
from menusync.core.resilience.circuit_breaker import (
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    CircuitBreaker,
    Permit,
    PermitKind,
)
from menusync.core.resilience.models import CircuitBreakerState

Sessions = async_sessionmaker[AsyncSession]
NAME = "remote"


async def acquire(sessions: Sessions, breaker: CircuitBreaker, owner: str) -> Permit:
    async with unit_of_work(sessions) as session:
        return await breaker.acquire(session, NAME, owner)


async def fail(
    sessions: Sessions, breaker: CircuitBreaker, owner: str = "job-0", times: int = 1
) -> list[BreakerState | None]:
    changes = []
    for _ in range(times):
        async with unit_of_work(sessions) as session:
            changes.append(await breaker.record_failure(session, NAME, owner, "503 from remote"))
    return changes


async def succeed(
    sessions: Sessions, breaker: CircuitBreaker, owner: str = "job-0"
) -> BreakerState | None:
    async with unit_of_work(sessions) as session:
        return await breaker.record_success(session, NAME, owner)


async def status(sessions: Sessions, breaker: CircuitBreaker) -> BreakerStatus:
    async with unit_of_work(sessions) as session:
        return await breaker.get_state(session, NAME)


async def open_breaker(sessions: Sessions, breaker: CircuitBreaker) -> None:
    assert (await fail(sessions, breaker, times=5))[-1] is BreakerState.OPEN


async def test_opens_after_five_consecutive_failures(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    changes = await fail(sessions, breaker, times=5)

    assert changes == [None, None, None, None, BreakerState.OPEN]
    current = await status(sessions, breaker)
    assert current.state is BreakerState.OPEN
    assert current.opened_at == clock.now()
    assert current.opened_until == clock.now() + timedelta(seconds=60)
    assert (current.consecutive_failures, current.total_failures) == (5, 5)
    assert current.last_error == "503 from remote"


async def test_a_success_in_between_resets_the_count(
    sessions: Sessions, breaker: CircuitBreaker
) -> None:
    await fail(sessions, breaker, times=4)
    assert await succeed(sessions, breaker) is None

    changes = await fail(sessions, breaker, times=4)

    assert changes == [None] * 4
    current = await status(sessions, breaker)
    assert current.state is BreakerState.CLOSED
    assert (current.consecutive_failures, current.total_failures) == (4, 8)
    assert current.total_successes == 1
    assert (await fail(sessions, breaker)) == [BreakerState.OPEN]


async def test_closed_breaker_allows_every_call(
    sessions: Sessions, breaker: CircuitBreaker
) -> None:
    permits = [await acquire(sessions, breaker, f"job-{i}") for i in range(3)]

    assert all(p.kind is PermitKind.ALLOWED and p.is_allowed for p in permits)
    assert not any(p.is_probe for p in permits)
    # Asking creates nothing: a never-used breaker has no row until something is recorded.
    async with unit_of_work(sessions) as session:
        stored = await session.scalar(select(func.count()).select_from(CircuitBreakerState))
    assert stored == 0


async def test_rejection_carries_the_half_open_time(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    opened = clock.now()
    await open_breaker(sessions, breaker)
    clock.advance(30)

    permit = await acquire(sessions, breaker, "job-1")

    assert permit.kind is PermitKind.REJECTED
    assert not permit.is_allowed
    assert permit.state is BreakerState.OPEN
    assert permit.retry_at == opened + timedelta(seconds=60)
    assert permit.changed_to is None


async def test_exactly_one_probe_once_the_open_time_has_passed(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)
    clock.advance(60)

    first = await acquire(sessions, breaker, "job-1")
    second = await acquire(sessions, breaker, "job-2")
    again = await acquire(sessions, breaker, "job-1")

    assert first.kind is PermitKind.PROBE
    assert first.changed_to is BreakerState.HALF_OPEN
    assert second.kind is PermitKind.REJECTED
    assert second.state is BreakerState.HALF_OPEN
    assert second.retry_at == clock.now() + timedelta(seconds=5)
    assert again.kind is PermitKind.PROBE  # the probe's holder may ask again
    assert again.changed_to is None
    current = await status(sessions, breaker)
    assert (current.state, current.probe_owner) == (BreakerState.HALF_OPEN, "job-1")


async def test_three_probe_successes_close_it(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)
    clock.advance(61)
    changes = []

    for owner in ("job-1", "job-2", "job-3"):
        permit = await acquire(sessions, breaker, owner)
        assert permit.is_probe
        changes.append(await succeed(sessions, breaker, owner))

    assert changes == [None, None, BreakerState.CLOSED]
    assert (await acquire(sessions, breaker, "job-4")).kind is PermitKind.ALLOWED
    current = await status(sessions, breaker)
    assert current.state is BreakerState.CLOSED
    assert (current.consecutive_failures, current.probe_successes) == (0, 0)
    assert (current.opened_until, current.probe_owner) == (None, None)
    assert (current.total_failures, current.total_successes) == (5, 3)


async def test_a_probe_success_frees_the_probe_for_the_next_caller(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)
    clock.advance(61)
    await acquire(sessions, breaker, "job-1")

    await succeed(sessions, breaker, "job-1")
    next_probe = await acquire(sessions, breaker, "job-2")

    assert next_probe.is_probe
    current = await status(sessions, breaker)
    assert (current.probe_successes, current.probe_owner) == (1, "job-2")


async def test_a_probe_failure_reopens_it(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)
    clock.advance(61)
    await acquire(sessions, breaker, "job-1")
    await succeed(sessions, breaker, "job-1")
    await acquire(sessions, breaker, "job-2")

    changes = await fail(sessions, breaker, "job-2")
    rejected = await acquire(sessions, breaker, "job-3")

    assert changes == [BreakerState.OPEN]
    assert rejected.kind is PermitKind.REJECTED
    assert rejected.retry_at == clock.now() + timedelta(seconds=60)
    current = await status(sessions, breaker)
    assert (current.state, current.probe_successes, current.probe_owner) == (
        BreakerState.OPEN,
        0,
        None,
    )


async def test_a_stale_probe_is_reclaimable_after_the_probe_timeout(
    sessions: Sessions, clock: FrozenClock
) -> None:
    breaker = CircuitBreaker(clock, BreakerPolicy(probe_timeout_seconds=30))
    await open_breaker(sessions, breaker)
    clock.advance(60)
    await acquire(sessions, breaker, "job-lost")
    clock.advance(29)

    too_early = await acquire(sessions, breaker, "job-2")
    clock.advance(2)
    reclaimed = await acquire(sessions, breaker, "job-2")
    late_report = await succeed(sessions, breaker, "job-lost")

    # Asked before the timeout: told to come back no later than the moment it expires.
    assert too_early.kind is PermitKind.REJECTED
    assert too_early.retry_at == clock.now() - timedelta(seconds=1)
    assert reclaimed.is_probe
    # The lost probe's late report changes nothing: the probe belongs to job-2 now.
    assert late_report is None
    current = await status(sessions, breaker)
    assert (current.probe_owner, current.probe_successes) == ("job-2", 0)


async def test_a_released_probe_is_free_at_once(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)
    clock.advance(61)
    await acquire(sessions, breaker, "job-1")

    async with unit_of_work(sessions) as session:
        await breaker.release(session, NAME, "job-1")
    next_probe = await acquire(sessions, breaker, "job-2")

    assert next_probe.is_probe


async def test_late_failures_while_open_do_not_extend_it(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)
    opened_until = (await status(sessions, breaker)).opened_until
    clock.advance(10)

    changes = await fail(sessions, breaker, "job-started-before", times=2)

    assert changes == [None, None]
    current = await status(sessions, breaker)
    assert current.opened_until == opened_until
    assert current.total_failures == 7


async def test_reset_forces_it_closed(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)

    async with unit_of_work(sessions) as session:
        change = await breaker.reset(session, NAME)
    async with unit_of_work(sessions) as session:
        unchanged = await breaker.reset(session, NAME)
    permit = await acquire(sessions, breaker, "job-1")

    assert (change, unchanged) == (BreakerState.CLOSED, None)
    assert permit.kind is PermitKind.ALLOWED
    current = await status(sessions, breaker)
    assert (current.state, current.consecutive_failures, current.opened_until) == (
        BreakerState.CLOSED,
        0,
        None,
    )
    assert current.total_failures == 5  # history is kept


async def test_reset_of_a_never_used_breaker_changes_nothing(
    sessions: Sessions, breaker: CircuitBreaker
) -> None:
    async with unit_of_work(sessions) as session:
        assert await breaker.reset(session, "never-used") is None


async def test_states_for_the_api(
    sessions: Sessions, breaker: CircuitBreaker, clock: FrozenClock
) -> None:
    await open_breaker(sessions, breaker)
    async with unit_of_work(sessions) as session:
        await breaker.record_failure(session, "another", "job-9", "one failure keeps it closed")

    async with unit_of_work(sessions) as session:
        stored = await breaker.list_states(session)
        chosen = await breaker.list_states(session, ["remote", "unused"])
        unused = await breaker.get_state(session, "unused")

    assert [(s.name, s.state) for s in stored] == [
        ("another", BreakerState.CLOSED),
        ("remote", BreakerState.OPEN),
    ]
    assert stored[1].opened_until == clock.now() + timedelta(seconds=60)
    assert [(s.name, s.state) for s in chosen] == [
        ("remote", BreakerState.OPEN),
        ("unused", BreakerState.CLOSED),
    ]
    assert unused == BreakerStatus("unused")


async def test_each_name_can_have_its_own_policy(sessions: Sessions, clock: FrozenClock) -> None:
    breaker = CircuitBreaker(
        clock, policies={NAME: BreakerPolicy(failure_threshold=2, open_seconds=10)}
    )

    changes = await fail(sessions, breaker, times=2)

    assert changes == [None, BreakerState.OPEN]
    assert (await status(sessions, breaker)).opened_until == clock.now() + timedelta(seconds=10)
    assert breaker.policy_for("other") == BreakerPolicy()


def test_policies_must_make_sense() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError, match="durations"):
        BreakerPolicy(open_seconds=0)
