"""What the sync engine scenarios share: a throw-away PostgreSQL database, the menusync processes
(API, workers, sandbox) on loopback, Careem stores seeded straight into the database, a backlog
of jobs, and the sandbox's control API.

Every process is started with its output in a temporary directory and stopped (SIGTERM, then
SIGKILL after a grace period) by :meth:`Processes.stop_all`, which the scenarios call from
``finally``. The database is dropped at the end whatever happens.

``python -m bench._stack sandbox PORT`` serves the three simulators exactly as
``menusync sandbox --fast`` does (same app, same :meth:`SandboxSettings.fast`), minus uvicorn's
per-request access log, which would otherwise charge the sandbox's own logging to the engine on a
small machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx2
import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}  # "": the local socket
SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789abcdef"
PLATFORM = "careem"
CAREEM_WEBHOOK_KEY = "sandbox-careem-api-key"


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    position = q * (len(ordered) - 1)
    lo = int(position)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def load() -> str:
    """The load averages (1, 5, 15 min) and core count, for the record."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def admin_url() -> str:
    url = os.environ.get("MENUSYNC_BENCH_POSTGRES_URL") or os.environ.get(
        "MENUSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    if (make_url(url).host or "") not in LOOPBACK:
        raise SystemExit("refusing to benchmark on a non-loopback PostgreSQL server")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Database:
    name: str
    url: str
    """SQLAlchemy async URL (``postgresql+psycopg://``), what menusync reads."""
    dsn: str
    """libpq URL, for psycopg."""
    engine: AsyncEngine
    """A small pool for the scenario's own seeding and counting."""


@contextlib.asynccontextmanager
async def database(tag: str) -> AsyncIterator[Database]:
    """A fresh database migrated to head, dropped (with its connections) at the end."""
    from menusync.migrations import upgrade_to_head

    admin = admin_url()
    name = f"menusync_bench_{tag}_{os.getpid()}"
    dsn = f"{admin.rsplit('/', 1)[0]}/{name}"
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine: AsyncEngine | None = None
    try:
        await asyncio.to_thread(upgrade_to_head, url)
        engine = create_async_engine(url, pool_size=2, max_overflow=2)
        yield Database(name, url, dsn, engine)
    finally:
        if engine is not None:
            await engine.dispose()
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        say(f"database {name} dropped")


# ---- processes ---------------------------------------------------------------------------------


@dataclass
class Running:
    name: str
    process: asyncio.subprocess.Process
    log: Path


class Processes:
    """Child processes of one scenario, their output in ``workdir``; stopped by ``stop_all``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Running] = []
        self._files: list[IO[bytes]] = []

    async def start(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> Running:
        log = self.workdir / f"{name}.log"
        handle = log.open("wb")
        self._files.append(handle)
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=handle,
            stderr=asyncio.subprocess.STDOUT,
        )
        running = Running(name, process, log)
        self.running.append(running)
        return running

    def check_alive(self) -> None:
        for running in self.running:
            if running.process.returncode is not None:
                raise RuntimeError(
                    f"{running.name} exited with {running.process.returncode}:\n"
                    + self.tail(running)
                )

    @staticmethod
    def tail(running: Running, lines: int = 30) -> str:
        try:
            return "\n".join(running.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, running: Running, grace: float = 15.0) -> None:
        process = running.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if running in self.running:
            self.running.remove(running)

    async def stop_all(self) -> None:
        await asyncio.gather(
            *(self.stop(running) for running in list(reversed(self.running))),
            return_exceptions=True,
        )
        self.running.clear()
        for handle in self._files:
            handle.close()
        self._files.clear()


def menusync_env(
    db: Database,
    workdir: Path,
    key: str,
    *,
    public_url: str,
    engine: Mapping[str, Any],
    pool_size: int = 8,
) -> dict[str, str]:
    """Environment of a menusync process (API or worker) for this scenario's database."""
    env = {
        "MENUSYNC_DATABASE__URL": db.url,
        "MENUSYNC_DATABASE__POOL_SIZE": str(pool_size),
        "MENUSYNC_AUTH__JWT_SECRET": SECRET,
        "MENUSYNC_SECURITY__ENCRYPTION_KEY": key,
        "MENUSYNC_DATA_DIR": str(workdir),
        "MENUSYNC_LOG__LEVEL": "WARNING",
        "MENUSYNC_PUBLIC_URL": public_url,
    }

    def flatten(prefix: str, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            if isinstance(value, Mapping):
                flatten(f"{prefix}__{name.upper()}", value)
            else:
                env[f"{prefix}__{name.upper()}"] = str(value)

    flatten("MENUSYNC_ENGINE", engine)
    return env


def new_key() -> str:
    return Fernet.generate_key().decode()


async def wait_http(url: str, processes: Processes, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx2.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            processes.check_alive()
            with contextlib.suppress(httpx2.HTTPError):
                if (await client.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


async def start_sandbox(processes: Processes, port: int) -> str:
    """The simulators (fast: no processing or redelivery delays) on ``port``; their base URL."""
    await processes.start("sandbox", [sys.executable, "-m", "bench._stack", "sandbox", str(port)])
    base = f"http://127.0.0.1:{port}"
    await wait_http(f"{base}/", processes)
    return base


async def start_api(processes: Processes, port: int, env: Mapping[str, str]) -> str:
    """``menusync api`` on ``port``; its base URL."""
    await processes.start(
        "api",
        [sys.executable, "-m", "menusync.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    await wait_http(f"{base}/healthz", processes)
    return base


async def start_worker(
    processes: Processes,
    name: str,
    env: Mapping[str, str],
    concurrency: int,
    *,
    profile_to: Path | None = None,
) -> Running:
    """``menusync worker --concurrency N`` (optionally under cProfile, written at exit)."""
    prefix = [sys.executable]
    if profile_to is not None:
        prefix += ["-m", "cProfile", "-o", str(profile_to)]
    return await processes.start(
        name, [*prefix, "-m", "menusync.cli", "worker", "--concurrency", str(concurrency)], env
    )


async def wait_workers(db: Database, processes: Processes, count: int, timeout: float = 30) -> None:
    """Until ``count`` workers have written their first heartbeat (their loops are running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        async with db.engine.connect() as conn:
            seen = (await conn.execute(text("SELECT count(*) FROM worker_heartbeats"))).scalar()
        if (seen or 0) >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{count} workers did not start within {timeout:.0f} s")


@contextlib.asynccontextmanager
async def scratch() -> AsyncIterator[tuple[Path, Processes]]:
    """A temporary directory and the processes started in it, all gone at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="menusync-bench-"))
    processes = Processes(workdir)
    try:
        yield workdir, processes
    finally:
        await processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


class CpuMeter:
    """CPU seconds of a set of processes (from /proc), and of the whole machine."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.started: dict[str, float] = {}
        self.machine: tuple[float, float] = (0.0, 0.0)
        self.at = 0.0

    def _cpu(self, pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def _machine(self) -> tuple[float, float]:
        """(busy, total) CPU seconds of the machine since boot."""
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]
        return (sum(values) - idle) / self.ticks, sum(values) / self.ticks

    def start(self) -> None:
        self.started = {
            name: cpu for name, pid in self.pids.items() if (cpu := self._cpu(pid)) is not None
        }
        self.machine = self._machine()
        self.at = time.monotonic()

    def shares(self) -> tuple[dict[str, float], float]:
        """(share of one core used by each process, share of the whole machine busy) so far."""
        elapsed = time.monotonic() - self.at
        shares = {}
        for name, before in self.started.items():
            now = self._cpu(self.pids[name])
            if now is not None and elapsed > 0:
                shares[name] = (now - before) / elapsed
        busy, total = self._machine()
        machine = (busy - self.machine[0]) / max(total - self.machine[1], 1e-9)
        return shares, machine


async def postgres_backends(db: Database) -> dict[str, int]:
    """The server processes currently connected to this scenario's database."""
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                {"name": db.name},
            )
        ).all()
    return {f"pg-{row[0]}": int(row[0]) for row in rows}


class ActivitySampler:
    """What this database's server sessions are doing, sampled in the background: running a
    statement, waiting on a lock, idle inside a transaction (waiting for its client), idle."""

    def __init__(self, db: Database, every: float = 0.05) -> None:
        self.db = db
        self.every = every
        self.samples: dict[str, int] = {}
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.db.engine.connect() as conn:
            while True:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                            "WHERE datname = :name AND pid <> pg_backend_pid() "
                            "AND backend_type = 'client backend'"
                        ),
                        {"name": self.db.name},
                    )
                ).all()
                await conn.commit()
                self.rounds += 1
                for state, kind, event in rows:
                    if state == "active" and kind in (None, "CPU"):
                        label = "running a statement"
                    elif state == "active":
                        label = f"waiting: {kind}/{event}"
                    elif state == "idle in transaction":
                        label = "idle in transaction (waiting for its client)"
                    else:
                        label = str(state)
                    self.samples[label] = self.samples.get(label, 0) + 1
                await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        """The average number of sessions in each state."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        rounds = max(self.rounds, 1)
        return {
            label: count / rounds
            for label, count in sorted(self.samples.items(), key=lambda kv: -kv[1])
        }


# ---- the sandbox's control API -----------------------------------------------------------------


class SandboxControl:
    def __init__(self, base: str, platform: str = PLATFORM) -> None:
        self.base = base
        self.platform = platform
        self.client = httpx2.AsyncClient(base_url=f"{base}/{platform}/__sandbox", timeout=30)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _ok(self, response: httpx2.Response) -> Any:
        if response.status_code >= 300:
            raise RuntimeError(f"sandbox control: {response.status_code} {response.text}")
        return response.json() if response.content else None

    async def set_limits(self, limits: dict[str, Any]) -> Any:
        """Replace every budget (``{}``: all off)."""
        return await self._ok(await self.client.put("/limits", json=limits))

    async def set_webhook(self, url: str, api_key: str = CAREEM_WEBHOOK_KEY) -> Any:
        return await self._ok(
            await self.client.put("/webhook", json={"url": url, "apiKey": api_key})
        )

    async def stats(self) -> dict[str, Any]:
        value: dict[str, Any] = await self._ok(await self.client.get("/stats"))
        return value

    async def calls(self, limit: int = 10_000) -> list[dict[str, Any]]:
        value: dict[str, Any] = await self._ok(
            await self.client.get("/calls", params={"limit": limit})
        )
        calls: list[dict[str, Any]] = value["calls"]
        return calls


def responses_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Responses by status sent between two ``/stats`` readings."""
    old = before.get("responses", {})
    return {
        status: count - old.get(status, 0)
        for status, count in after.get("responses", {}).items()
        if count - old.get(status, 0)
    }


def parse_at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---- seeding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    company_id: str
    menu_id: uuid.UUID
    store_key: str


async def seed_careem_stores(
    db: Database, workdir: Path, key: str, sandbox_base: str, count: int, prefix: str = "bench-co"
) -> list[Store]:
    """``count`` companies, each with the sample menu and a Careem connection to its own branch
    of the sandbox (same client credentials, so one token per worker process serves them all).

    The first company goes through the real services (menu validation, connection encryption);
    the others are copies of its rows with their own ids and branch.
    """
    from menusync.config import Settings
    from menusync.core.resources import build_resources
    from menusync.demo import demo_connections
    from menusync.menus.dependencies import build_menu_service
    from menusync.menus.models import Menu
    from menusync.menus.samples import sample_menu
    from menusync.menus.schemas import MenuCreate
    from menusync.platforms.connections import ConnectionService
    from menusync.platforms.models import PlatformConnection
    from menusync.platforms.registry import default_registry
    from menusync.platforms.repository import ConnectionRepository
    from menusync.platforms.runtime import PlatformRuntime
    from menusync.platforms.tokens import TokenCache
    from menusync.sandbox.settings import SandboxSettings
    from menusync.tenancy.audit import AuditTrail
    from menusync.tenancy.context import AuthContext
    from menusync.tenancy.roles import Role

    settings = Settings(
        data_dir=workdir,
        database={"url": db.url, "pool_size": 2},
        auth={"jwt_secret": SECRET},
        security={"encryption_key": key},
    )
    resources = build_resources(settings, engine=db.engine)
    runtime = PlatformRuntime(default_registry(), TokenCache(resources.clock))
    companies = [f"{prefix}-{index:05d}" for index in range(count)]
    branches = [f"bench-branch-{index:05d}" for index in range(count)]
    values = demo_connections(sandbox_base, SandboxSettings())[PLATFORM]
    first = AuthContext(user_id="bench", company_id=companies[0], role=Role.COMPANY_OWNER)
    async with resources.unit_of_work() as session:
        menu = await build_menu_service(session, resources).create_menu(
            first, MenuCreate(menu=sample_menu(), external_id="bench-menu")
        )
        connection = await ConnectionService(
            ConnectionRepository(session),
            runtime.gateway(resources),
            AuditTrail(session, resources.clock),
            resources.clock,
        ).set_connection(first, PLATFORM, {**values, "branchId": branches[0]})
        template_menu = {c.key: getattr(menu, c.key) for c in Menu.__table__.columns}
        template_conn = {
            c.key: getattr(connection, c.key) for c in PlatformConnection.__table__.columns
        }
    rows_menu, rows_conn = [], []
    for company, branch in zip(companies[1:], branches[1:], strict=True):
        rows_menu.append({**template_menu, "id": uuid.uuid4(), "company_id": company})
        rows_conn.append(
            {
                **template_conn,
                "id": uuid.uuid4(),
                "company_id": company,
                "store_key": branch,
                "settings": {**template_conn["settings"], "branch_id": branch},
            }
        )
    if rows_menu:
        async with db.engine.begin() as conn:
            await conn.execute(insert(Menu), rows_menu)
            await conn.execute(insert(PlatformConnection), rows_conn)
    await resources.http.aclose()
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(Menu.company_id, Menu.id).where(Menu.company_id.in_(companies))
            )
        ).all()
    menus: dict[str, uuid.UUID] = {row[0]: row[1] for row in rows}
    return [
        Store(company, menus[company], branch)
        for company, branch in zip(companies, branches, strict=True)
    ]


async def enqueue(
    db: Database,
    stores: list[Store],
    jobs: int,
    tag: str = "",
    *,
    platform: str = PLATFORM,
    configuration: Callable[[int], dict[str, Any]] | None = None,
) -> None:
    """``jobs`` forced full-menu syncs, round-robin over ``stores`` (claimed in that order), as
    ``SyncService.request_sync`` queues them; then the workers are woken (NOTIFY)."""
    from menusync.sync.models import SyncJob

    now = datetime.now(UTC)
    rows = []
    for index in range(jobs):
        store = stores[index % len(stores)]
        rows.append(
            {
                "id": uuid.uuid4(),
                "company_id": store.company_id,
                "menu_id": store.menu_id,
                "menu_version": 1,
                "platform": platform,
                "store_key": store.store_key,
                "kind": "menu",
                "status": "pending",
                "priority": 5,
                "sequence": 0,
                "attempt": 0,
                "max_attempts": 4,
                "next_attempt_at": now,
                "request": {
                    "configuration": configuration(index) if configuration else {},
                    "itemIds": None,
                },
                "trigger": "manual",
                "initiated_by": f"bench{tag}",
                "stage": "queued",
                "message": "Queued",
                "progress": 0,
                "items_total": 0,
                "items_processed": 0,
                "is_forced": True,
                "is_unchanged": False,
                "cancel_requested": False,
                "created_at": now + timedelta(microseconds=index),
                "updated_at": now,
            }
        )
    async with db.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            await conn.execute(insert(SyncJob), rows[start : start + 1000])
        await conn.execute(text("NOTIFY menusync_jobs"))


async def job_counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT status, count(*) FROM platform_sync_logs GROUP BY status")
            )
        ).all()
    return {status: int(count) for status, count in rows}


FINISHED = ("completed", "failed", "cancelled")


async def wait_finished(
    db: Database, processes: Processes, total: int, timeout: float, every: float = 0.1
) -> tuple[dict[str, int], float]:
    """Poll until ``total`` jobs are finished (or ``timeout``); (counts, seconds waited)."""
    started = time.monotonic()
    counts: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        processes.check_alive()
        counts = await job_counts(db)
        if sum(counts.get(status, 0) for status in FINISHED) >= total:
            break
        await asyncio.sleep(every)
    return counts, time.monotonic() - started


# ---- the quiet sandbox server (``python -m bench._stack sandbox PORT``) -------------------------


def serve_sandbox(port: int) -> None:
    import uvicorn

    from menusync.sandbox.app import create_sandbox_app
    from menusync.sandbox.settings import SandboxSettings

    app = create_sandbox_app(SandboxSettings.fast())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["sandbox"]:
        serve_sandbox(int(sys.argv[2]))
    else:
        raise SystemExit("usage: python -m bench._stack sandbox PORT")
