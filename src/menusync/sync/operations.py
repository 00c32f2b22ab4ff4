"""The operator's views of the engine: health, circuit breakers, rate limits, received webhooks and
the history export. Read-only except :meth:`OperationsService.reset_breaker`; never commits.

**Health score** (0..100, whole number, of the caller's company; breakers are global)::

    healthScore = round((6 * S + 3 * B + 1 * Q) / 10)

* ``S``: the success rate of the company's syncs created in the last 24 hours that finished,
  ``completed / (completed + failed)`` in percent (running and cancelled syncs are neither);
  100 when none finished (no evidence of failure).
* ``B``: the mean over every registered platform of its breaker: closed 100, half-open 50,
  open 0 (100 when no platform is registered).
* ``Q``: the queue backlog: how long the company's oldest *due* sync (pending or scheduled for a
  retry, its time come) has waited. 100 up to 60 s, falling linearly to 0 at 10 minutes.

``status`` is ``unhealthy`` when the score is below 50 or every breaker is open, ``degraded`` when
the score is below 80 or some breaker is not closed, ``healthy`` otherwise. A platform's own
status is ``unhealthy`` when its breaker is open or its 24-hour success rate is below 50,
``degraded`` when its breaker is half-open or its success rate is below 80, else ``healthy`` (a
platform without finished syncs is judged by its breaker alone).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.core.clock import Clock
from menusync.core.resilience.circuit_breaker import BreakerState, BreakerStatus, CircuitBreaker
from menusync.core.resilience.rate_limit import KeyUsage, Limit, RateLimiter
from menusync.core.resources import Resources
from menusync.platforms.registry import AdapterRegistry
from menusync.platforms.repository import ConnectionRepository
from menusync.platforms.runtime import PlatformRuntime
from menusync.realtime.events import EventType
from menusync.realtime.outbox import EventWriter
from menusync.sync.operations_repository import (
    EXPORT_COLUMNS,
    OperationsRepository,
    OutcomeCounts,
    WebhookFilter,
)
from menusync.sync.operations_schemas import (
    Backlog,
    Budget,
    CircuitBreakerRead,
    HealthData,
    HealthStatus,
    KeyUsageRead,
    PlatformHealth,
    RateLimitKey,
    ScoreComponents,
    WebhookEventRead,
)
from menusync.sync.policy import EnginePolicies, PlatformPolicy
from menusync.sync.repository import HistoryFilter
from menusync.sync.webhooks import masked_headers
from menusync.tenancy.audit import AuditTrail
from menusync.tenancy.context import AuthContext

HEALTH_WINDOW = timedelta(hours=24)
BREAKER_SCORES = {BreakerState.CLOSED: 100.0, BreakerState.HALF_OPEN: 50.0, BreakerState.OPEN: 0.0}
BACKLOG_GRACE_SECONDS = 60.0
"""A due sync may wait this long before the backlog lowers the score."""
BACKLOG_LIMIT_SECONDS = 600.0
"""A due sync waiting this long makes the backlog score 0."""
HEALTHY_FROM = 80
DEGRADED_FROM = 50
WEBHOOK_BODY_LIMIT = 16 * 1024
"""Characters of a webhook body returned by the API (bodies are stored up to 1 MiB)."""
CSV_CHUNK_ROWS = 200
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# ---- health arithmetic (pure) --------------------------------------------------------------


def percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def success_rate(counts: OutcomeCounts) -> float | None:
    finished = counts.completed + counts.failed
    return percent(counts.completed, finished) if finished else None


def backlog_score(lag_seconds: float) -> float:
    """``Q``: 100 up to the grace period, then linearly down to 0 at the limit."""
    if lag_seconds <= BACKLOG_GRACE_SECONDS:
        return 100.0
    if lag_seconds >= BACKLOG_LIMIT_SECONDS:
        return 0.0
    span = BACKLOG_LIMIT_SECONDS - BACKLOG_GRACE_SECONDS
    return round(100 * (BACKLOG_LIMIT_SECONDS - lag_seconds) / span, 2)


def breaker_score(states: Iterable[BreakerState]) -> float:
    """``B``: the mean breaker score of the platforms."""
    scores = [BREAKER_SCORES[state] for state in states]
    return round(sum(scores) / len(scores), 2) if scores else 100.0


def health_score(success: float, breakers: float, backlog: float) -> int:
    """``round((6 S + 3 B + Q) / 10)``, halves rounded up."""
    return int((6 * success + 3 * breakers + backlog) / 10 + 0.5)


def overall_status(score: int, states: Sequence[BreakerState]) -> HealthStatus:
    if score < DEGRADED_FROM or (states and all(s is BreakerState.OPEN for s in states)):
        return "unhealthy"
    if score < HEALTHY_FROM or any(s is not BreakerState.CLOSED for s in states):
        return "degraded"
    return "healthy"


def platform_status(rate: float | None, state: BreakerState) -> HealthStatus:
    if state is BreakerState.OPEN or (rate is not None and rate < DEGRADED_FROM):
        return "unhealthy"
    if state is BreakerState.HALF_OPEN or (rate is not None and rate < HEALTHY_FROM):
        return "degraded"
    return "healthy"


# ---- limiter keys --------------------------------------------------------------------------


@dataclass(frozen=True)
class LimiterKey:
    key: str
    platform: str
    limit: Limit
    scope: str
    rule: str | None
    operations: tuple[str, ...]
    store_key: str | None


def limiter_keys(policy: PlatformPolicy, store_keys: Iterable[str]) -> list[LimiterKey]:
    """Every key the runner reserves for ``policy``'s platform on behalf of these stores: the
    whole-platform budget, the platform-wide rules, and each per-store rule once per store.

    Keys are named as :meth:`PlatformPolicy.limits_for` names them.
    """
    stores = sorted(set(store_keys))
    keys = [LimiterKey(policy.platform, policy.platform, policy.budget, "platform", None, (), None)]
    for name, operations, limit, per_store in policy.rules:
        ops = tuple(sorted(operations))
        if not per_store:
            key = policy.rule_key(name, None)
            keys.append(LimiterKey(key, policy.platform, limit, "operation", name, ops, None))
            continue
        for store in stores:
            key = policy.rule_key(name, store)
            keys.append(LimiterKey(key, policy.platform, limit, "store", name, ops, store))
    return keys


def usage_read(usage: KeyUsage) -> KeyUsageRead:
    return KeyUsageRead(
        budget=Budget(
            count=usage.limit.count,
            period_seconds=usage.limit.period_seconds,
            burst=usage.limit.burst,
        ),
        used=usage.used,
        remaining=usage.remaining,
        next_free_at=usage.next_free_at,
    )


# ---- the service ---------------------------------------------------------------------------


class OperationsService:
    def __init__(
        self,
        *,
        session: AsyncSession,
        repository: OperationsRepository,
        connections: ConnectionRepository,
        registry: AdapterRegistry,
        policies: EnginePolicies,
        breaker: CircuitBreaker,
        limiter: RateLimiter,
        audit: AuditTrail,
        events: EventWriter,
        clock: Clock,
    ) -> None:
        self.session = session
        self.repository = repository
        self.connections = connections
        self.registry = registry
        self.policies = policies
        self.breaker = breaker
        self.limiter = limiter
        self.audit = audit
        self.events = events
        self.clock = clock

    async def check_health(self, auth: AuthContext) -> HealthData:
        """The company's last 24 hours, the breakers and the platforms' budgets, scored (see the
        module docstring)."""
        now = self.clock.now()
        since = now - HEALTH_WINDOW
        platforms = self.policies.platforms
        counts = await self.repository.count_outcomes_since(auth.company_id, since)
        states = {
            status.name: status.state
            for status in await self.breaker.list_states(self.session, platforms)
        }
        usages = {
            usage.key: usage
            for usage in await self.limiter.describe(
                self.session, {platform: self.policies[platform].budget for platform in platforms}
            )
        }
        backlog = await self.repository.due_backlog(auth.company_id, now)
        latency = await self.repository.average_call_latency(auth.company_id, since)
        active = await self.repository.count_active(auth.company_id)

        overall = OutcomeCounts(
            total=sum(c.total for c in counts.values()),
            completed=sum(c.completed for c in counts.values()),
            failed=sum(c.failed for c in counts.values()),
        )
        overall_rate = success_rate(overall)
        lag = (
            max(0.0, (now - backlog.oldest_due_at).total_seconds())
            if backlog.oldest_due_at is not None
            else 0.0
        )
        components = ScoreComponents(
            success_rate=100.0 if overall_rate is None else overall_rate,
            breakers=breaker_score(states.values()),
            backlog=backlog_score(lag),
        )
        score = health_score(components.success_rate, components.breakers, components.backlog)
        platform_status_map = {}
        for platform in platforms:
            platform_counts = counts.get(platform, OutcomeCounts())
            rate = success_rate(platform_counts)
            platform_status_map[platform] = PlatformHealth(
                total=platform_counts.total,
                successful=platform_counts.completed,
                failed=platform_counts.failed,
                success_rate=rate,
                status=platform_status(rate, states[platform]),
                circuit_state=states[platform].value,
                rate_limit=usage_read(usages[platform]),
            )
        return HealthData(
            status=overall_status(score, list(states.values())),
            health_score=score,
            active_syncs=active,
            failed_syncs_last24h=overall.failed,
            recent_sync_count=overall.total,
            avg_response_time=0 if latency is None else int(latency + 0.5),
            platform_status=platform_status_map,
            score_components=components,
            backlog=Backlog(due_syncs=backlog.due, oldest_due_seconds=round(lag, 3)),
            window_start=since,
            checked_at=now,
        )

    async def list_breakers(self) -> list[CircuitBreakerRead]:
        """Every registered platform's breaker (global, not per company), by name."""
        statuses = await self.breaker.list_states(self.session, self.policies.platforms)
        return [self._breaker_read(status) for status in statuses]

    async def reset_breaker(
        self, auth: AuthContext, platform: str
    ) -> tuple[BreakerState, bool, CircuitBreakerRead]:
        """Force ``platform``'s breaker closed (audited; a ``circuit-breaker-changed`` event to
        the caller's company when it was not closed). Returns (previous state, changed, now)."""
        self.registry.get(platform)  # unknown platform: 404
        before = await self.breaker.get_state(self.session, platform)
        changed = await self.breaker.reset(self.session, platform)
        self.audit.record(
            auth,
            "circuit_breaker.reset",
            "circuit_breaker",
            platform,
            previousState=before.state.value,
            changed=changed is not None,
        )
        if changed is not None:
            await self.events.emit(
                auth.company_id,
                EventType.CIRCUIT_BREAKER_CHANGED,
                {"platformType": platform, "state": changed.value},
            )
        after = await self.breaker.get_state(self.session, platform)
        return before.state, changed is not None, self._breaker_read(after)

    async def list_rate_limits(self, auth: AuthContext) -> list[RateLimitKey]:
        """Every limiter key of every registered platform: the shared platform-wide keys and the
        per-store keys of the caller's stores (from its connections)."""
        stores: dict[str, list[str]] = defaultdict(list)
        for connection in await self.connections.list_for_company(auth.company_id):
            stores[connection.platform].append(connection.store_key)
        keys = [
            key
            for platform in self.policies.platforms
            for key in limiter_keys(self.policies[platform], stores.get(platform, ()))
        ]
        usages = {
            usage.key: usage
            for usage in await self.limiter.describe(
                self.session, {key.key: key.limit for key in keys}
            )
        }
        return [
            RateLimitKey(
                key=key.key,
                platform_type=key.platform,
                scope=key.scope,
                rule=key.rule,
                operations=list(key.operations),
                store_key=key.store_key,
                **usage_read(usages[key.key]).model_dump(),
            )
            for key in sorted(keys, key=lambda k: (k.platform, k.key))
        ]

    async def list_webhook_events(
        self, auth: AuthContext, filters: WebhookFilter, *, offset: int, limit: int
    ) -> tuple[list[WebhookEventRead], int]:
        """Webhooks matched to the company's syncs, newest first, credentials masked, bodies cut
        to :data:`WEBHOOK_BODY_LIMIT` characters."""
        rows, total = await self.repository.list_webhook_events(
            auth.company_id, filters, offset=offset, limit=limit, body_limit=WEBHOOK_BODY_LIMIT
        )
        return [
            WebhookEventRead(
                id=row.event.id,
                platform_type=row.event.platform,
                event_id=row.event.event_id,
                event_type=row.event.event_type,
                external_id=row.event.external_ref,
                sync_id=row.event.sync_id,
                signature_valid=row.event.signature_valid,
                outcome=row.event.outcome,
                error=row.event.error,
                received_at=row.event.received_at,
                processed_at=row.event.processed_at,
                headers=masked_headers(row.event.headers or {}),
                body=row.body,
                body_size=row.body_size,
                body_truncated=row.body_size > len(row.body),
            )
            for row in rows
        ], total

    def _breaker_read(self, status: BreakerStatus) -> CircuitBreakerRead:
        policy = self.breaker.policy_for(status.name)
        return CircuitBreakerRead(
            platform_type=status.name,
            state=status.state.value,
            consecutive_failures=status.consecutive_failures,
            probe_successes=status.probe_successes,
            probe_in_progress=status.state is BreakerState.HALF_OPEN
            and status.probe_owner is not None,
            total_failures=status.total_failures,
            total_successes=status.total_successes,
            opened_at=status.opened_at,
            half_open_at=status.opened_until if status.state is BreakerState.OPEN else None,
            last_error=status.last_error,
            last_failure_at=status.last_failure_at,
            updated_at=status.updated_at,
            failure_threshold=policy.failure_threshold,
            open_seconds=policy.open_seconds,
            success_threshold=policy.success_threshold,
        )


def build_operations_service(
    session: AsyncSession, resources: Resources, runtime: PlatformRuntime, policies: EnginePolicies
) -> OperationsService:
    return OperationsService(
        session=session,
        repository=OperationsRepository(session),
        connections=ConnectionRepository(session),
        registry=runtime.registry,
        policies=policies,
        breaker=CircuitBreaker(resources.clock, policies.breaker),
        limiter=RateLimiter(resources.clock),
        audit=AuditTrail(session, resources.clock),
        events=EventWriter(session, resources.clock),
        clock=resources.clock,
    )


# ---- the history export --------------------------------------------------------------------


def csv_cell(value: object) -> str:
    """One CSV cell: ISO 8601 times, ``true``/``false``, empty for null. Free text that a
    spreadsheet would run as a formula is prefixed with ``'`` (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float | uuid.UUID):
        return str(value)
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_PREFIXES) else text


def _csv_row(row: Any) -> list[str]:
    values = dict(zip(EXPORT_COLUMNS, row, strict=True))
    # As in ``SyncStatus``: a retry time only while one is scheduled, a verdict only with an error.
    if values["status"] != "scheduled_retry":
        values["nextRetryAt"] = None
    if not values["errorCode"]:
        values["errorRetryable"] = None
    return [csv_cell(value) for value in values.values()]


async def history_csv(
    sessions: async_sessionmaker[AsyncSession],
    company_id: str,
    filters: HistoryFilter,
    *,
    sort_by: str,
    descending: bool,
) -> AsyncIterator[str]:
    """The company's filtered history as CSV text, a header row first, in chunks of
    :data:`CSV_CHUNK_ROWS` rows, read through a cursor in its own read-only transaction (deferred
    on SQLite, so a long export never holds the write lock)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    async with sessions() as session:
        await session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        rows = 0
        async for row in OperationsRepository(session).stream_history(
            company_id, filters, sort_by=sort_by, descending=descending
        ):
            writer.writerow(_csv_row(row))
            rows += 1
            if rows % CSV_CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
