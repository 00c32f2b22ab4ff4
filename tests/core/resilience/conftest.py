"""Fixtures for the resilience tests: a frozen clock and the limiter and breaker built on it."""

from __future__ import annotations

import pytest

from menusync.core.clock import FrozenClock
from menusync.core.resilience.circuit_breaker import CircuitBreaker
from menusync.core.resilience.rate_limit import RateLimiter


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def limiter(clock: FrozenClock) -> RateLimiter:
    return RateLimiter(clock)


@pytest.fixture
def breaker(clock: FrozenClock) -> CircuitBreaker:
    return CircuitBreaker(clock)
