"""The relay across processes and transactions: NOTIFY wake-ups and out-of-order commits."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from menusync.realtime.events import EventType
from menusync.realtime.outbox import EventWriter
from tests.realtime.conftest import LiveServer

Connect = Callable[..., Any]
EMITTER = Path(__file__).with_name("emitter.py")


@pytest.fixture
def poll_interval(db_url: str) -> float:
    # On PostgreSQL the relay must be woken by NOTIFY: polling is slowed down to prove it.
    return 60.0 if db_url.startswith("postgresql") else 0.2


async def emit_from_another_process(
    db_url: str, company: str, sync_id: uuid.UUID, count: int
) -> list[int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EMITTER),
        db_url,
        company,
        str(sync_id),
        str(count),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    ids: list[int] = json.loads(stdout)
    return ids


async def test_events_written_by_another_process_reach_the_clients(
    live: LiveServer, clients: Connect, db_url: str
) -> None:
    assert live.realtime.relay is not None
    if db_url.startswith("postgresql"):
        await asyncio.wait_for(live.realtime.relay.listening.wait(), 10)
    client = await clients("acme")
    sync_id = uuid.uuid4()

    ids = await emit_from_another_process(db_url, "acme", sync_id, 20)
    await client.wait_ids(ids)

    assert client.ids() == ids


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_an_event_committed_after_a_later_one_is_not_skipped(
    live: LiveServer, clients: Connect
) -> None:
    client = await clients("acme")
    sync_id = uuid.uuid4()
    resources = live.resources

    async with resources.sessions() as slow, slow.begin():
        early = await EventWriter(slow, resources.clock).emit(
            "acme", EventType.SYNC_PROGRESS, {"n": 1}, sync_id=sync_id
        )
        await slow.flush()
        async with resources.unit_of_work() as fast:
            late = await EventWriter(fast, resources.clock).emit(
                "acme", EventType.SYNC_PROGRESS, {"n": 2}, sync_id=sync_id
            )
            await fast.flush()
        await client.wait_ids([late.id])
        assert early.id < late.id
        assert early.id in live.realtime.relay.position().gaps  # type: ignore[union-attr]

    await client.wait_ids([early.id])

    assert client.ids() == [late.id, early.id]
