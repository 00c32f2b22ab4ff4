"""An app whose clock is frozen at ``NOW``, and a way to write history rows at fixed ages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.clock import FrozenClock
from menusync.core.models import Base
from menusync.core.resources import build_resources
from menusync.platforms.models import IntegrationLog
from menusync.sync.models import SyncJob

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)

AddRows = Callable[..., Awaitable[None]]


def job(
    status: str = "completed",
    platform: str = "careem",
    *,
    ago: timedelta,
    duration_ms: int | None = None,
    attempt: int = 1,
    error_code: str | None = None,
    retryable: bool | None = None,
    company: str = "acme",
) -> SyncJob:
    created = NOW - ago
    return SyncJob(
        company_id=company,
        platform=platform,
        store_key=f"{platform}:store-1",
        kind="menu",
        status=status,
        attempt=attempt,
        request={},
        error_code=error_code,
        error_retryable=retryable,
        duration_ms=duration_ms,
        created_at=created,
        updated_at=created,
        next_attempt_at=created,
    )


def call(
    platform: str = "careem",
    *,
    ago: timedelta,
    duration_ms: int,
    status_code: int | None = 200,
    company: str = "acme",
) -> IntegrationLog:
    return IntegrationLog(
        company_id=company,
        platform=platform,
        operation="push_menu",
        method="POST",
        url=f"https://{platform}.test/menu",
        status_code=status_code,
        duration_ms=duration_ms,
        created_at=NOW - ago,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def api(
    settings: Settings, engine: AsyncEngine, clock: FrozenClock
) -> AsyncIterator[httpx2.AsyncClient]:
    resources = build_resources(settings, engine=engine, clock=clock)
    app = create_app(settings, resources=resources)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://menusync.test") as http:
        yield http
    await resources.http.aclose()


@pytest.fixture
def add(sessions: async_sessionmaker[AsyncSession]) -> AddRows:
    async def add_rows(*rows: Base, **_: Any) -> None:
        async with sessions() as session, session.begin():
            session.add_all(rows)

    return add_rows
