"""Retry policy as plain data, and the backoff it implies.

Exponential backoff with *full jitter* (AWS architecture blog, "Exponential Backoff And Jitter"):
the n-th retry waits a uniformly random time in ``[0, min(max_delay, base * multiplier**(n-1))]``,
and never less than a ``Retry-After`` the platform sent. Attempts are counted on the job row, so a
restart loses no retry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    """Retries after the first attempt; a job runs at most ``max_retries + 1`` times."""
    base_delay: float = 5.0
    max_delay: float = 300.0
    multiplier: float = 2.0

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    def ceiling(self, retry_number: int) -> float:
        """The largest wait before retry ``retry_number`` (1 = first retry)."""
        exponent = max(0, retry_number - 1)
        return float(min(self.max_delay, self.base_delay * self.multiplier**exponent))

    def backoff(
        self,
        retry_number: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait before retry ``retry_number``: full jitter, floored by ``retry_after``."""
        delay = (rng or random).uniform(0, self.ceiling(retry_number))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
