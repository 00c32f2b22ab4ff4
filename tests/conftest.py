"""Shared fixtures: a database of each kind, migrated once per run, clean for every test.

Every test that asks for ``db_url`` (or ``engine``/``sessions``) runs twice: on SQLite and on
PostgreSQL. PostgreSQL is the server at ``MENUSYNC_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432,
user postgres); a fresh database is created for the run and dropped after it, so existing
databases are never touched. When it is unreachable the PostgreSQL half is skipped, except with
``MENUSYNC_TEST_REQUIRE_POSTGRES=1`` (CI), where that is an error.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.db import create_engine, create_sessionmaker
from menusync.core.resources import Resources, build_resources
from menusync.migrations import upgrade_to_head
from menusync.models import metadata
from tests.support import TEST_SECRET

POSTGRES_ADMIN_URL = os.environ.get(
    "MENUSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("MENUSYNC_TEST_REQUIRE_POSTGRES") == "1"


def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {exc}".strip()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated to head; dropped afterwards."""
    problem = _postgres_problem()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(f"{problem} (MENUSYNC_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)
    name = f"menusync_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    upgrade_to_head(url)
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test copies it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade_to_head(f"sqlite+aiosqlite:///{path}")
    return path


_TABLES = [table.name for table in reversed(metadata.sorted_tables)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A clean, migrated database: SQLite (a copy of the template) or PostgreSQL (truncated)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "menusync.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_url")
    sync_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(sync_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE")
    yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


async def table_count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


# ---- the API -------------------------------------------------------------------------------


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database={"url": db_url},
        auth={"jwt_secret": TEST_SECRET},
        security={"encryption_key": Fernet.generate_key().decode()},
        public_url="http://menusync.test",
    )


@pytest.fixture
async def resources(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Resources]:
    built = build_resources(settings, engine=engine)
    yield built
    await built.http.aclose()


@pytest.fixture
async def client(settings: Settings, resources: Resources) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(settings, resources=resources)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://menusync.test") as http:
        yield http
