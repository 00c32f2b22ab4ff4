"""PostgreSQL, two API processes and a separate writer process: every client gets every event.

The writer is a third OS process writing through ``EventWriter`` as the worker does; each API
process's relay is woken by ``NOTIFY`` (its polling is slowed down to 30 s to prove it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.realtime.conftest import ProgressClient
from tests.realtime.test_relay import emit_from_another_process
from tests.support import TEST_SECRET, make_token

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

API = Path(__file__).with_name("api_process.py")


@pytest.fixture
async def api_urls(postgres_url: str, tmp_path: Path) -> AsyncIterator[list[str]]:
    env = {
        **os.environ,
        "MENUSYNC_DATABASE__URL": postgres_url,
        "MENUSYNC_AUTH__JWT_SECRET": TEST_SECRET,
        "MENUSYNC_SECURITY__ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MENUSYNC_DATA_DIR": str(tmp_path),
    }
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(API),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        urls = []
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, (await process.stderr.read()).decode() if process.stderr else ""
            urls.append(f"http://127.0.0.1:{json.loads(line)['port']}")
        yield urls
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.communicate(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_a_client_on_each_api_process_receives_every_event(
    api_urls: list[str], postgres_url: str
) -> None:
    company, sync_id = f"co-{uuid.uuid4().hex[:8]}", uuid.uuid4()
    clients = [ProgressClient(url) for url in api_urls]
    for client in clients:
        await client.connect(make_token(company))
        await client.wait_for(lambda c: bool(c.events("connected")), "connected")

    ids = await emit_from_another_process(postgres_url, company, sync_id, 50)
    for client in clients:
        await client.wait_ids(ids)

    try:
        assert [client.ids() for client in clients] == [ids, ids]
    finally:
        for client in clients:
            await client.disconnect()
