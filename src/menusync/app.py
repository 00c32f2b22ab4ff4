"""``create_app(settings)``: the FastAPI application (and, later, the Socket.IO ASGI wrapper).

Nothing connects at import time: the lifespan builds the process resources (engine, HTTP client,
verifier) unless the caller passes its own (tests, ``serve``), and closes what it built.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from menusync import __version__
from menusync.api import include_routers
from menusync.config import Settings
from menusync.core.resources import Resources, build_resources
from menusync.core.web import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    install_error_handlers,
)
from menusync.observability.metrics import Metrics

DESCRIPTION = """
menusync publishes restaurant menus to delivery platforms (Careem, Talabat, Deliveroo) reliably:
durable queue, shared rate limits, circuit breakers, retries, full audit trail and live progress.

Authenticate with `Authorization: Bearer <JWT>` carrying `sub`, `companyId` and `role`.
Errors are `{"success": false, "error": {"code", "message", "details"}}`.
"""


def create_app(settings: Settings, *, resources: Resources | None = None) -> FastAPI:
    owns_resources = resources is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = resources or build_resources(settings)
        app.state.resources = built
        try:
            yield
        finally:
            if owns_resources:
                await built.aclose()

    app = FastAPI(
        title="menusync",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    if resources is not None:
        app.state.resources = resources
    install_error_handlers(app)
    include_routers(app)

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics: Metrics = request.app.state.metrics
        metrics.http_requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.http_latency.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app
