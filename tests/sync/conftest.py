"""An engine wired to the sandbox, all in one process over ASGI transports (no sockets):

menusync app  <-- http://menusync.test --  sandbox webhooks / test client
sandbox app   <-- http://sandbox.test  --  adapters (through the worker's PlatformHttp)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.resources import Resources, build_resources
from menusync.demo import DemoSeed, seed_demo
from menusync.sandbox.app import create_sandbox_app, shutdown_sandbox
from menusync.sandbox.settings import SandboxSettings
from menusync.worker import Worker

APP_URL = "http://menusync.test"
SANDBOX_URL = "http://sandbox.test"


@dataclass
class Stack:
    app: FastAPI
    resources: Resources
    sandbox: Any
    sandbox_settings: SandboxSettings
    http: httpx2.AsyncClient
    client: httpx2.AsyncClient
    seed: DemoSeed
    workers: list[Worker]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed.token}"}

    async def start_worker(self, **kwargs: Any) -> Worker:
        worker = Worker(
            self.resources,
            self.app.state.platform_runtime,
            self.app.state.engine_policies,
            **kwargs,
        )
        await worker.start()
        self.workers.append(worker)
        return worker

    async def sandbox_call(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        return await self.http.request(method, f"{SANDBOX_URL}{path}", **kwargs)

    async def sync(self, platform: str, **body: Any) -> dict[str, Any]:
        payload = {"platformMenuId": str(self.seed.menu_id), "platformType": platform, **body}
        response = await self.client.post(
            "/api/v1/platform-sync/single", json=payload, headers=self.headers
        )
        assert response.status_code == 202, response.text
        result: dict[str, Any] = response.json()
        return result

    async def status(self, sync_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/platform-sync/status/{sync_id}", headers=self.headers
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def wait_for(
        self,
        sync_id: str,
        statuses: tuple[str, ...] = ("completed", "failed", "cancelled"),
        timeout: float = 20,
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def reached() -> dict[str, Any] | None:
            seen.update(await self.status(sync_id))
            return dict(seen) if seen["status"] in statuses else None

        try:
            result: dict[str, Any] = await eventually(
                reached, timeout=timeout, what=f"sync {sync_id} to reach {statuses}"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last status: {seen}") from None
        return result


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 20,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``probe`` until it returns something truthy (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def engine_settings(settings: Settings, **engine: Any) -> Settings:
    values = settings.model_dump()
    values["engine"] = {
        **values["engine"],
        "idle_poll_seconds": 0.05,
        "maintenance_seconds": 0.1,
        "status_poll_seconds": 0.2,
        "lease_seconds": 5,
        "max_inline_wait_seconds": 0.5,
        "platforms": {
            # Generous budgets so tests are not paced by the real per-minute limits.
            p: {
                "requests_per_minute": 60_000,
                "per_store_scale": 10_000,
                "base_delay_seconds": 0.05,
                "max_delay_seconds": 0.2,
            }
            for p in ("careem", "talabat", "deliveroo")
        },
        **engine,
    }
    values["public_url"] = APP_URL
    values["api"] = {**values["api"], "requests_per_minute": 1_000_000}  # tests poll status often
    return Settings.model_validate(values)


@pytest.fixture
def stack_settings(settings: Settings) -> Settings:
    return engine_settings(settings)


class HostRouter(httpx2.AsyncBaseTransport):
    """Routes each request to the in-process app that owns its host (late-bound)."""

    def __init__(self) -> None:
        self.routes: dict[str, httpx2.AsyncBaseTransport] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.routes[request.url.host].handle_async_request(request)


@pytest.fixture
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings.fast(
        deliveroo_webhook_url=f"{APP_URL}/api/v1/platform-sync/webhook/deliveroo",
        careem_webhook_url=f"{APP_URL}/api/v1/platform-sync/webhook/careem",
    )


@pytest.fixture
async def stack(
    stack_settings: Settings, engine: AsyncEngine, sandbox_settings: SandboxSettings
) -> AsyncIterator[Stack]:
    router = HostRouter()
    http = httpx2.AsyncClient(transport=router, timeout=10)
    sandbox = create_sandbox_app(sandbox_settings, http_client=http)
    resources = build_resources(stack_settings, engine=engine, http=http)
    app = create_app(stack_settings, resources=resources)
    # Tests poll status every 50 ms; the per-user request budget would pace them.
    router.routes["sandbox.test"] = httpx2.ASGITransport(app=sandbox)
    router.routes["menusync.test"] = httpx2.ASGITransport(app=app)
    seed = await seed_demo(resources, app.state.platform_runtime, SANDBOX_URL, sandbox_settings)
    for platform in ("careem", "talabat", "deliveroo"):
        # The engine's own limits are relaxed too (engine_settings): no test waits a minute.
        response = await http.put(
            f"{SANDBOX_URL}/{platform}/__sandbox/limits", json={"requestsPerMinute": 1_000_000}
        )
        assert response.status_code in (200, 204), response.text
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=APP_URL)
    built = Stack(app, resources, sandbox, sandbox_settings, http, client, seed, [])
    try:
        yield built
    finally:
        for worker in built.workers:
            await worker.stop()
        await shutdown_sandbox(sandbox)
        await client.aclose()
        await http.aclose()
