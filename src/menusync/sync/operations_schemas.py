"""Response bodies of the operations endpoints: health, circuit breakers, rate limits and received
webhooks (CONTRACT.md #12 and section 2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from menusync.core.schemas import ApiModel, Pagination, SuccessFlag

Count = Annotated[int, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100, description="Percent, 0..100, two decimals")]
HealthStatus = Literal["healthy", "degraded", "unhealthy"]
BreakerStateName = Literal["closed", "open", "half_open"]
WebhookOutcome = Literal["applied", "ignored", "unmatched", "rejected", "received"]
"""``sync.models.WEBHOOK_OUTCOMES``, as a type for the API schema."""


# ---- rate limits ---------------------------------------------------------------------------


class Budget(ApiModel):
    count: int = Field(ge=1, description="Calls allowed per period")
    period_seconds: float = Field(gt=0)
    burst: Count = Field(description="Extra calls allowed early after an idle stretch")


class KeyUsageRead(ApiModel):
    """One limiter key. GCRA keeps no history: ``used`` counts the calls already booked in the
    window starting now (under a backlog, the whole budget), ``remaining`` the free ones."""

    budget: Budget
    used: Count
    remaining: Count
    next_free_at: datetime = Field(description="When a call reserved now could run (now if free)")


class RateLimitKey(KeyUsageRead):
    key: str = Field(description="The limiter key, as stored in `rate_limit_state`")
    platform_type: str
    scope: Literal["platform", "operation", "store"] = Field(
        description="`platform`: the whole-platform request budget; `operation`: a platform-wide "
        "limit of some operations; both are shared by every company. `store`: one of the "
        "caller's stores"
    )
    rule: str | None = Field(description="The platform's documented rule; null for the budget")
    operations: list[str] = Field(description="Operations the key limits; empty means every call")
    store_key: str | None = Field(description="The store, for `store` keys")


class RateLimitsResponse(ApiModel):
    success: SuccessFlag = True
    data: list[RateLimitKey] = Field(description="By platform, then key")


# ---- circuit breakers ----------------------------------------------------------------------


class CircuitBreakerRead(ApiModel):
    platform_type: str
    state: BreakerStateName
    consecutive_failures: Count
    probe_successes: Count = Field(description="Probe successes so far while half-open")
    probe_in_progress: bool = Field(description="Half-open and a probe call is out")
    total_failures: Count
    total_successes: Count
    opened_at: datetime | None
    half_open_at: datetime | None = Field(
        description="While open: when the breaker may admit a probe (half-open)"
    )
    last_error: str | None
    last_failure_at: datetime | None
    updated_at: datetime | None
    failure_threshold: int = Field(description="Consecutive failures that open the breaker")
    open_seconds: float = Field(description="How long an opened breaker stays open")
    success_threshold: int = Field(description="Probe successes that close a half-open breaker")


class CircuitBreakersResponse(ApiModel):
    success: SuccessFlag = True
    data: list[CircuitBreakerRead] = Field(description="Every registered platform, by name")


class CircuitBreakerResetResponse(ApiModel):
    success: SuccessFlag = True
    message: str
    changed: bool = Field(description="False when the breaker was already closed")
    previous_state: BreakerStateName
    data: CircuitBreakerRead


# ---- health --------------------------------------------------------------------------------


class PlatformHealth(ApiModel):
    total: Count = Field(description="The company's syncs to this platform created in 24 h")
    successful: Count = Field(description="Of those, completed")
    failed: Count = Field(description="Of those, failed")
    success_rate: Percent | None = Field(
        description="successful / (successful + failed); null when none finished"
    )
    status: HealthStatus
    circuit_state: BreakerStateName
    rate_limit: KeyUsageRead = Field(
        description="The whole-platform request budget (shared by every company)"
    )


class ScoreComponents(ApiModel):
    success_rate: Percent = Field(description="S: 24 h success rate, 100 when none finished")
    breakers: Percent = Field(
        description="B: mean breaker score (closed 100, half-open 50, open 0)"
    )
    backlog: Percent = Field(description="Q: 100 up to 60 s of lag, 0 from 10 min")


class Backlog(ApiModel):
    due_syncs: Count = Field(description="Pending or scheduled-retry syncs whose time has come")
    oldest_due_seconds: float = Field(ge=0, description="How long the oldest due sync has waited")


class HealthData(ApiModel):
    status: HealthStatus
    health_score: int = Field(ge=0, le=100)
    active_syncs: Count = Field(description="The company's syncs not finished yet")
    failed_syncs_last24h: Count = Field(
        alias="failedSyncsLast24h", description="Failed syncs created in the last 24 h"
    )
    recent_sync_count: Count = Field(description="Syncs created in the last 24 h")
    avg_response_time: int = Field(
        ge=0, description="Mean latency of the platform API calls of the last 24 h, ms"
    )
    platform_status: dict[str, PlatformHealth] = Field(
        description="Every registered platform, with or without syncs"
    )
    score_components: ScoreComponents
    backlog: Backlog
    window_start: datetime = Field(description="Start of the 24 h window")
    checked_at: datetime


class HealthResponse(ApiModel):
    success: SuccessFlag = True
    data: HealthData


# ---- webhooks ------------------------------------------------------------------------------


class WebhookEventRead(ApiModel):
    id: uuid.UUID
    platform_type: str
    event_id: str = Field(description="The platform's event id (`rejected:<uuid>` for forgeries)")
    event_type: str | None
    external_id: str | None = Field(description="The platform's reference of the push")
    sync_id: uuid.UUID | None
    signature_valid: bool
    outcome: WebhookOutcome
    error: str | None
    received_at: datetime
    processed_at: datetime | None
    headers: dict[str, Any] = Field(description="As received; credentials masked")
    body: str = Field(description="The platform's payload as received, cut at `bodyLimit`")
    body_size: Count = Field(description="Characters of the whole body")
    body_truncated: bool


class WebhookEventsResponse(ApiModel):
    success: SuccessFlag = True
    data: list[WebhookEventRead] = Field(description="Newest first")
    pagination: Pagination
    body_limit: int = Field(description="Characters of each body returned at most")
