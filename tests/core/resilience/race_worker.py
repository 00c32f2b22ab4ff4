"""One racing process for the multi-process tests (run as a script, not collected by pytest).

The process serves races one after another, so the tests pay its start-up only once. For each
race it reads one JSON command line on stdin, connects to the command's database, says ``ready``,
waits for a ``go`` line (so every process starts from the same moment), runs its part and prints
its result as one JSON line. It exits when stdin closes. Time is a frozen clock at the command's
``start``, so outcomes never depend on the machine's speed.

Commands::

    {"mode": "limiter", "url": ..., "start": ..., "index": i, "count": n,
     "shared": [key, count, period], "stores": [[key, count, period], ...], "max_wait": s}
        n reservations in turn: the shared key alone (no bounded wait), then the shared key with
        one of the stores, taking the stores in turn (bounded by max_wait); the clock moves
        0.4 s after each.
    {"mode": "probe", "url": ..., "start": ..., "owner": o, "name": breaker}
        one acquire on breaker ``name``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.core.clock import FrozenClock
from menusync.core.db import create_engine, create_sessionmaker, unit_of_work
from menusync.core.resilience.circuit_breaker import CircuitBreaker
from menusync.core.resilience.rate_limit import Limit, RateLimiter


async def reserve_slots(
    sessions: async_sessionmaker[AsyncSession], clock: FrozenClock, command: dict[str, Any]
) -> list[dict[str, Any]]:
    limiter = RateLimiter(clock)
    shared_key, *shared = command["shared"]
    stores = [(key, Limit(count, period)) for key, count, period in command["stores"]]
    results = []
    for n in range(command["count"]):
        limits = {shared_key: Limit(*shared)}
        max_wait = None
        if n % 2:
            # Each process alternates between the stores, starting from its own.
            store_key, store_limit = stores[(command["index"] + n // 2) % len(stores)]
            limits[store_key] = store_limit
            max_wait = command["max_wait"]
        async with unit_of_work(sessions) as session:
            reservation = await limiter.reserve(session, limits, max_wait=max_wait)
        results.append(
            {
                "keys": sorted(limits),
                "granted": reservation.is_granted,
                "at": reservation.allowed_at.isoformat(),
            }
        )
        clock.advance(0.4)
    return results


async def claim_probe(
    sessions: async_sessionmaker[AsyncSession], clock: FrozenClock, command: dict[str, Any]
) -> dict[str, Any]:
    async with unit_of_work(sessions) as session:
        permit = await CircuitBreaker(clock).acquire(session, command["name"], command["owner"])
    return {"owner": command["owner"], "kind": permit.kind.value, "changed_to": permit.changed_to}


async def serve() -> None:
    while line := await asyncio.to_thread(sys.stdin.readline):
        command = json.loads(line)
        clock = FrozenClock(datetime.fromtimestamp(command["start"], UTC))
        engine = create_engine(command["url"], pool_size=1)
        sessions = create_sessionmaker(engine)
        async with unit_of_work(sessions) as session:
            await session.execute(text("SELECT 1"))
        _say("ready")
        await asyncio.to_thread(sys.stdin.readline)
        if command["mode"] == "limiter":
            result: Any = await reserve_slots(sessions, clock, command)
        else:
            result = await claim_probe(sessions, clock, command)
        await engine.dispose()
        _say(json.dumps(result))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(serve())
