"""Writes sync events from a separate OS process, the way a worker does.

Usage: ``python emitter.py DB_URL COMPANY SYNC_ID COUNT [INTERVAL_SECONDS]``; prints the ids it
wrote, one JSON list on stdout, when done.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

from menusync.core.clock import SystemClock
from menusync.core.db import create_engine, create_sessionmaker, unit_of_work
from menusync.realtime.events import EventType
from menusync.realtime.outbox import EventWriter


async def main(url: str, company: str, sync_id: str, count: int, interval: float) -> None:
    engine = create_engine(url, pool_size=2)
    sessions = create_sessionmaker(engine)
    ids: list[int] = []
    try:
        for number in range(1, count + 1):
            async with unit_of_work(sessions) as session:
                event = await EventWriter(session, SystemClock()).emit(
                    company,
                    EventType.SYNC_PROGRESS,
                    {"syncId": sync_id, "progress": number},
                    sync_id=uuid.UUID(sync_id),
                )
                await session.flush()
                ids.append(event.id)
            if interval:
                await asyncio.sleep(interval)
    finally:
        await engine.dispose()
    sys.stdout.write(json.dumps(ids) + "\n")


if __name__ == "__main__":
    url, company, sync_id, count = sys.argv[1:5]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    asyncio.run(main(url, company, sync_id, int(count), interval))
