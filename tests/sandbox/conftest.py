"""Fixtures for the sandbox tests: a manual clock, a webhook receiver, and a sandbox factory.

Every test talks to a simulator over HTTP (httpx2 with an ASGI transport) and receives its
webhooks on an in-process receiver app, reached through the injected httpx2 client, exactly as
`menusync serve --demo` wires it. One test module also runs the sandbox under uvicorn.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx2
import pytest
from starlette.types import Receive, Scope, Send

from menusync.sandbox import careem, deliveroo, talabat
from menusync.sandbox.runtime import Simulator
from menusync.sandbox.settings import ManualClock, SandboxSettings

HOOKS = "http://hooks.test"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class Receiver:
    """A webhook endpoint: records every request and answers scripted statuses (then 200)."""

    received: list[Received] = field(default_factory=list)
    script: deque[int] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["path"], headers, body))
        self.arrived.set()
        status = self.script.popleft() if self.script else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def wait_for(self, count: int, timeout: float = 3.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@dataclass
class Sandbox:
    client: httpx2.AsyncClient
    simulator: Simulator
    clock: ManualClock
    receiver: Receiver

    async def settle(self) -> None:
        """Wait until the simulator has no job or webhook in flight (control API)."""
        response = await self.client.post("/__sandbox/settle", params={"timeout": 3})
        assert response.json() == {"settled": True}

    async def store(self, store_id: str) -> dict[str, object]:
        response = await self.client.get(f"/__sandbox/stores/{store_id}")
        assert response.status_code == 200, response.text
        data = response.json()
        assert isinstance(data, dict)
        return data


SandboxFactory = Callable[..., Awaitable[Sandbox]]

FACTORIES = {
    "deliveroo": deliveroo.create_app,
    "talabat": talabat.create_app,
    "careem": careem.create_app,
}


@pytest.fixture
async def make_sandbox() -> AsyncIterator[SandboxFactory]:
    """Build a simulator with zeroed delays, a manual clock and a webhook receiver."""
    opened: list[tuple[Simulator, httpx2.AsyncClient, httpx2.AsyncClient]] = []

    async def build(platform: str, **overrides: object) -> Sandbox:
        clock = ManualClock()
        receiver = Receiver()
        hooks = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=receiver))
        values: dict[str, object] = {
            "clock": clock,
            "deliveroo_webhook_url": f"{HOOKS}/deliveroo",
            "careem_webhook_url": f"{HOOKS}/careem",
        }
        values.update(overrides)
        settings = SandboxSettings.fast(**values)
        app = FACTORIES[platform](settings, http_client=hooks)
        client = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://sandbox.test"
        )
        simulator: Simulator = app.state.simulator
        opened.append((simulator, client, hooks))
        return Sandbox(client, simulator, clock, receiver)

    yield build
    for simulator, client, hooks in opened:
        await simulator.aclose()
        await client.aclose()
        await hooks.aclose()
