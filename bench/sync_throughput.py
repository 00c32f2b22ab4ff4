"""Throughput: menu syncs per second, PostgreSQL, 2 worker processes, against an unlimited
sandbox (goal >= 300/s); then the same engine against the in-process fake platform (no HTTP, no
webhook), to tell the engine's own cost from the sandbox's; then a cProfile of one worker.

Topology, all on loopback, on a fresh PostgreSQL database (``MENUSYNC_BENCH_POSTGRES_URL``, else
``MENUSYNC_TEST_POSTGRES_URL``, else ``postgresql://postgres@127.0.0.1:5432/postgres``):

1. *Sandbox pass.* The simulators (``menusync sandbox --fast``'s app, quiet) with every Careem
   budget off (``PUT /careem/__sandbox/limits {}``); ``menusync api`` receiving Careem's catalog
   webhooks (a sync completes when its webhook does); ``--workers`` x ``menusync worker
   --concurrency N`` with engine budgets so large they never bind. ``--stores`` companies, each
   with the sample menu (about 60 items) and a Careem connection to its own branch. A warm-up of
   one job per slot, then ``--jobs`` forced syncs queued at once, round-robin over the stores.
   A sync here is: claim, prepare (menu -> Careem payload, hash), breaker and limiter,
   ``PUT /catalogs``, record; then the sandbox's webhook to the API, which completes the job.
2. *Fake pass.* The same jobs shape against ``tests/sync/fake_platform.py`` in
   ``tests/sync/proc_worker.py`` worker processes (a real ``Worker``; the push appends one line to
   a file and completes at once): the engine alone.
3. *Profile.* One worker of the sandbox pass run under cProfile for ``--profile-jobs`` syncs
   (the other worker runs normally); the top of the profile is printed.

Reported for each pass: syncs finished per second over the whole backlog and over its middle
80 %, and the CPU used by each process (share of one core) and by the machine, so the figures
can be read against the 2 cores every process (and PostgreSQL) shares here.

    uv run python -m bench --scenario sync_throughput [--jobs 1000] [--stores 200]
        [--workers 2] [--concurrency 16] [--seconds 35] [--no-fake] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pstats
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bench._stack import (
    FINISHED,
    ActivitySampler,
    CpuMeter,
    Database,
    Processes,
    SandboxControl,
    Store,
    database,
    enqueue,
    free_port,
    job_counts,
    load,
    menusync_env,
    new_key,
    postgres_backends,
    responses_delta,
    say,
    scratch,
    seed_careem_stores,
    start_api,
    start_sandbox,
    start_worker,
    wait_finished,
    wait_workers,
)

GOAL = 300.0


def finished(counts: dict[str, int]) -> int:
    return sum(counts.get(status, 0) for status in FINISHED)


async def measure(
    db: Database, processes: Processes, pids: dict[str, int], base: int, jobs: int, seconds: float
) -> dict[str, Any]:
    """Follow the backlog of ``jobs`` (on top of ``base`` finished ones) until it is done or
    ``seconds`` pass; the rates and CPU shares."""
    meter = CpuMeter({**pids, **(await postgres_backends(db))})
    meter.start()
    sampler = ActivitySampler(db)
    sampler.start()
    started = time.monotonic()
    timeline: list[tuple[float, int]] = []
    counts: dict[str, int] = {}
    while time.monotonic() - started < seconds:
        processes.check_alive()
        counts = await job_counts(db)
        done = finished(counts) - base
        timeline.append((time.monotonic() - started, done))
        if done >= jobs:
            break
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - started
    shares, machine = meter.shares()
    sessions = await sampler.stop()
    done = timeline[-1][1] if timeline else 0

    def crossing(fraction: float) -> float | None:
        target = fraction * jobs
        return next((at for at, count in timeline if count >= target), None)

    lo, hi = crossing(0.1), crossing(0.9)
    middle = 0.8 * jobs / (hi - lo) if lo is not None and hi is not None and hi > lo else None
    postgres = sum(share for name, share in shares.items() if name.startswith("pg-"))
    return {
        "done": done,
        "elapsed": elapsed,
        "rate": done / elapsed if elapsed else 0.0,
        "middle": middle,
        "counts": counts,
        "cpu": {name: share for name, share in shares.items() if not name.startswith("pg-")},
        "postgres": postgres,
        "machine": machine,
        "sessions": sessions,
    }


def report(label: str, figures: dict[str, Any], jobs: int) -> None:
    middle = f"{figures['middle']:.1f}/s" if figures["middle"] else "n/a"
    say(
        f"{label}: {figures['done']} of {jobs} syncs finished in {figures['elapsed']:.1f} s: "
        f"{figures['rate']:.1f} syncs/s overall, {middle} over the middle 80 % "
        f"(goal >= {GOAL:.0f}/s); jobs {figures['counts']}"
    )
    cpu = ", ".join(f"{name} {share * 100:.0f} %" for name, share in figures["cpu"].items())
    say(
        f"  CPU (share of one core): {cpu}, PostgreSQL backends {figures['postgres'] * 100:.0f} %;"
        f" machine {figures['machine'] * 100:.0f} % busy ({load()})"
    )
    sessions = ", ".join(
        f"{label} {n:.1f}" for label, n in figures["sessions"].items() if n >= 0.05
    )
    say(f"  PostgreSQL sessions of this database, on average: {sessions}")


def _where(filename: str, line: int, function: str) -> str:
    return f"{filename.split('site-packages/')[-1].split('/src/')[-1]}:{line}({function})"


def print_profile(path: Path, top: int) -> None:
    if not path.exists():
        say(f"  (no profile written at {path})")
        return
    stats = pstats.Stats(str(path))
    entries = getattr(stats, "stats", {})
    idle = sum(
        v[2] for k, v in entries.items() if k[2].endswith("'poll' of 'select.epoll' objects>")
    )
    total = max(getattr(stats, "total_tt", 0.0) - idle, 1e-9)
    say(
        f"  profile of one worker (main thread, whole process life): {total:.1f} s busy "
        f"(+ {idle:.1f} s idle in epoll)"
    )
    rows = [
        (tottime, cumtime, calls, _where(*func))
        for func, (_cc, calls, tottime, cumtime, _callers) in entries.items()
        if "'poll' of 'select.epoll'" not in func[2]
    ]
    say(f"  top {top} by own time: own s, % of busy, cumulative s, calls, function")
    for tottime, cumtime, calls, name in sorted(rows, reverse=True)[:top]:
        say(
            f"    {tottime:6.2f} {tottime / total * 100:5.1f} %  {cumtime:7.2f}  {calls:>8}  {name}"
        )
    # Who calls the costliest functions.
    costly = sorted(
        (kv for kv in entries.items() if "'poll' of 'select.epoll'" not in kv[0][2]),
        key=lambda kv: kv[1][2],
        reverse=True,
    )
    for func, (_cc, _calls, tottime, _cum, callers) in costly[:4]:
        parents = sorted(callers.items(), key=lambda kv: kv[1][3], reverse=True)[:4]
        names = "; ".join(f"{_where(*caller)} {value[3]:.2f} s" for caller, value in parents)
        say(f"  callers of {func[2]} ({tottime:.2f} s): {names}")
    ours = [row for row in rows if row[3].startswith("menusync/")]
    say(
        f"  top {top} menusync functions by cumulative time (coroutines: wall time including "
        "their awaits, summed over concurrent jobs, so it shows where jobs spend their time)"
    )
    for _tottime, cumtime, calls, name in sorted(ours, key=lambda r: r[1], reverse=True)[:top]:
        say(f"    {cumtime:8.2f} s  {calls:>8}  {name}")


async def fake_pass(
    db: Database, workdir: Path, processes: Processes, args: argparse.Namespace, menu: Store
) -> None:
    from menusync.core.security import SecretBox
    from menusync.platforms.models import PlatformConnection
    from tests.sync.proc_worker import TEST_KEY

    company = "bench-fake"
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO menus (id, company_id, branch_id, external_id, name, document, "
                "version, content_hash, created_by, updated_by, created_at, updated_at) "
                "SELECT :id, :company, branch_id, external_id, name, document, version, "
                "content_hash, created_by, updated_by, created_at, updated_at "
                "FROM menus WHERE id = :template"
            ),
            {"id": uuid.uuid4(), "company": company, "template": menu.menu_id},
        )
        menu_id = (
            await conn.execute(text("SELECT id FROM menus WHERE company_id = :c"), {"c": company})
        ).scalar_one()
        await conn.execute(
            insert(PlatformConnection),
            [
                {
                    "id": uuid.uuid4(),
                    "company_id": company,
                    "platform": "fake",
                    "credentials_encrypted": SecretBox([TEST_KEY]).seal({}),
                    "settings": {
                        "store": "fake-store",
                        "log_path": str(workdir / "fake-pushes.log"),
                        "delay_seconds": 0.0,
                    },
                    "store_key": "fake-store",
                    "is_enabled": True,
                    "status": "connected",
                }
            ],
        )
    fake_dir = workdir / "fake"
    fake_dir.mkdir()
    pids = {}
    for index in range(args.workers):
        running = await processes.start(
            f"fake-worker-{index}",
            [
                sys.executable,
                "-m",
                "tests.sync.proc_worker",
                db.url,
                str(fake_dir),
                str(args.concurrency),
                "30",
            ],
            {"MENUSYNC_LOG__LEVEL": "WARNING"},
        )
        pids[running.name] = running.process.pid
    deadline = time.monotonic() + 30
    while len(list(fake_dir.glob("ready-*"))) < args.workers:
        processes.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError("the fake-platform workers did not start")
        await asyncio.sleep(0.1)
    # One job per (fake) store, and a configuration of its own, as the test does: no two jobs
    # share a target, and none shares the runner's payload cache (the sandbox pass misses it
    # too: more stores than cache entries, round-robin).
    targets = [Store(company, menu_id, f"fake-store-{i:05d}") for i in range(args.jobs)]
    base = finished(await job_counts(db))
    await enqueue(
        db,
        targets,
        args.jobs,
        "-fake",
        platform="fake",
        configuration=lambda index: {"marker": f"job-{index:05d}"},
    )
    figures = await measure(db, processes, pids, base, args.jobs, args.seconds)
    report("fake platform (engine only, no HTTP)", figures, args.jobs)


async def run(args: argparse.Namespace) -> int:
    say(load())
    rate = 0.0
    async with database("tput") as db, scratch() as (workdir, processes):
        key = new_key()
        api_port = free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        sandbox = await start_sandbox(processes, free_port())
        control = SandboxControl(sandbox)
        try:
            await control.set_limits({})
            await control.set_webhook(f"{api_url}/api/v1/platform-sync/webhook/careem")
            seeded = time.monotonic()
            stores = await seed_careem_stores(db, workdir, key, sandbox, args.stores)
            say(f"seeded {len(stores)} stores in {time.monotonic() - seeded:.1f} s")
            engine = {
                "concurrency": args.concurrency,
                "platforms": {
                    "careem": {"requests_per_minute": 10_000_000, "per_store_scale": 1_000_000}
                },
            }
            env = menusync_env(
                db, workdir, key, public_url=api_url, engine=engine, pool_size=args.concurrency + 4
            )
            await start_api(processes, api_port, env)
            workers = [
                await start_worker(processes, f"worker-{i}", env, args.concurrency)
                for i in range(args.workers)
            ]
            await wait_workers(db, processes, args.workers)
            warm = args.workers * args.concurrency
            await enqueue(db, stores, warm, "-warmup")
            await wait_finished(db, processes, warm, 30)
            pids = {running.name: running.process.pid for running in processes.running}
            before = await control.stats()
            base = finished(await job_counts(db))
            say(
                f"sandbox pass: {args.workers} workers x concurrency {args.concurrency}, "
                f"{args.jobs} syncs over {len(stores)} stores (warm-up of {warm} done)"
            )
            await enqueue(db, stores, args.jobs)
            figures = await measure(db, processes, pids, base, args.jobs, args.seconds)
            rate = figures["middle"] or figures["rate"]
            after = await control.stats()
            report("sandbox (HTTP + webhook)", figures, args.jobs)
            say(
                f"  sandbox: {json.dumps(responses_delta(before, after))} responses, webhooks "
                f"{after['webhooks']['delivered'] - before['webhooks']['delivered']} delivered"
            )
            for worker in workers:
                await processes.stop(worker)
            async with db.engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE platform_sync_logs SET status = 'cancelled', lease_owner = NULL "
                        "WHERE status NOT IN ('completed', 'failed', 'cancelled')"
                    )
                )

            if args.fake:
                await fake_pass(db, workdir, processes, args, stores[0])
                for running in list(processes.running):
                    if running.name.startswith("fake-worker"):
                        await processes.stop(running)

            if args.profile:
                profile = workdir / "worker.prof"
                profiled = await start_worker(
                    processes, "profiled-worker", env, args.concurrency, profile_to=profile
                )
                others = [
                    await start_worker(processes, f"plain-worker-{i}", env, args.concurrency)
                    for i in range(args.workers - 1)
                ]
                await asyncio.sleep(3)  # both started (heartbeat rows exist from the first pass)
                base = finished(await job_counts(db))
                await enqueue(db, stores, args.profile_jobs, "-profile")
                pids = {r.name: r.process.pid for r in [profiled, *others]}
                figures = await measure(db, processes, pids, base, args.profile_jobs, args.seconds)
                report("profile pass (one worker under cProfile)", figures, args.profile_jobs)
                for running in [profiled, *others]:
                    await processes.stop(running, grace=30)
                print_profile(profile, args.top)
        finally:
            await control.aclose()
            await processes.stop_all()
    return 0 if rate >= GOAL else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench sync_throughput", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000, help="Syncs in each backlog")
    parser.add_argument("--stores", type=int, default=200, help="Careem stores (companies)")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes")
    parser.add_argument("--concurrency", type=int, default=16, help="Jobs per worker process")
    parser.add_argument("--seconds", type=float, default=35, help="Longest measurement per pass")
    parser.add_argument("--profile-jobs", type=int, default=300, help="Syncs in the profile pass")
    parser.add_argument("--top", type=int, default=20, help="Profile lines to print")
    parser.add_argument("--no-fake", dest="fake", action="store_false", help="Skip the fake pass")
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="Skip the profile pass"
    )
    parser.add_argument("--timeout", type=float, default=180, help="Give up after (seconds)")
    args = parser.parse_args(argv or [])

    async def bounded() -> int:
        async with asyncio.timeout(args.timeout):
            return await run(args)

    return asyncio.run(bounded())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
