"""RetryPolicy: exponential ceilings, full jitter inside them, and the Retry-After floor."""

from __future__ import annotations

import random

import pytest

from menusync.core.resilience.retry import RetryPolicy


def test_ceilings_grow_exponentially_up_to_the_max_delay() -> None:
    policy = RetryPolicy(max_retries=6, base_delay=3.0, max_delay=180.0, multiplier=2.5)

    ceilings = [policy.ceiling(n) for n in range(1, 7)]

    assert ceilings == [3.0, 7.5, 18.75, 46.875, 117.1875, 180.0]


def test_retry_number_below_one_uses_the_base_delay() -> None:
    assert RetryPolicy(base_delay=4.0).ceiling(0) == 4.0


def test_max_attempts_counts_the_first_try() -> None:
    assert RetryPolicy(max_retries=4).max_attempts == 5


@pytest.mark.parametrize("retry_number", [1, 2, 3, 4, 8])
def test_full_jitter_stays_within_zero_and_the_ceiling(retry_number: int) -> None:
    policy = RetryPolicy(base_delay=5.0, max_delay=300.0, multiplier=2.0)
    rng = random.Random(1234)

    delays = [policy.backoff(retry_number, rng=rng) for _ in range(2000)]

    ceiling = policy.ceiling(retry_number)
    assert all(0.0 <= delay <= ceiling for delay in delays)
    # Full jitter spreads over the whole range, not just near the ceiling.
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling


def test_same_seed_gives_the_same_schedule() -> None:
    policy = RetryPolicy()

    first = [policy.backoff(n, rng=random.Random(7)) for n in range(1, 4)]
    second = [policy.backoff(n, rng=random.Random(7)) for n in range(1, 4)]

    assert first == second


def test_never_sooner_than_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    rng = random.Random(99)

    delays = [policy.backoff(1, retry_after=30.0, rng=rng) for _ in range(200)]

    assert all(delay == 30.0 for delay in delays)


def test_retry_after_below_the_jitter_is_only_a_floor() -> None:
    policy = RetryPolicy(base_delay=100.0, max_delay=100.0)
    rng = random.Random(5)

    delays = [policy.backoff(1, retry_after=20.0, rng=rng) for _ in range(500)]

    assert all(20.0 <= delay <= 100.0 for delay in delays)
    assert any(delay > 20.0 for delay in delays)
    assert any(delay == 20.0 for delay in delays)
