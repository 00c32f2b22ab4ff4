"""Machinery shared by the three simulators: faults, rate windows, tokens, call log, webhooks.

A simulator (:class:`Simulator`) is the state of one fake platform. Its FastAPI app keeps it in
``app.state.simulator``; the platform routes, the control API (:mod:`menusync.sandbox.control`) and
the ASGI middleware (:class:`SandboxMiddleware`) all work on it.

- The middleware records every platform call (not the control API), counts responses by status,
  and applies the injected faults *before* the platform code runs: an outage, latency, a timeout
  (the request is held, then answered 504), a random error status, and the optional global request
  budget (``requestsPerMinute``). Errors are rendered in the platform's own envelope.
- Rate windows are sliding logs on the injected clock, so "1 per minute" means exactly one accepted
  call in any 60-second window, and a test moves the clock instead of sleeping.
- Webhooks and callbacks leave through :meth:`Simulator.deliver`: a background task owned by the
  simulator that applies the webhook faults (drop, duplicate with the same event id, delay, bad
  signature) and retries on the platform's schedule. Tasks are cancelled and awaited by
  :meth:`Simulator.aclose`, which the app lifespan calls.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

import httpx2
import jwt
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from menusync.sandbox.settings import SandboxSettings

CONTROL_PREFIX = "/__sandbox"
logger = logging.getLogger("menusync.sandbox")


def iso(at: datetime) -> str:
    """ISO 8601 in Zulu form, the way the platforms print instants."""
    return at.isoformat().replace("+00:00", "Z")


class SandboxError(Exception):
    """An error the platform answers; each simulator renders it in its own envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []


class CamelModel(BaseModel):
    """Control-API bodies are camelCase, like the rest of menusync's JSON."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class WebhookFaults(CamelModel):
    drop: float = Field(default=0.0, ge=0, le=1)
    duplicate: float = Field(default=0.0, ge=0, le=1)
    delay_ms: int = Field(default=0, ge=0)
    bad_signature: float = Field(default=0.0, ge=0, le=1)


class Faults(CamelModel):
    """``PUT /__sandbox/faults`` body. Rates are probabilities (``true`` counts as 1)."""

    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_statuses: list[int] = Field(default_factory=lambda: [500, 502, 503])
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    latency_ms: int = Field(default=0, ge=0)
    outage_seconds: float = Field(default=0.0, ge=0)
    webhook: WebhookFaults = Field(default_factory=WebhookFaults)
    async_fail_rate: float = Field(default=0.0, ge=0, le=1)


class Limits(CamelModel):
    """``PUT /__sandbox/limits`` body: every budget, ``null`` meaning unlimited.

    A PUT *replaces* the whole set (a budget left out is off), so ``{"requestsPerMinute": 600}``
    turns every documented limit into a single global budget; ``DELETE`` restores the documented
    ones. ``stores`` overrides store-scoped budgets for single stores:
    ``{"stores": {"site-1": {"menuUploadsPerMinute": 5}}}``.
    """

    requests_per_minute: int | None = Field(default=None, ge=1)
    stores: dict[str, dict[str, int | None]] = Field(default_factory=dict)

    @classmethod
    def off(cls) -> Limits:
        """Every budget unlimited (what a PUT starts from)."""
        return cls.model_validate(dict.fromkeys(cls.budget_names()))

    @classmethod
    def budget_names(cls) -> list[str]:
        return [name for name in cls.model_fields if name != "stores"]

    def budget(self, name: str, store_id: str | None = None) -> int | None:
        """The budget ``name`` (snake_case field), overridden for ``store_id`` if set."""
        if store_id is not None and store_id in self.stores:
            override = self.stores[store_id]
            alias = to_camel(name)
            if alias in override:
                return override[alias]
        value = getattr(self, name)
        return value if isinstance(value, int) else None


class SlidingWindow:
    """Sliding-log rate windows keyed by scope, on the simulator's clock."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[datetime]] = {}

    def allow(
        self,
        key: str,
        budget: int | None,
        window: timedelta,
        now: datetime,
        *,
        record: bool = True,
    ) -> bool:
        """Allow (and record) a hit if fewer than ``budget`` hits fall in the last ``window``."""
        if budget is None:
            return True
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= budget:
            return False
        if record:
            hits.append(now)
        return True

    def clear(self) -> None:
        self._hits.clear()


@dataclass
class CallRecord:
    method: str
    path: str
    query: str
    status: int
    at: datetime
    duration_ms: float

    def as_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "at": iso(self.at),
            "durationMs": round(self.duration_ms, 3),
        }


@dataclass
class Stats:
    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)
    webhooks_sent: int = 0
    webhooks_delivered: int = 0
    webhooks_failed: int = 0
    webhooks_dropped: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "webhooks": {
                "sent": self.webhooks_sent,
                "delivered": self.webhooks_delivered,
                "failed": self.webhooks_failed,
                "dropped": self.webhooks_dropped,
            },
        }


@dataclass
class Delivery:
    """One webhook/callback event: the same ``event_id`` on every attempt and duplicate."""

    url: str
    event_id: str
    body: bytes
    sign: Callable[[bytes, bool], dict[str, str]]
    """Build the headers for one attempt; the flag asks for a deliberately bad signature."""
    retry_delays: list[float]
    is_retryable: Callable[[int], bool]
    kind: str = "webhook"


@dataclass
class WebhookAttempt:
    kind: str
    url: str
    event_id: str
    attempt: int
    status: int | None
    error: str | None
    at: datetime
    body: str

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "url": self.url,
            "eventId": self.event_id,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "at": iso(self.at),
            "body": self.body,
        }


class TokenIssuer:
    """Bearer tokens with the platform's lifetime, checked against the injected clock."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer
        self._key = secrets.token_hex(32)
        self._expiry: dict[str, datetime] = {}
        self._subject: dict[str, str] = {}

    def issue(self, subject: str, lifetime: timedelta, now: datetime, **claims: object) -> str:
        payload: dict[str, object] = {
            "iss": self._issuer,
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "jti": secrets.token_hex(8),
            **claims,
        }
        token = jwt.encode(payload, self._key, algorithm="HS256")
        self._expiry[token] = now + lifetime
        self._subject[token] = subject
        return token

    def subject(self, token: str) -> str | None:
        return self._subject.get(token)

    def is_valid(self, token: str, now: datetime) -> bool:
        expires_at = self._expiry.get(token)
        return expires_at is not None and now < expires_at

    def revoke_all(self) -> None:
        self._expiry.clear()
        self._subject.clear()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def credentials_ok(settings: SandboxSettings, client_id: str | None, secret: str | None) -> bool:
    """Any non-empty pair, or exactly a configured one when ``settings.credentials`` is set."""
    if not client_id or not secret:
        return False
    if settings.credentials:
        expected = settings.credentials.get(client_id)
        return expected is not None and hmac.compare_digest(expected, secret)
    return True


class Simulator:
    """State and background work of one fake platform. Subclasses add the platform's stores."""

    platform: ClassVar[str] = ""
    limits_type: ClassVar[type[Limits]] = Limits

    def __init__(
        self, settings: SandboxSettings, http_client: httpx2.AsyncClient | None = None
    ) -> None:
        self.settings = settings
        self.clock = settings.clock
        self._given_client = http_client
        self._own_client: httpx2.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls: deque[CallRecord] = deque(maxlen=10_000)
        self.webhook_log: deque[WebhookAttempt] = deque(maxlen=10_000)
        self.stats = Stats()
        self.faults = Faults()
        self.outage_until: datetime | None = None
        self.rng = random.Random(settings.seed)
        self.windows = SlidingWindow()
        self.tokens = TokenIssuer(self.platform)
        self.limits = self.documented_limits()

    # ----- lifecycle -------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def reset(self) -> None:
        """Forget everything: stores, tokens, calls, faults, limits, rate windows."""
        for task in self._tasks:
            task.cancel()
        self.calls.clear()
        self.webhook_log.clear()
        self.stats = Stats()
        self.faults = Faults()
        self.outage_until = None
        self.rng = random.Random(self.settings.seed)
        self.windows.clear()
        self.tokens = TokenIssuer(self.platform)
        self.limits = self.documented_limits()
        self.reset_platform()

    def reset_platform(self) -> None:
        """Clear the platform's own state (stores, jobs, limits)."""
        raise NotImplementedError

    def spawn(self, work: Coroutine[object, object, None]) -> None:
        """Run ``work`` in the background, owned by this simulator."""
        task = asyncio.get_running_loop().create_task(self._guarded(work))
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            work.close()  # a task cancelled before it started never awaited ``work``

        task.add_done_callback(finished)

    async def _guarded(self, work: Coroutine[object, object, None]) -> None:
        try:
            await work
        except Exception:
            logger.exception("%s sandbox: background work failed", self.platform)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until no background work is left; ``False`` if ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(list(self._tasks), timeout=remaining)
        return True

    async def aclose(self) -> None:
        """Cancel the background work and close the HTTP client this simulator opened."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None

    def http_client(self) -> httpx2.AsyncClient:
        if self._given_client is not None:
            return self._given_client
        if self._own_client is None:
            self._own_client = httpx2.AsyncClient(timeout=self.settings.webhook_timeout_seconds)
        return self._own_client

    def roll(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    # ----- rendering -------------------------------------------------------------------------

    def render_error(self, error: SandboxError, path: str) -> JSONResponse:
        """Render ``error`` in this platform's envelope (``path`` is relative to the prefix)."""
        raise NotImplementedError

    def error_code_for(self, status: int) -> str:
        """The platform's code for an injected error status."""
        raise NotImplementedError

    def documented_limits(self) -> Limits:
        """The platform's published budgets (what ``DELETE /__sandbox/limits`` restores)."""
        return self.limits_type()

    def within_budget(
        self, name: str, window: timedelta, *, store_id: str | None = None, key: str = ""
    ) -> bool:
        """Take one slot of budget ``name`` for ``store_id`` (scoped further by ``key``)."""
        return self.within_budgets([(name, window, store_id, key)])

    def within_budgets(self, budgets: list[tuple[str, timedelta, str | None, str]]) -> bool:
        """Take one slot of each budget, or none of them if any is exhausted."""
        now = self.now()
        checks = [
            (f"{name}:{store_id}:{key}", self.limits.budget(name, store_id), window)
            for name, window, store_id, key in budgets
        ]
        if not all(
            self.windows.allow(k, budget, window, now, record=False) for k, budget, window in checks
        ):
            return False
        for k, budget, window in checks:
            self.windows.allow(k, budget, window, now)
        return True

    def store_ids(self) -> list[str]:
        raise NotImplementedError

    def store_view(self, store_id: str) -> dict[str, object] | None:
        raise NotImplementedError

    # ----- webhooks --------------------------------------------------------------------------

    def deliver(
        self, delivery: Delivery, *, on_done: Callable[[int | None], Awaitable[None]] | None = None
    ) -> None:
        """Send ``delivery`` in the background with the configured webhook faults."""
        self.spawn(self._deliver(delivery, on_done))

    async def deliver_now(self, delivery: Delivery) -> int | None:
        """Send ``delivery`` (faults and retries included) and return the final status."""
        return await self._send_with_faults(delivery)

    async def _deliver(
        self, delivery: Delivery, on_done: Callable[[int | None], Awaitable[None]] | None
    ) -> None:
        status = await self._send_with_faults(delivery)
        if on_done is not None:
            await on_done(status)

    async def _send_with_faults(self, delivery: Delivery) -> int | None:
        faults = self.faults.webhook
        if self.roll(faults.drop):
            self.stats.webhooks_dropped += 1
            self._log_attempt(delivery, 0, None, "dropped by fault injection")
            return None
        if faults.delay_ms:
            await asyncio.sleep(faults.delay_ms / 1000)
        copies = 2 if self.roll(faults.duplicate) else 1
        first: int | None = None
        for copy in range(copies):
            status = await self._attempts(delivery, bad_signature=self.roll(faults.bad_signature))
            if copy == 0:
                first = status
        return first

    async def _attempts(self, delivery: Delivery, *, bad_signature: bool) -> int | None:
        status: int | None = None
        for attempt, delay in enumerate([0.0, *delivery.retry_delays], start=1):
            if delay:
                await asyncio.sleep(delay)
            self.stats.webhooks_sent += 1
            headers = {"Content-Type": "application/json", "User-Agent": f"{self.platform}-sandbox"}
            headers.update(delivery.sign(delivery.body, bad_signature))
            try:
                response = await self.http_client().post(
                    delivery.url, content=delivery.body, headers=headers
                )
            except (httpx2.HTTPError, OSError) as exc:
                status = None
                self.stats.webhooks_failed += 1
                self._log_attempt(delivery, attempt, None, f"{type(exc).__name__}: {exc}")
                continue
            status = response.status_code
            self._log_attempt(delivery, attempt, status, None)
            if 200 <= status < 300:
                self.stats.webhooks_delivered += 1
                return status
            self.stats.webhooks_failed += 1
            if not delivery.is_retryable(status):
                return status
        self.stats.webhooks_dropped += 1
        return status

    def _log_attempt(
        self, delivery: Delivery, attempt: int, status: int | None, error: str | None
    ) -> None:
        self.webhook_log.append(
            WebhookAttempt(
                kind=delivery.kind,
                url=delivery.url,
                event_id=delivery.event_id,
                attempt=attempt,
                status=status,
                error=error,
                at=self.now(),
                body=delivery.body.decode(),
            )
        )


class SandboxMiddleware:
    """Records platform calls and applies injected faults before the platform code runs."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = relative_path(scope)
        if path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        sim = self.simulator
        started = sim.now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        status_seen: list[int] = []

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
            await send(message)

        try:
            fault = await self._fault(path)
            if fault is not None:
                await fault(scope, receive, recording_send)
            else:
                await self.app(scope, receive, recording_send)
        finally:
            status = status_seen[0] if status_seen else 499
            sim.stats.requests += 1
            sim.stats.responses[status] = sim.stats.responses.get(status, 0) + 1
            query = scope.get("query_string", b"").decode("latin-1")
            sim.calls.append(
                CallRecord(scope["method"], path, query, status, started, (loop.time() - t0) * 1000)
            )

    async def _fault(self, path: str) -> ASGIApp | None:
        sim = self.simulator
        faults = sim.faults
        now = sim.now()
        if sim.outage_until is not None and now < sim.outage_until:
            return sim.render_error(
                SandboxError(503, sim.error_code_for(503), "Service unavailable (outage)"), path
            )
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if sim.roll(faults.timeout_rate):
            await asyncio.sleep(sim.settings.timeout_hang_seconds)
            return sim.render_error(
                SandboxError(504, sim.error_code_for(504), "Gateway timeout"), path
            )
        if faults.error_statuses and sim.roll(faults.error_rate):
            status = sim.rng.choice(faults.error_statuses)
            return sim.render_error(
                SandboxError(status, sim.error_code_for(status), "Injected error"), path
            )
        if not sim.within_budget("requests_per_minute", timedelta(minutes=1)):
            return sim.render_error(
                SandboxError(429, sim.error_code_for(429), "Too many requests"), path
            )
        return None


def relative_path(scope: Scope) -> str:
    """The request path relative to the prefix the simulator is mounted under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"
