"""Tables behind the rate limiter and the circuit breaker: state every process shares."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from menusync.core.models import Base


class RateLimitState(Base):
    """GCRA state of one limiter key: the theoretical arrival time of the next request."""

    __tablename__ = "rate_limit_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[float] = mapped_column(Float)
    """Theoretical arrival time, seconds since the epoch."""
    updated_at: Mapped[datetime]


class CircuitBreakerState(Base):
    """One circuit breaker (one per platform): its state and counters."""

    __tablename__ = "circuit_breakers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    probe_successes: Mapped[int] = mapped_column(Integer, default=0)
    total_failures: Mapped[int] = mapped_column(Integer, default=0)
    total_successes: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None]
    opened_until: Mapped[datetime | None]
    probe_owner: Mapped[str | None] = mapped_column(String(128))
    probe_started_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
