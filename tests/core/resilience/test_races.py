"""Real OS processes racing through the database: the limiter's budget and the single probe.

Eight ``race_worker.py`` processes are started once for this module and serve every race. For
each race they connect, say they are ready, and start on one signal, so the reservations and
claims really overlap. Outcomes, never timings, are asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.core.clock import FrozenClock
from menusync.core.db import unit_of_work
from menusync.core.resilience.circuit_breaker import BreakerState, CircuitBreaker

WORKER = Path(__file__).with_name("race_worker.py")
TIMEOUT = 60.0
SHARED = ("race:shared", 50, 60.0)  # 50 calls a minute: one every 1.2 s
STORES = [("race:store-0", 1, 10.0), ("race:store-1", 1, 10.0)]  # one call every 10 s each

pytestmark = pytest.mark.slow


class Racers:
    """Worker processes that run one race at a time, all starting on the same signal."""

    def __init__(self, processes: list[asyncio.subprocess.Process], errors: Path) -> None:
        self.processes = processes
        self.errors = errors

    async def race(self, commands: list[dict[str, Any]]) -> list[Any]:
        racing = self.processes[: len(commands)]
        for process, command in zip(racing, commands, strict=True):
            assert process.stdin is not None
            process.stdin.write(json.dumps(command).encode() + b"\n")
        for process in racing:
            assert (await self._line(process)) == "ready"
        for process in racing:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        return [json.loads(await self._line(process)) for process in racing]

    async def _line(self, process: asyncio.subprocess.Process) -> str:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        if not line:
            pytest.fail(f"a race worker died:\n{self.errors.read_text()}")
        return line.decode().strip()


@pytest.fixture(scope="module")
async def racers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Racers]:
    errors = tmp_path_factory.mktemp("racers") / "stderr.txt"
    with errors.open("wb") as stderr:
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
            for _ in range(8)
        ]
    yield Racers(processes, errors)
    for process in processes:
        assert process.stdin is not None
        process.stdin.close()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_four_processes_sharing_a_limiter_never_exceed_the_budget(
    db_url: str, racers: Racers
) -> None:
    start = FrozenClock().now().timestamp()
    common = {"mode": "limiter", "url": db_url, "start": start, "count": 30}

    per_process = await racers.race(
        [
            {**common, "index": index, "shared": SHARED, "stores": STORES, "max_wait": 200.0}
            for index in range(4)
        ]
    )

    reservations = list(itertools.chain.from_iterable(per_process))
    assert len(reservations) == 120
    assert all(r["granted"] for r in reservations if r["keys"] == [SHARED[0]])
    granted = [(datetime.fromisoformat(r["at"]), r["keys"]) for r in reservations if r["granted"]]
    # Every reservation includes the shared key: no two of its calls within one interval...
    shared_interval = timedelta(seconds=SHARED[2] / SHARED[1])
    gaps = [b - a for a, b in itertools.pairwise(sorted(at for at, _ in granted))]
    assert min(gaps) >= shared_interval
    assert min(gaps) < shared_interval + timedelta(milliseconds=1)  # ...yet back to back.
    # Each store key keeps its own spacing. A granted two-key call books the shared key at the
    # store's slot (GCRA keeps no holes), so a store left untouched while the other runs far
    # ahead could find the shared key beyond max_wait; the processes take the stores in turn, so
    # each store's first call comes early in every interleaving and is granted.
    for store_key, count, period in STORES:
        at_store = sorted(at for at, keys in granted if store_key in keys)
        assert at_store
        store_gaps = [b - a for a, b in itertools.pairwise(at_store)]
        assert all(gap >= timedelta(seconds=period / count) for gap in store_gaps)


async def test_eight_processes_racing_for_the_probe_exactly_one_wins(
    db_url: str, racers: Racers, sessions: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    breaker = CircuitBreaker(clock)
    for _ in range(5):
        async with unit_of_work(sessions) as session:
            await breaker.record_failure(session, "race", "setup", "503")
    probe_time = (clock.now() + timedelta(seconds=61)).timestamp()
    common = {"mode": "probe", "url": db_url, "start": probe_time, "name": "race"}

    results = await racers.race([{**common, "owner": f"worker-{i}"} for i in range(8)])

    winners = [r for r in results if r["kind"] == "probe"]
    assert len(winners) == 1
    assert winners[0]["changed_to"] == BreakerState.HALF_OPEN.value
    assert sorted(r["kind"] for r in results if r is not winners[0]) == ["rejected"] * 7
    async with unit_of_work(sessions) as session:
        current = await breaker.get_state(session, "race")
    assert (current.state, current.probe_owner) == (BreakerState.HALF_OPEN, winners[0]["owner"])
