"""Every event of a real sync and a real batch, as a subscribed socket receives them.

The engine (worker + sandbox) runs in this process; the API with Socket.IO is served by uvicorn.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.resources import build_resources
from menusync.demo import DemoSeed, seed_demo
from menusync.realtime.server import create_realtime
from menusync.sandbox.app import create_sandbox_app, shutdown_sandbox
from menusync.sandbox.settings import SandboxSettings
from menusync.worker import Worker
from tests.realtime.conftest import ProgressClient, serve
from tests.sync.conftest import APP_URL, SANDBOX_URL, HostRouter, engine_settings

FINAL = ("sync-completed", "sync-failed", "sync-cancelled")


@dataclass
class EngineStack:
    url: str
    client: httpx2.AsyncClient
    seed: DemoSeed

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/v1/platform-sync/{path}",
            json={"platformMenuId": str(self.seed.menu_id), **body},
            headers={"Authorization": f"Bearer {self.seed.token}"},
        )
        assert response.status_code == 202, response.text
        result: dict[str, Any] = response.json()
        return result

    async def subscriber(self) -> ProgressClient:
        client = ProgressClient(self.url)
        await client.connect(self.seed.token)
        await client.wait_for(lambda c: bool(c.events("connected")), "connected")
        return client


@pytest.fixture
async def engine_stack(settings: Settings, engine: AsyncEngine) -> AsyncIterator[EngineStack]:
    stack_settings = engine_settings(settings)
    sandbox_settings = SandboxSettings.fast(
        deliveroo_webhook_url=f"{APP_URL}/api/v1/platform-sync/webhook/deliveroo",
        careem_webhook_url=f"{APP_URL}/api/v1/platform-sync/webhook/careem",
    )
    router = HostRouter()
    http = httpx2.AsyncClient(transport=router, timeout=10)
    sandbox = create_sandbox_app(sandbox_settings, http_client=http)
    resources = build_resources(stack_settings, engine=engine, http=http)
    app = create_app(stack_settings, resources=resources)
    router.routes["sandbox.test"] = httpx2.ASGITransport(app=sandbox)
    router.routes["menusync.test"] = httpx2.ASGITransport(app=app)
    seed = await seed_demo(resources, app.state.platform_runtime, SANDBOX_URL, sandbox_settings)
    for platform in ("careem", "talabat", "deliveroo"):
        limits = {"requestsPerMinute": 1_000_000}
        await http.put(f"{SANDBOX_URL}/{platform}/__sandbox/limits", json=limits)
    realtime = create_realtime(stack_settings, poll_interval=0.2)
    await realtime.start(resources)
    worker = Worker(resources, app.state.platform_runtime, app.state.engine_policies)
    await worker.start()
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=APP_URL)
    try:
        async with serve(realtime.asgi_app(app)) as url:
            yield EngineStack(url, client, seed)
    finally:
        await worker.stop()
        await realtime.stop()
        await shutdown_sandbox(sandbox)
        await client.aclose()
        await http.aclose()


def sync_events(client: ProgressClient, sync_id: str) -> list[dict[str, Any]]:
    return [
        r.payload
        for r in client.received
        if r.name.startswith("sync-") and r.payload["data"].get("syncId") == sync_id
    ]


async def test_a_full_sync_streams_every_event_in_order(engine_stack: EngineStack) -> None:
    client = await engine_stack.subscriber()

    accepted = await engine_stack.post("single", {"platformType": "careem"})
    sync_id = accepted["syncId"]
    ack = await client.call("subscribe-sync", {"syncId": sync_id, "sinceEventId": 0})
    await client.wait_for(
        lambda c: any(e["type"] in FINAL for e in sync_events(c, sync_id)), "the final event"
    )

    events = sync_events(client, sync_id)
    types = [e["type"] for e in events]
    ids = [e["eventId"] for e in events]
    assert ack["ok"] is True
    assert types[0] == "sync-started"
    assert types[-1] == "sync-completed"
    assert set(types[1:-1]) == {"sync-progress"}
    assert ids == sorted(set(ids))
    started, completed = events[0]["data"], events[-1]["data"]
    assert {"syncId", "platformType", "platformMenuId", "status"} <= set(started)
    assert started["platformMenuId"] == str(engine_stack.seed.menu_id)
    assert {
        "syncId",
        "status",
        "progress",
        "duration",
        "itemsProcessed",
        "message",
        "unchanged",
    } <= set(completed)
    assert completed["progress"] == 100
    progress = [e["data"] for e in events[1:-1]]
    assert all(
        {"progress", "stage", "itemsProcessed", "totalItems", "platformType"} <= set(p)
        for p in progress
    )
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)


async def test_a_batch_streams_its_events_and_each_syncs_in_order(
    engine_stack: EngineStack,
) -> None:
    client = await engine_stack.subscriber()
    platforms = [{"platformType": p} for p in ("careem", "talabat", "deliveroo")]

    accepted = await engine_stack.post("batch", {"platforms": platforms})
    batch_id = accepted["batchId"]
    ack = await client.call("subscribe-multi-sync", {"multiSyncId": batch_id, "sinceEventId": 0})
    await client.wait_for(
        lambda c: bool(c.events("batch-sync-completed")), "the batch-sync-completed event"
    )

    batch = [r.payload for r in client.received if r.name.startswith("batch-")]
    assert ack["ok"] is True
    assert batch[0]["type"] == "batch-sync-started"
    assert batch[-1]["type"] == "batch-sync-completed"
    assert {e["type"] for e in batch[1:-1]} == {"batch-sync-progress"}
    assert batch[0]["data"]["totalOperations"] == 3
    assert batch[-1]["data"]["overallStatus"] == "completed"
    assert [e["data"]["overallProgress"] for e in batch[1:-1]][-1] == 100
    for operation in accepted["syncOperations"]:
        types = [e["type"] for e in sync_events(client, operation["syncId"])]
        assert types[0] == "sync-started", operation
        trace = [
            (e["eventId"], e["type"], e["data"].get("status"), e["data"].get("stage"))
            for e in sync_events(client, operation["syncId"])
        ]
        assert types[-1] == "sync-completed", trace
    ids = client.ids()
    assert len(ids) == len(set(ids))
    assert uuid.UUID(batch_id)
