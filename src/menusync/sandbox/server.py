"""Run all three simulators with uvicorn (what ``menusync sandbox`` calls)."""

from __future__ import annotations

import uvicorn

from menusync.sandbox.app import create_sandbox_app
from menusync.sandbox.settings import SandboxSettings


def serve(
    host: str = "127.0.0.1", port: int = 9000, settings: SandboxSettings | None = None
) -> None:
    """Serve ``/careem``, ``/talabat`` and ``/deliveroo`` on ``host:port`` until interrupted."""
    uvicorn.run(create_sandbox_app(settings), host=host, port=port, log_level="info")
