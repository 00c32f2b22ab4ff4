"""One ASGI app mounting the three simulators under ``/careem``, ``/talabat``, ``/deliveroo``.

Starlette does not run the lifespan of mounted apps, so the parent's lifespan closes every
simulator's background work (webhook deliveries, processing jobs) at shutdown. An app that mounts
this one elsewhere (``menusync serve --demo``) calls :func:`shutdown_sandbox` from its own lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from menusync.sandbox.careem import create_app as create_careem
from menusync.sandbox.deliveroo import create_app as create_deliveroo
from menusync.sandbox.runtime import Simulator
from menusync.sandbox.settings import SandboxSettings
from menusync.sandbox.talabat import create_app as create_talabat

PLATFORMS = ("careem", "talabat", "deliveroo")


def create_sandbox_app(
    settings: SandboxSettings | None = None, *, http_client: httpx2.AsyncClient | None = None
) -> Starlette:
    """All three simulators, one per prefix, sharing ``settings`` (and its clock).

    ``http_client`` sends the webhooks and callbacks; pass one with an ASGI transport to deliver
    them in-process. Without it each simulator opens (and closes) its own client.
    """
    settings = settings or SandboxSettings()
    apps = {
        "careem": create_careem(settings, http_client=http_client),
        "talabat": create_talabat(settings, http_client=http_client),
        "deliveroo": create_deliveroo(settings, http_client=http_client),
    }
    simulators: dict[str, Simulator] = {name: app.state.simulator for name, app in apps.items()}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for simulator in simulators.values():
                await simulator.aclose()

    async def index(_request: Request) -> JSONResponse:
        return JSONResponse({"platforms": {name: f"/{name}" for name in PLATFORMS}})

    app = Starlette(
        routes=[Route("/", index), *(Mount(f"/{name}", app=apps[name]) for name in PLATFORMS)],
        lifespan=lifespan,
    )
    app.state.simulators = simulators
    return app


async def shutdown_sandbox(app: Starlette) -> None:
    """Cancel the background work of every simulator in ``app`` (from create_sandbox_app)."""
    simulators: dict[str, Simulator] = app.state.simulators
    for simulator in simulators.values():
        await simulator.aclose()
