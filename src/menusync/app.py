"""``create_app(settings)``: the FastAPI application (wrapped with Socket.IO by the realtime
package).

Nothing connects at import time: the lifespan builds the process resources (engine, HTTP client,
verifier) unless the caller passes its own (tests, ``serve``), and closes what it built. In
embedded mode (``serve``) the lifespan also runs a worker in this process.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp

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
from menusync.platforms.registry import AdapterRegistry, default_registry
from menusync.platforms.runtime import PlatformRuntime
from menusync.platforms.tokens import TokenCache
from menusync.realtime.server import create_realtime
from menusync.sync.policy import EnginePolicies
from menusync.tenancy.idempotency import install_idempotency
from menusync.tenancy.request_budget import RequestBudget, install_request_budget
from menusync.worker import Worker

DESCRIPTION = """
menusync publishes restaurant menus to delivery platforms (Careem, Talabat, Deliveroo) reliably:
durable queue, shared rate limits, circuit breakers, retries, full audit trail and live progress.

Authenticate with `Authorization: Bearer <JWT>` carrying `sub`, `companyId` and `role`.
Errors are `{"success": false, "error": {"code", "message", "details"}}`.
"""

Hook = Callable[[FastAPI], Awaitable[None]]


def create_app(
    settings: Settings,
    *,
    resources: Resources | None = None,
    registry: AdapterRegistry | None = None,
    embedded_worker: bool = False,
    mounts: Mapping[str, ASGIApp] | None = None,
    on_startup: list[Hook] | None = None,
    on_shutdown: list[Hook] | None = None,
) -> FastAPI:
    registry = registry or default_registry()
    policies = EnginePolicies(registry, settings.engine)
    realtime = create_realtime(settings)

    def wire(app: FastAPI, built: Resources) -> None:
        app.state.resources = built
        app.state.platform_runtime = PlatformRuntime(registry, TokenCache(built.clock))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = resources or build_resources(settings)
        wire(app, built)
        worker = None
        await realtime.start(built)
        try:
            for hook in on_startup or []:
                await hook(app)
            if embedded_worker:
                worker = Worker(built, app.state.platform_runtime, policies)
                await worker.start()
                app.state.worker = worker
            # Everything built at start-up lives as long as the process: move it out of the
            # collector's reach, so full collections stay short (they stalled event delivery
            # for 150-280 ms in the realtime benchmark).
            gc.collect()
            gc.freeze()
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await realtime.stop()
            for hook in on_shutdown or []:
                await hook(app)
            if resources is None:
                await built.aclose()

    app = FastAPI(title="menusync", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.engine_policies = policies
    app.state.realtime = realtime
    if resources is not None:
        wire(app, resources)
    install_error_handlers(app)
    include_routers(app)
    install_idempotency(app)
    install_request_budget(
        app, RequestBudget(settings.api.requests_per_minute, settings.api.request_burst)
    )
    for path, mounted in (mounts or {}).items():
        app.mount(path, mounted)

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.http_requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.http_latency.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


def create_asgi_app(settings: Settings, **kwargs: Any) -> ASGIApp:
    """What uvicorn serves: the app wrapped with Socket.IO (``/socket.io``, namespace
    ``/sync-progress``); the lifespan is forwarded to the FastAPI app."""
    app = create_app(settings, **kwargs)
    wrapped: ASGIApp = app.state.realtime.asgi_app(app)
    return wrapped
