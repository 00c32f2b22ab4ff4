"""``menusync serve --demo``: the demo company's connections work as soon as the server is up.

The app is the one ``serve --demo`` builds (sandbox mounted under ``/sandbox``, demo seeded at
start-up, embedded worker), served by uvicorn on an ephemeral loopback port with its lifespan, so
the connection tests reach the mounted sandbox over HTTP as they do under ``make run``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
import uvicorn

from menusync.cli import _build_app
from menusync.config import Settings
from menusync.demo import DEMO_COMPANY, DEMO_USER
from tests.support import auth_headers

CONNECTIONS = "/api/v1/platform-sync/connections"
PLATFORMS = ("careem", "talabat", "deliveroo")
CAREEM_BRANCH = "beit-zaatar-jlt"


@asynccontextmanager
async def serve_demo(settings: Settings) -> AsyncIterator[str]:
    """``menusync serve --demo`` on 127.0.0.1 and an ephemeral port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    app = _build_app(
        settings.model_copy(update={"public_url": url}),
        port=port,
        demo=True,
        embedded_worker=True,
    )
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", log_config=None, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                pytest.fail("the demo server stopped before it started")
            await asyncio.sleep(0.01)
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def demo_client(settings: Settings) -> AsyncIterator[httpx2.AsyncClient]:
    async with (
        serve_demo(settings) as url,
        httpx2.AsyncClient(base_url=url, timeout=15) as client,
    ):
        yield client


@pytest.mark.e2e
@pytest.mark.parametrize("platform", PLATFORMS)
async def test_demo_connection_works_before_any_sync(
    demo_client: httpx2.AsyncClient, platform: str
) -> None:
    headers = auth_headers(company=DEMO_COMPANY, user=DEMO_USER)

    response = await demo_client.post(f"{CONNECTIONS}/{platform}/test", headers=headers)

    assert response.status_code == 200, response.text
    verdict = response.json()["data"]
    assert verdict["ok"] is True, verdict


@pytest.mark.e2e
async def test_demo_careem_branch_is_onboarded_without_a_catalog(
    demo_client: httpx2.AsyncClient,
) -> None:
    """As on Careem after onboarding: the branch exists and is mapped, nothing was pushed yet."""
    response = await demo_client.get(f"/sandbox/careem/__sandbox/stores/{CAREEM_BRANCH}")

    assert response.status_code == 200, response.text
    store = response.json()
    assert store["state"] == "MAPPED"
    assert store["menu"] is None
    assert store["lastImport"] is None
