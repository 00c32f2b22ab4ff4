"""A real Socket.IO server on an ephemeral loopback port, and clients that record what they get.

The server is the app of ``create_app`` wrapped by ``Realtime.asgi_app`` and served by uvicorn in
the test's event loop; its relay runs against the test database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
import uvicorn
from starlette.types import ASGIApp

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.resources import Resources
from menusync.realtime.events import EventType
from menusync.realtime.outbox import EventWriter
from menusync.realtime.server import NAMESPACE, Realtime, create_realtime
from tests.support import make_token

try:
    import aiohttp  # noqa: F401  (python-socketio's asyncio client needs it)

    CLIENT_MISSING = None
except ImportError:  # pragma: no cover
    CLIENT_MISSING = "aiohttp is not installed: python-socketio's AsyncClient needs it"

NEEDS_CLIENT = {"live", "clients", "engine_stack", "api_urls"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without aiohttp the socket tests cannot run: skip them visibly; in CI let them fail."""
    required = bool(os.environ.get("CI")) or os.environ.get("MENUSYNC_TEST_REQUIRE_NODE") == "1"
    if CLIENT_MISSING is None or required:
        return
    for item in items:
        if NEEDS_CLIENT & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason=CLIENT_MISSING))


WAIT = 10.0


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and an ephemeral port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class LiveServer:
    url: str
    realtime: Realtime
    resources: Resources


@pytest.fixture
def poll_interval() -> float:
    return 0.2


@pytest.fixture
async def live(
    settings: Settings, resources: Resources, poll_interval: float
) -> AsyncIterator[LiveServer]:
    realtime = create_realtime(settings, poll_interval=poll_interval)
    await realtime.start(resources)
    app = realtime.asgi_app(create_app(settings, resources=resources))
    try:
        async with serve(app) as url:
            yield LiveServer(url, realtime, resources)
    finally:
        await realtime.stop()


async def relayed(live: LiveServer, event_id: int) -> None:
    """Wait until the relay has emitted everything up to ``event_id``."""
    relay = live.realtime.relay
    assert relay is not None
    deadline = asyncio.get_running_loop().time() + WAIT
    while not relay.position().was_emitted(event_id):
        assert asyncio.get_running_loop().time() < deadline, f"event {event_id} never relayed"
        await asyncio.sleep(0.01)


@dataclass
class Received:
    name: str
    payload: dict[str, Any]

    @property
    def event_id(self) -> int | None:
        value = self.payload.get("eventId")
        return value if isinstance(value, int) else None


@dataclass
class ProgressClient:
    """A python-socketio client of ``/sync-progress`` that records every event it receives."""

    url: str
    received: list[Received] = field(default_factory=list)
    refusal: Any = None
    sio: Any = None

    async def connect(self, token: str | None, *, prefix: str = "Bearer ") -> None:
        self.sio = socketio.AsyncClient(reconnection=False)

        async def on_any(event: str, payload: Any = None) -> None:
            self.received.append(Received(event, payload))

        async def on_refused(data: Any = None) -> None:
            self.refusal = data

        self.sio.on("*", on_any, namespace=NAMESPACE)
        self.sio.on("connect_error", on_refused, namespace=NAMESPACE)
        auth = None if token is None else {"token": f"{prefix}{token}"}
        await self.sio.connect(
            self.url, namespaces=[NAMESPACE], auth=auth, transports=["websocket"], wait_timeout=5
        )

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=WAIT)

    async def disconnect(self) -> None:
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()

    def events(self, *names: str) -> list[Received]:
        return [r for r in self.received if not names or r.name in names]

    def ids(self) -> list[int]:
        return [r.event_id for r in self.received if r.event_id is not None]

    async def wait_for(self, predicate: Callable[[ProgressClient], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + WAIT
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {self.received!r}")
            await asyncio.sleep(0.01)

    async def wait_ids(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        await self.wait_for(lambda c: wanted <= set(c.ids()), f"events {sorted(wanted)}")


@pytest.fixture
async def clients(live: LiveServer) -> AsyncIterator[Callable[..., Any]]:
    """``await connect(company, role=...)``: a connected client; all are closed at the end."""
    made: list[ProgressClient] = []

    async def connect(company: str = "acme", role: str = "company_owner", **kwargs: Any) -> Any:
        client = ProgressClient(live.url)
        made.append(client)
        await client.connect(make_token(company, role, user=kwargs.pop("user", "user-1")))
        await client.wait_for(lambda c: bool(c.events("connected")), "the connected event")
        return client

    yield connect
    for client in made:
        await client.disconnect()


async def write_events(
    resources: Resources,
    company: str,
    count: int = 1,
    *,
    sync_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    event_type: EventType = EventType.SYNC_PROGRESS,
    per_transaction: int = 1,
) -> list[int]:
    """Write ``count`` events through ``EventWriter``, ``per_transaction`` per unit of work."""
    ids: list[int] = []
    written = 0
    while written < count:
        async with resources.unit_of_work() as session:
            writer = EventWriter(session, resources.clock)
            events = []
            for _ in range(min(per_transaction, count - written)):
                written += 1
                data = {"syncId": str(sync_id) if sync_id else None, "progress": written}
                events.append(
                    await writer.emit(company, event_type, data, sync_id=sync_id, batch_id=batch_id)
                )
            await session.flush()
            ids.extend(event.id for event in events)
    return ids
