"""One API process (the FastAPI app wrapped with Socket.IO, relay included) for the multi-process
tests. Configured by ``MENUSYNC_*`` environment variables; prints ``{"port": N}`` once it
listens and its relay is listening to PostgreSQL; stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import uvicorn

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.resources import build_resources
from menusync.realtime.server import create_realtime


async def main() -> None:
    settings = Settings()
    resources = build_resources(settings)
    realtime = create_realtime(settings, poll_interval=30.0)
    app = realtime.asgi_app(create_app(settings, resources=resources))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    await realtime.start(resources)
    assert realtime.relay is not None
    await asyncio.wait_for(realtime.relay.listening.wait(), 10)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        sys.stdout.write(json.dumps({"port": sock.getsockname()[1]}) + "\n")
        sys.stdout.flush()
        await serving
    finally:
        await realtime.stop()
        await resources.aclose()


if __name__ == "__main__":
    asyncio.run(main())
