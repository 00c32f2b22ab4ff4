"""A worker process for multi-process queue tests: ``python -m tests.sync.proc_worker URL DIR N``.

Runs a real ``menusync`` worker (claim loop, leases, heartbeats, maintenance) against the
database at URL with the fake platform registered, until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from menusync.config import Settings
from menusync.core.resources import build_resources
from menusync.platforms.registry import ADAPTERS, AdapterRegistry
from menusync.platforms.runtime import PlatformRuntime
from menusync.platforms.tokens import TokenCache
from menusync.sync.policy import EnginePolicies
from menusync.worker import Worker
from tests.sync.fake_platform import FakeAdapter

TEST_KEY = "bWVudXN5bmMtdGVzdC1rZXktMDEyMzQ1Njc4OWFiY2Q="


def worker_settings(url: str, data_dir: Path, *, lease_seconds: float = 30) -> Settings:
    return Settings(
        data_dir=data_dir,
        database={"url": url},
        auth={"jwt_secret": "x" * 64},
        security={"encryption_key": TEST_KEY},
        engine={
            "idle_poll_seconds": 0.2,
            "lease_seconds": lease_seconds,
            "maintenance_seconds": 0.5,
            "platforms": {"fake": {"requests_per_minute": 10_000_000}},
        },
    )


async def main(url: str, data_dir: Path, concurrency: int, lease_seconds: float) -> None:
    settings = worker_settings(url, data_dir, lease_seconds=lease_seconds)
    resources = build_resources(settings)
    registry = AdapterRegistry((*ADAPTERS, FakeAdapter))
    runtime = PlatformRuntime(registry, TokenCache(resources.clock))
    worker = Worker(
        resources, runtime, EnginePolicies(registry, settings.engine), concurrency=concurrency
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.request_stop)
    await worker.start()
    (data_dir / f"ready-{worker.worker_id.replace(':', '_')}").touch()
    try:
        await worker.run_until_stopped()
    finally:
        await worker.stop()
        await resources.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
