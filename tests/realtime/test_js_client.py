"""The official JavaScript socket.io-client (from npm, driven by Node) against a real server.

socket.io-client is installed by this module into ``.cache/node`` under the repository. Without
Node or npm the tests are skipped with the reason, except with ``MENUSYNC_TEST_REQUIRE_NODE=1``
(set by ``.ci/run``), where that is an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from menusync.realtime.events import EventType
from tests.realtime.conftest import LiveServer, write_events
from tests.support import make_token

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "node"
CLIENT_VERSION = "4.8.4"
SCRIPT = Path(__file__).with_name("js") / "progress_client.cjs"
REQUIRE_NODE = os.environ.get("MENUSYNC_TEST_REQUIRE_NODE") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_NODE:
        pytest.fail(f"{reason} (MENUSYNC_TEST_REQUIRE_NODE=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def socket_io_client() -> Path:
    """socket.io-client from npm, installed once into ``.cache/node``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("Node.js and npm are needed to test the official socket.io-client")
    module = CACHE / "node_modules" / "socket.io-client"
    installed = module / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != CLIENT_VERSION:
        CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(CACHE),
                "--no-audit",
                "--no-fund",
                "--silent",
                f"socket.io-client@{CLIENT_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            _unavailable(f"npm could not install socket.io-client: {result.stderr.strip()}")
    return module


class NodeClient:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), 20)
        if not raw:
            assert self.process.stderr is not None
            error = (await self.process.stderr.read()).decode()
            raise AssertionError(f"node client ended early: {self.lines!r} {error}")
        line: dict[str, Any] = json.loads(raw)
        self.lines.append(line)
        return line

    async def until(self, kind: str) -> dict[str, Any]:
        while (line := await self.next())["kind"] != kind:
            assert line["kind"] not in ("refused", "timeout"), line
        return line


async def start_node(module: Path, url: str, token: str, sync_id: uuid.UUID) -> NodeClient:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        url,
        token,
        str(sync_id),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SOCKET_IO_CLIENT": str(module)},
    )
    return NodeClient(process)


async def test_js_client_follows_a_sync_to_completion(
    live: LiveServer, socket_io_client: Path
) -> None:
    sync_id = uuid.uuid4()
    started = await write_events(
        live.resources, "acme", sync_id=sync_id, event_type=EventType.SYNC_STARTED
    )
    node = await start_node(socket_io_client, live.url, make_token("acme", user="js"), sync_id)

    connected = await node.until("connected")
    ack = await node.until("ack")
    progress = await write_events(live.resources, "acme", 3, sync_id=sync_id)
    completed = await write_events(
        live.resources, "acme", sync_id=sync_id, event_type=EventType.SYNC_COMPLETED
    )
    await node.until("done")
    assert await asyncio.wait_for(node.process.wait(), 10) == 0

    events = [line["payload"] for line in node.lines if line["kind"] == "event"]
    assert connected["payload"]["data"] == {"userId": "js", "companyId": "acme"}
    assert ack["ack"]["ok"] is True
    assert [e["eventId"] for e in events] == started + progress + completed
    assert [e["type"] for e in events] == [
        "sync-started",
        "sync-progress",
        "sync-progress",
        "sync-progress",
        "sync-completed",
    ]


async def test_js_client_with_a_bad_token_is_refused_with_a_message(
    live: LiveServer, socket_io_client: Path
) -> None:
    node = await start_node(socket_io_client, live.url, "garbage", uuid.uuid4())

    refused = await node.next()

    assert refused["kind"] == "refused"
    assert refused["message"].startswith("Invalid token")
    assert refused["data"] == {"code": "invalid_token"}
    await asyncio.wait_for(node.process.wait(), 10)
