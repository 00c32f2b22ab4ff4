"""Realtime fan-out: 1,000 Socket.IO clients, 200 events a second from another process.

On a fresh loopback PostgreSQL database (``MENUSYNC_BENCH_POSTGRES_URL``, else
``MENUSYNC_TEST_POSTGRES_URL``, else ``postgresql://postgres@127.0.0.1:5432/postgres``): one API
process (the app wrapped with Socket.IO and its relay, as ``menusync api`` serves it), one writer
process writing one event per transaction through ``EventWriter`` (as a worker does) at the given
rate, and one Node process holding the clients (the official socket.io-client from npm, installed
into ``.cache/node``), spread evenly over the companies. Each event carries the writer's wall-clock
time just before its transaction began, so the lag measured by a client covers commit, NOTIFY,
the relay's read and the fan-out. Reports the lag p50/p99 (goal p99 <= 100 ms) and the API
process's CPU (share of one core) and resident memory, idle and under load. Bounded in time; the
database is dropped at the end.

    uv run python -m bench --scenario realtime_fanout [--clients 1000] [--companies 20]
        [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import uvloop
from cryptography.fernet import Fernet

from bench._stack import SECRET, admin_url, say

ROOT = Path(__file__).resolve().parents[1]
NODE_CACHE = ROOT / ".cache" / "node"
CLIENT_VERSION = "4.8.4"
GOAL_P99_MS = 100.0


NODE_CLIENTS = r"""
// Fan-out clients for bench/realtime_fanout.py: N official socket.io-client sockets in one Node
// process. Usage: node clients.cjs URL CLIENTS_JSON
// Prints {"ready": n} once every socket is connected; on "stop" (stdin) prints the lag figures.
"use strict";

const fs = require("fs");
const { io } = require(process.env.SOCKET_IO_CLIENT);

const [url, clientsFile] = process.argv.slice(2);
const clients = JSON.parse(fs.readFileSync(clientsFile, "utf8"));
const lags = [];
const times = [];
const seen = new Map();
let duplicates = 0;
let connected = 0;
let refused = 0;
const sockets = [];
const now = () => performance.timeOrigin + performance.now();

function open(client, index) {
  return new Promise((resolve) => {
    const socket = io(`${url}/sync-progress`, {
      auth: { token: client.token },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    socket.on("connect", () => { connected += 1; resolve(); });
    socket.on("connect_error", () => { refused += 1; resolve(); });
    socket.on("sync-progress", (payload) => {
      const at = now();
      lags.push(at - payload.data.sentAt * 1000);
      times.push(at);
      const key = `${index}:${payload.eventId}`;
      if (seen.has(key)) duplicates += 1;
      seen.set(key, true);
    });
    sockets.push(socket);
  });
}

async function main() {
  for (let i = 0; i < clients.length; i += 50) {
    await Promise.all(clients.slice(i, i + 50).map((c, j) => open(c, i + j)));
  }
  process.stdout.write(JSON.stringify({ ready: connected, refused }) + "\n");
}

process.stdin.on("data", (chunk) => {
  if (!chunk.toString().includes("stop")) return;
  const sorted = lags.slice().sort((a, b) => a - b);
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
  const buckets = {};
  for (let i = 0; i < lags.length; i++) {
    const second = Math.floor((times[i] - times[0]) / 1000);
    (buckets[second] ??= []).push(lags[i]);
  }
  const perSecond = Object.entries(buckets).map(([second, values]) => {
    values.sort((a, b) => a - b);
    return [Number(second), Math.round(values[Math.floor(0.99 * (values.length - 1))])];
  });
  process.stdout.write(JSON.stringify({
    deliveries: sorted.length, duplicates, p50: at(0.5), p99: at(0.99), max: at(1), connected,
    p99PerSecond: perSecond,
  }) + "\n");
  for (const socket of sockets) socket.close();
  process.exit(0);
});

main();
"""
"""The Node program holding the clients (written to a temporary file at run time)."""


def socket_io_client() -> Path:
    module = NODE_CACHE / "node_modules" / "socket.io-client"
    if not (module / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install socket.io-client for the clients")
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(NODE_CACHE),
                "--no-audit",
                "--no-fund",
                "--silent",
                f"socket.io-client@{CLIENT_VERSION}",
            ],
            check=True,
            timeout=300,
        )
    return module


class ProcessMeter:
    """CPU seconds and resident memory of one process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


# ---- the three roles, each run in its own process ----------------------------------------------


async def serve_api() -> None:
    """The API process as ``menusync api`` runs it: the app's own lifespan starts the relay."""
    import uvicorn

    from menusync.app import create_asgi_app
    from menusync.cli import UVICORN_OPTIONS
    from menusync.config import Settings

    app = create_asgi_app(Settings())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    options = {**UVICORN_OPTIONS, "log_level": "warning", "backlog": 2048}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    say(json.dumps({"port": sock.getsockname()[1]}))
    await serving


async def write_events(url: str, companies: list[str], rate: float, seconds: float) -> None:
    from menusync.core.clock import SystemClock
    from menusync.core.db import create_engine, create_sessionmaker, unit_of_work
    from menusync.realtime.events import EventType
    from menusync.realtime.outbox import EventWriter

    engine = create_engine(url, pool_size=4)
    sessions = create_sessionmaker(engine)
    syncs = {company: uuid.uuid4() for company in companies}
    total = int(rate * seconds)
    started = time.perf_counter()
    clock = SystemClock()
    commits: list[float] = []
    for number in range(total):
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        company = companies[number % len(companies)]
        sent_at = time.time()
        async with unit_of_work(sessions) as session:
            await EventWriter(session, clock).emit(
                company,
                EventType.SYNC_PROGRESS,
                {"syncId": str(syncs[company]), "progress": number % 100, "sentAt": sent_at},
                sync_id=syncs[company],
            )
        commits.append((time.time() - sent_at) * 1000)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    commits.sort()
    say(
        json.dumps(
            {
                "written": total,
                "seconds": round(elapsed, 2),
                "commitP50": commits[len(commits) // 2],
                "commitP99": commits[int(len(commits) * 0.99)],
            }
        )
    )


# ---- the orchestration -------------------------------------------------------------------------


async def line_of(process: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    raw = await asyncio.wait_for(process.stdout.readline(), timeout)
    if not raw:
        raise RuntimeError(f"process {process.pid} ended early")
    value: dict[str, Any] = json.loads(raw)
    return value


async def run(args: argparse.Namespace) -> int:
    from menusync.core.security import TokenIssuer
    from menusync.migrations import upgrade_to_head

    module = socket_io_client()
    admin = admin_url()
    name = f"menusync_bench_rt_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    processes: list[asyncio.subprocess.Process] = []
    workdir = Path(tempfile.mkdtemp(prefix="menusync-bench-"))
    try:
        await asyncio.to_thread(upgrade_to_head, url)
        env = {
            **os.environ,
            "MENUSYNC_DATABASE__URL": url,
            "MENUSYNC_AUTH__JWT_SECRET": SECRET,
            "MENUSYNC_SECURITY__ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "MENUSYNC_DATA_DIR": str(workdir),
            "MENUSYNC_LOG__LEVEL": "WARNING",
        }
        me = [sys.executable, "-m", "bench.realtime_fanout"]
        api = await asyncio.create_subprocess_exec(
            *me, "--serve", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        processes.append(api)
        port = (await line_of(api, 30))["port"]
        meter = ProcessMeter(api.pid)

        companies = [f"bench-co-{i:02d}" for i in range(args.companies)]
        issuer = TokenIssuer(algorithm="HS256", key=SECRET)
        now, ttl = datetime.now(UTC), timedelta(hours=1)
        clients = [
            {
                "token": issuer.mint(
                    subject=f"user-{i}",
                    company_id=companies[i % len(companies)],
                    role="company_owner",
                    now=now,
                    ttl=ttl,
                )
            }
            for i in range(args.clients)
        ]
        clients_file = workdir / "clients.json"
        clients_file.write_text(json.dumps(clients))
        node_program = workdir / "clients.cjs"
        node_program.write_text(NODE_CLIENTS)
        connect_started = time.perf_counter()
        node = await asyncio.create_subprocess_exec(
            "node",
            str(node_program),
            f"http://127.0.0.1:{port}",
            str(clients_file),
            env={**os.environ, "SOCKET_IO_CLIENT": str(module)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        processes.append(node)
        ready = await line_of(node, 120)
        connect_seconds = time.perf_counter() - connect_started
        say(
            f"clients: {ready['ready']} connected ({ready['refused']} refused) over "
            f"{args.companies} company rooms in {connect_seconds:.1f} s"
        )
        await asyncio.sleep(1.0)
        idle_cpu, idle_at = meter.cpu_seconds(), time.perf_counter()
        await asyncio.sleep(2.0)
        idle_share = (meter.cpu_seconds() - idle_cpu) / (time.perf_counter() - idle_at)
        idle_rss = meter.rss_mib()

        writer = await asyncio.create_subprocess_exec(
            *me,
            "--write",
            url,
            ",".join(companies),
            str(args.rate),
            str(args.seconds),
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        processes.append(writer)
        node_meter = ProcessMeter(node.pid)
        node_before = node_meter.cpu_seconds()
        cpu_before, load_at = meter.cpu_seconds(), time.perf_counter()
        peak_rss = idle_rss
        while writer.returncode is None:
            peak_rss = max(peak_rss, meter.rss_mib())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer.wait(), 0.5)
        written = await line_of(writer, 5) if writer.stdout else {}
        await asyncio.sleep(1.0)  # let the last deliveries land
        load_seconds = time.perf_counter() - load_at
        load_share = (meter.cpu_seconds() - cpu_before) / load_seconds
        node_share = (node_meter.cpu_seconds() - node_before) / load_seconds
        assert node.stdin is not None
        node.stdin.write(b"stop\n")
        await node.stdin.drain()
        figures = await line_of(node, 30)

        expected = written["written"] * (args.clients // args.companies)
        say(
            f"events: {written['written']} written in {written['seconds']} s "
            f"({written['written'] / written['seconds']:.0f}/s), "
            f"{figures['deliveries']} deliveries of {expected} expected, "
            f"{figures['duplicates']} duplicates; the writer's transactions took "
            f"p50 {written['commitP50']:.1f} ms, p99 {written['commitP99']:.1f} ms"
        )
        say(
            f"delivery lag: p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, "
            f"max {figures['max']:.1f} ms (goal p99 <= {GOAL_P99_MS:.0f} ms)"
        )
        say(
            "p99 per second of the run (ms): "
            + " ".join(f"{ms}" for _, ms in figures["p99PerSecond"])
        )
        say(
            f"API process: CPU {idle_share * 100:.0f} % of a core idle with the clients "
            f"connected, {load_share * 100:.0f} % under load; RSS {idle_rss:.0f} MiB idle, "
            f"{peak_rss:.0f} MiB peak"
        )
        say(
            f"(the Node process holding the clients used {node_share * 100:.0f} % of a core; "
            f"the machine has {os.cpu_count()} cores for PostgreSQL, API, writer and clients)"
        )
        complete = figures["deliveries"] == expected and figures["duplicates"] == 0
        return 0 if complete and figures["p99"] <= GOAL_P99_MS else 1
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        say(f"database {name} dropped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench realtime_fanout", description=__doc__)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--companies", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="Events written per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="How long to write")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        # uvicorn.run (menusync api) runs on uvloop when it is installed, as it is here.
        uvloop.run(serve_api())
        return 0
    if args.write:
        url, companies, rate, seconds = args.write
        asyncio.run(write_events(url, companies.split(","), float(rate), float(seconds)))
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
