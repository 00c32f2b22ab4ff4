"""A per-user request budget on our own API: beyond it, 429 ``too_many_requests`` with
``Retry-After`` (DESIGN.md section 7).

Each authenticated request under ``/api/v1`` books a slot on its caller's key
``api:<companyId>:<userId>`` with the database-backed GCRA limiter
(:class:`~menusync.core.resilience.rate_limit.RateLimiter`), so the budget is one budget across
every API process. The budget is ``requests_per_minute`` sustained (one request every
``60 / requests_per_minute`` seconds) plus bursts of ``burst + 1`` back-to-back requests after a
quiet stretch: by default 600 a minute, i.e. 10 a second, in bursts of up to 61, so a dashboard
loading a dozen panels at once never notices it. Over any minute a caller gets at most
``requests_per_minute + burst + 1`` requests through.

Cost, PostgreSQL: one statement per request, in a short transaction of its own before the
request runs (plus one read of the key when refused, for ``Retry-After``)::

    INSERT INTO rate_limit_state (key, tat, updated_at) VALUES (...)
    ON CONFLICT (key) DO UPDATE SET tat = greatest(tat, :now) + :interval
        WHERE rate_limit_state.tat <= :now + :tolerance
    RETURNING tat

Row-level locking: only the same user's concurrent requests meet on that row, for the length of
one statement. It is deliberately not part of the request's unit of work: the row would then
stay locked for the whole request (one user's requests would queue behind each other), and a
request that fails and rolls back would not count.

Cost, SQLite: the same statement, but SQLite has one writer at a time, and a request must not
queue behind a long writer (a worker step, a menu import) just to be counted: analytics and the
operations views are written to answer beside a writer. So the booking waits for the write lock
at most ``SQLITE_LOCK_WAIT_MS`` (50 ms); when the lock stays busy, the request goes on
uncounted. A budget protects the service; it does not decide anything that must be exact.

Not counted: everything outside ``/api/v1`` (``/healthz``, ``/readyz``, ``/metrics``, ``/docs``,
``/openapi.json``, the dashboard), the platforms' webhooks (``/api/v1/platform-sync/webhook/``),
and requests without a valid token (no caller to charge; the endpoint answers 401 without
touching the database).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from menusync.core.errors import TooManyRequests
from menusync.core.resilience.rate_limit import Limit, RateLimiter, Reservation
from menusync.core.resources import Resources
from menusync.tenancy.context import AuthContext, caller_from_authorization
from menusync.tenancy.idempotency import WEBHOOK_PREFIX

log = structlog.get_logger(__name__)

KEY_PREFIX = "api:"
_MAX_KEY = 200
"""The width of ``rate_limit_state.key``."""
SQLITE_LOCK_WAIT_MS = 50
"""On SQLite, how long a request waits for the write lock to book its slot before going on
uncounted."""


@dataclass(frozen=True)
class RequestBudget:
    """How many requests a user may make, and on which paths.

    ``burst`` defaults to a tenth of the minute's budget.
    """

    requests_per_minute: int = 600
    burst: int | None = None
    prefix: str = "/api/v1/"
    exempt_prefixes: tuple[str, ...] = (WEBHOOK_PREFIX,)

    def __post_init__(self) -> None:
        if self.requests_per_minute < 1:
            raise ValueError("the request budget allows at least one request a minute")

    @property
    def limit(self) -> Limit:
        burst = self.requests_per_minute // 10 if self.burst is None else self.burst
        return Limit(count=self.requests_per_minute, period_seconds=60.0, burst=burst)

    def applies_to(self, path: str) -> bool:
        return path.startswith(self.prefix) and not path.startswith(self.exempt_prefixes)


def budget_key(caller: AuthContext) -> str:
    """The limiter key of one user of one company (hashed only if it would not fit)."""
    key = f"{KEY_PREFIX}{caller.company_id}:{caller.user_id}"
    if len(key) <= _MAX_KEY:
        return key
    digest = hashlib.sha256(f"{caller.company_id}\0{caller.user_id}".encode()).hexdigest()
    return f"{KEY_PREFIX}{digest}"


class RequestBudgetMiddleware:
    """Books one slot per request; answers 429 when the caller's budget is spent.

    Reads the :class:`RequestBudget` from ``app.state.request_budget`` at each request (set by
    :func:`install_request_budget`), and the database and clock from ``app.state.resources``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        budget: RequestBudget | None = getattr(state, "request_budget", None)
        if budget is None or not budget.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorization = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"authorization"
            ),
            None,
        )
        resources: Resources = state.resources
        caller = caller_from_authorization(authorization, resources.verifier)
        if caller is None:
            await self.app(scope, receive, send)
            return
        key = budget_key(caller)
        reservation = await _reserve(resources, key, budget.limit)
        if reservation is not None and not reservation.is_granted:
            await self._refuse(scope, receive, send, budget, key, reservation.wait_seconds)
            return
        await self.app(scope, receive, send)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        budget: RequestBudget,
        key: str,
        wait_seconds: float,
    ) -> None:
        log.info("request_budget_exceeded", key=key, retry_after=wait_seconds)
        error = TooManyRequests(
            f"Request budget of {budget.requests_per_minute} a minute exceeded; "
            "retry after the time in Retry-After",
            retry_after=wait_seconds,
            details={"limit": budget.requests_per_minute, "periodSeconds": 60},
        )
        response = JSONResponse(
            error.to_body(), status_code=error.status_code, headers=error.headers
        )
        await response(scope, receive, send)


async def _reserve(resources: Resources, key: str, limit: Limit) -> Reservation | None:
    """Book the request's slot; None when SQLite's write lock stayed busy (not counted)."""
    limiter = RateLimiter(resources.clock)
    if resources.engine.dialect.name != "sqlite":
        async with resources.unit_of_work() as session:
            return await limiter.reserve(session, {key: limit}, max_wait=0)
    async with resources.engine.connect() as conn:
        # Deferred, with a short busy timeout: wait for the write lock briefly, never long.
        await conn.execution_options(sqlite_begin="DEFERRED")
        try:
            await conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_LOCK_WAIT_MS}")
            async with AsyncSession(bind=conn) as session:
                reservation = await limiter.reserve(session, {key: limit}, max_wait=0)
            await conn.commit()
            return reservation
        except OperationalError as exc:
            if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                raise
            log.info("request_budget_not_counted", key=key, reason="database busy")
            return None
        finally:
            await conn.rollback()
            restore = resources.settings.database.busy_timeout_ms
            await conn.exec_driver_sql(f"PRAGMA busy_timeout={int(restore)}")
            await conn.commit()


def _document(schema: dict[str, Any], budget: RequestBudget) -> None:
    """Add the 429 answer to every operation the budget covers."""
    for path, item in schema.get("paths", {}).items():
        if not budget.applies_to(path):
            continue
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch"} and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault(
                    "429",
                    {
                        "description": "The caller's request budget is spent; retry after `Retry-After` seconds",
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds to wait",
                                "schema": {"type": "integer"},
                            }
                        },
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                            }
                        },
                    },
                )


def install_request_budget(app: FastAPI, budget: RequestBudget | None = None) -> None:
    """Add the budget middleware to ``app`` and document its 429 in the OpenAPI document.

    Call it before the body-size and request-id middleware are added, so they wrap it.
    """
    budget = budget or RequestBudget()
    app.state.request_budget = budget
    app.add_middleware(RequestBudgetMiddleware)
    build_openapi: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_openapi()
            _document(schema, app.state.request_budget)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
