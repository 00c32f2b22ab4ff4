"""Settings of the platform simulators, and the clock they read time from.

The defaults are realistic (a catalog takes about two seconds to process, webhooks are redelivered
on each platform's own schedule), so a demo behaves like production. Tests and benchmarks compress
them with :meth:`SandboxSettings.fast`, which zeroes every delay while keeping every rule.

Time comes from one injected :class:`Clock`. Everything that depends on the wall clock (token
expiry, rate-limit windows, Deliveroo's morning stock reset, Careem's timed pauses, Delivery Hero's
``CLOSED_UNTIL``) reads ``settings.clock.now()``, so a test moves time with :class:`ManualClock`
instead of sleeping. Only the *delays* (processing, webhook redelivery) are real ``asyncio.sleep``
calls, which is why they are configurable down to zero.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SkipValidation


@runtime_checkable
class Clock(Protocol):
    """Source of the current time; always timezone-aware UTC."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, and ``POST /__sandbox/clock``)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` and return the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, at: datetime) -> None:
        """Jump to ``at`` (aware)."""
        if at.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._now = at.astimezone(UTC)


# Redelivery schedules (seconds to wait before each retry). The platforms publish the envelope,
# not the exact intervals, so the intervals are ours; the number of attempts and the total span
# follow PLATFORMS.md section 6:
# - Deliveroo: retries "for up to 30 minutes" -> 7 retries, about 29 minutes in total;
# - Delivery Hero: up to 10 retries, exponential from about 35 s growing to 240 s;
# - Careem: up to 4 retries (5 attempts in total), then the event is lost.
DELIVEROO_RETRY_DELAYS: tuple[float, ...] = (10, 30, 60, 120, 300, 600, 600)
TALABAT_RETRY_DELAYS: tuple[float, ...] = (35, 50, 70, 100, 140, 200, 240, 240, 240, 240)
CAREEM_RETRY_DELAYS: tuple[float, ...] = (30, 60, 120, 240)


class SandboxSettings(BaseModel):
    """Knobs of the three simulators. Plain pydantic model: build it in code or from a CLI."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    strict: bool = Field(
        default=False,
        description=(
            "Require stores (sites, vendors, branches) and credentials to be registered through "
            "the control API first, start Careem branches UNMAPPED, and enforce the rules we only "
            "inferred from integrations."
        ),
    )
    seed: int = Field(default=0, description="Seed of the fault-injection random generator.")
    processing_delay_seconds: float = Field(default=2.0, ge=0)
    timeout_hang_seconds: float = Field(
        default=60.0, ge=0, description="How long a request hit by a timeout fault is held."
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "client id (or DH username) -> secret (or password). Empty: any non-empty pair "
            "gets a token, as a test mode should."
        ),
    )

    # Deliveroo
    deliveroo_webhook_url: str | None = None
    deliveroo_webhook_secret: str = "sandbox-deliveroo-webhook-secret"
    deliveroo_webhook_retry_delays: list[float] = Field(
        default_factory=lambda: list(DELIVEROO_RETRY_DELAYS)
    )
    deliveroo_market: str = Field(
        default="AE", description="Market of brands created on first use (tax rates, languages)."
    )
    deliveroo_stock_reset_at: time = Field(
        default=time(2, 0),
        description="UTC time of the daily morning stock reset (06:00 in Dubai).",
    )

    # Delivery Hero middleware (Talabat)
    talabat_plugin_secret: str = "sandbox-dh-plugin-secret-" + "0" * 48
    talabat_callback_retry_delays: list[float] = Field(
        default_factory=lambda: list(TALABAT_RETRY_DELAYS)
    )
    talabat_global_entities: list[str] = Field(
        default_factory=lambda: ["TB_AE"],
        description="Platforms each POS vendor is published to (one `details` row each).",
    )
    talabat_rules: Literal["talabat", "pandora"] = "talabat"
    talabat_requests_per_minute: int | None = Field(
        default=None, description="Global request budget; none is published, so off by default."
    )

    # Careem
    careem_webhook_url: str | None = None
    careem_webhook_api_key: str = "sandbox-careem-api-key"
    careem_webhook_retry_delays: list[float] = Field(
        default_factory=lambda: list(CAREEM_RETRY_DELAYS)
    )
    careem_read_lag_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Seconds before a completed catalog shows on the store (real: about 300).",
    )

    clock: SkipValidation[Clock] = Field(default_factory=SystemClock, exclude=True)

    @classmethod
    def fast(cls, **overrides: object) -> SandboxSettings:
        """Settings with every delay compressed to zero (tests, benchmarks, demos)."""
        values: dict[str, object] = {
            "processing_delay_seconds": 0.0,
            "deliveroo_webhook_retry_delays": [0.0] * len(DELIVEROO_RETRY_DELAYS),
            "talabat_callback_retry_delays": [0.0] * len(TALABAT_RETRY_DELAYS),
            "careem_webhook_retry_delays": [0.0] * len(CAREEM_RETRY_DELAYS),
        }
        values.update(overrides)
        return cls.model_validate(values)
