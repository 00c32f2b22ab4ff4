"""What a process builds once and shares: settings, database, clock, token verifier, secrets box,
HTTP client. The app lifespan, the worker and CLI commands build it the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx2
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from menusync.config import Settings
from menusync.core.clock import Clock, SystemClock
from menusync.core.db import create_engine, create_sessionmaker
from menusync.core.security import SecretBox, TokenIssuer, TokenVerifier
from menusync.core.signals import Signals


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    secret_box: SecretBox
    clock: Clock
    http: httpx2.AsyncClient
    signals: Signals = field(default_factory=lambda: Signals())

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed at the end (then waiting readers are woken), rolled back
        on error. Every owner of a unit of work (request, job step, CLI command) uses this."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            wake = session.info.pop("wake", set())
            if wake:
                self.signals.wake(wake)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()


def build_verifier(settings: Settings) -> TokenVerifier:
    auth = settings.auth
    key = (
        auth.public_key if auth.algorithm == "RS256" and auth.public_key else settings.jwt_secret()
    )
    return TokenVerifier(
        algorithm=auth.algorithm,
        key=key,
        issuer=auth.issuer,
        audience=auth.audience,
        leeway_seconds=auth.leeway_seconds,
    )


def build_issuer(settings: Settings) -> TokenIssuer:
    auth = settings.auth
    if auth.algorithm == "RS256":
        if auth.private_key is None:
            raise ValueError("auth.private_key is required to mint RS256 tokens")
        key = auth.private_key.get_secret_value()
    else:
        key = settings.jwt_secret()
    return TokenIssuer(
        algorithm=auth.algorithm, key=key, issuer=auth.issuer, audience=auth.audience
    )


def build_resources(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http: httpx2.AsyncClient | None = None,
    engine: AsyncEngine | None = None,
) -> Resources:
    engine = engine or create_engine(
        settings.database_url,
        echo=settings.database.echo,
        busy_timeout_ms=settings.database.busy_timeout_ms,
        pool_size=settings.database.pool_size,
    )
    return Resources(
        settings=settings,
        engine=engine,
        sessions=create_sessionmaker(engine),
        verifier=build_verifier(settings),
        secret_box=SecretBox(settings.encryption_keys()),
        clock=clock or SystemClock(),
        http=http or httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, connect=5.0)),
    )
