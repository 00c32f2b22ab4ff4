"""Rate-budget utilisation: a backlog of Careem menu syncs against a sandbox whose budget is
tightened so the backlog takes about a minute, 4 worker processes. Goal: utilisation >= 0.97 and
not one 429 from the platform.

Topology, all on loopback: a fresh PostgreSQL database (``MENUSYNC_BENCH_POSTGRES_URL``, else
``MENUSYNC_TEST_POSTGRES_URL``, else ``postgresql://postgres@127.0.0.1:5432/postgres``); the
simulators (``menusync sandbox --fast``'s app, quiet); ``menusync api`` (it receives Careem's
catalog webhooks, which complete the jobs); ``--workers`` x ``menusync worker --concurrency N``.
The stores are ``--stores`` companies, each with the sample menu and a Careem connection to its own
branch of the sandbox (same client credentials, so each worker process holds one token).

The binding limit is the same on both sides: the sandbox gets one global budget
(``PUT /careem/__sandbox/limits {"requestsPerMinute": R}``, which turns every other sandbox budget
off) and the engine ``engine.platforms.careem.requests_per_minute = R`` with its per-store and
per-operation Careem rules relaxed (``per_store_scale``). What the sandbox budget counts is every
call: the token request, each ``PUT /catalogs``, each status poll. The engine books its budget for
each push and each poll, not for token requests, so each worker is warmed up first (started one at
a time and given one job, which fetches its token) before the budget is tightened; the warm-up
calls are outside the measured window and the sandbox's rate windows are cleared when the limit is
set. Webhooks come back within milliseconds, so status polls (15 s) do not normally happen.

Then ``--jobs`` syncs are queued at once (round-robin over the stores) and the run ends when all
are finished. Figures, from the sandbox's call log:

- utilisation = ideal / actual, ideal = (jobs - 1) x T with T = 60 / R seconds the binding
  limit's interval, actual = time between the first and the last accepted ``PUT /catalogs``;
- the same counting every budgeted call in that span (pushes, polls, tokens), which is what the
  platform counts;
- the 429s the sandbox sent (its ``/stats`` responses by status, over the run), the most calls
  seen in any 60-second window, and the longest gap between two calls.

    uv run python -m bench --scenario sync_rate_budget [--rate 120] [--jobs 150] [--workers 4]
        [--concurrency 4] [--stores N] [--engine-rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import text

from bench._stack import (
    SandboxControl,
    database,
    enqueue,
    free_port,
    load,
    menusync_env,
    new_key,
    parse_at,
    percentile,
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

GOAL_UTILISATION = 0.97


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open window of ``window`` seconds (as a sliding log counts)."""
    best, lo = 0, 0
    for hi, at in enumerate(times):
        while times[lo] <= at - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def run(args: argparse.Namespace) -> int:
    interval = 60.0 / args.rate
    engine_rate = args.engine_rate or args.rate
    stores_wanted = args.stores or args.jobs
    say(load())
    async with database("rate") as db, scratch() as (workdir, processes):
        key = new_key()
        api_port = free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        sandbox = await start_sandbox(processes, free_port())
        control = SandboxControl(sandbox)
        try:
            await control.set_limits({})
            await control.set_webhook(f"{api_url}/api/v1/platform-sync/webhook/careem")
            stores = await seed_careem_stores(db, workdir, key, sandbox, stores_wanted)
            engine = {
                "concurrency": args.concurrency,
                "platforms": {
                    "careem": {"requests_per_minute": engine_rate, "per_store_scale": 100_000}
                },
            }
            env = menusync_env(db, workdir, key, public_url=api_url, engine=engine, pool_size=6)
            await start_api(processes, api_port, env)

            # Warm-up: one worker at a time, one job each, so every process holds its token. The
            # workers already warmed are paused (SIGSTOP) meanwhile, so the new one takes the job.
            warmup_started = time.monotonic()
            workers = []
            try:
                for index in range(args.workers):
                    worker = await start_worker(processes, f"worker-{index}", env, args.concurrency)
                    workers.append(worker)
                    await wait_workers(db, processes, index + 1)
                    await enqueue(db, [stores[index % len(stores)]], 1, "-warmup")
                    counts, _ = await wait_finished(db, processes, index + 1, 30, every=0.05)
                    if counts.get("completed", 0) != index + 1:
                        raise RuntimeError(f"warm-up job {index} did not complete: {counts}")
                    worker.process.send_signal(signal.SIGSTOP)
            finally:
                for worker in workers:
                    if worker.process.returncode is None:
                        worker.process.send_signal(signal.SIGCONT)
            warm_calls = await control.calls()
            tokens = sum(1 for c in warm_calls if c["path"] == "/token" and c["status"] == 200)
            say(
                f"warm-up: {args.workers} worker processes x concurrency {args.concurrency} "
                f"started one by one, one sync each, {tokens} token requests, "
                f"{time.monotonic() - warmup_started:.1f} s"
            )

            # Tighten the platform's budget (this also clears its rate windows), then the backlog.
            await control.set_limits({"requestsPerMinute": args.rate})
            limited_at = datetime.now(UTC)
            before = await control.stats()
            say(
                f"budget: sandbox {args.rate}/min for every call, engine {engine_rate:g}/min "
                f"(T = {interval * 1000:.0f} ms); backlog of {args.jobs} syncs over "
                f"{len(stores)} stores; ideal {(args.jobs - 1) * interval:.1f} s"
            )
            started = time.monotonic()
            await enqueue(db, stores, args.jobs)
            total = args.workers + args.jobs
            counts, waited = await wait_finished(
                db, processes, total, args.timeout - 30, every=0.25
            )
            finished_at = time.monotonic()
            after = await control.stats()
            calls = [c for c in await control.calls() if parse_at(c["at"]) >= limited_at]
            async with db.engine.connect() as conn:
                retried = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM platform_sync_logs "
                            "WHERE initiated_by = 'bench' AND attempt > 1"
                        )
                    )
                ).scalar()
                # When each push left its worker (the adapter's send), from the integration log.
                left = sorted(
                    row[0].timestamp()
                    for row in await conn.execute(
                        text(
                            "SELECT created_at FROM platform_integration_logs "
                            "WHERE operation = 'push_menu' AND created_at >= :at"
                        ),
                        {"at": limited_at},
                    )
                )
        finally:
            await control.aclose()
            await processes.stop_all()

    statuses = responses_delta(before, after)
    too_many = statuses.get("429", 0)
    accepted = [c for c in calls if c["status"] != 429]
    pushes = sorted(
        (
            c
            for c in accepted
            if c["method"] == "PUT" and c["path"].endswith("/catalogs") and c["status"] == 200
        ),
        key=lambda c: parse_at(c["at"]),
    )
    kinds: dict[str, int] = {}
    for call in calls:
        kind = (
            "token"
            if call["path"] == "/token"
            else "push"
            if call["method"] == "PUT"
            else "status poll"
            if "/catalogs/status/" in call["path"]
            else call["path"]
        )
        label = f"{kind} {call['status']}"
        kinds[label] = kinds.get(label, 0) + 1
    say(f"jobs: {counts} (retried: {retried}); backlog finished in {waited:.1f} s")
    say("sandbox calls in the measured run: " + ", ".join(f"{k}: {n}" for k, n in kinds.items()))
    say(f"sandbox responses by status (stats): {statuses}")
    if len(pushes) < 2:
        say("too few pushes to measure")
        return 1
    first, last = parse_at(pushes[0]["at"]), parse_at(pushes[-1]["at"])
    actual = (last - first).total_seconds()
    ideal = (args.jobs - 1) * interval
    utilisation = ideal / actual
    in_span = [c for c in accepted if first <= parse_at(c["at"]) <= last]
    counted = (len(in_span) - 1) * interval / actual
    times = sorted(parse_at(c["at"]).timestamp() for c in accepted)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    say(
        f"first push {(first.timestamp() - limited_at.timestamp()):.2f} s after the budget was "
        f"set; last push after {actual:.2f} s; last job finished "
        f"{finished_at - started:.1f} s after the backlog was queued"
    )
    say(
        f"utilisation: {utilisation:.4f} (ideal {ideal:.2f} s / actual {actual:.2f} s, "
        f"{len(pushes)} accepted pushes for {args.jobs} jobs)"
    )
    say(
        f"utilisation counting every budgeted call in that span: {counted:.4f} "
        f"({len(in_span)} calls)"
    )
    say(
        f"most calls in any 60 s window: {max_in_window(times, 60.0)} (budget {args.rate}); "
        f"interval between calls: mean {sum(gaps) / len(gaps) * 1000:.1f} ms, "
        f"min {min(gaps) * 1000:.1f} ms, max {max(gaps) * 1000:.1f} ms (T = {interval * 1000:.0f} ms)"
    )
    # The same pushes seen from the workers: when each left the adapter. Booked slots are at
    # least T apart; a push that leaves (or arrives) late by d, followed by one on time a
    # budget's worth of calls later, puts budget + 1 calls in one sliding window.
    if len(left) > 1:
        spacing = [b - a for a, b in itertools.pairwise(left)]
        say(
            f"pushes leaving the workers: {len(left)}; most in any 60 s window "
            f"{max_in_window(left, 60.0)}; interval min {min(spacing) * 1000:.1f} ms, "
            f"p1 {percentile(spacing, 0.01) * 1000:.1f} ms, max {max(spacing) * 1000:.1f} ms "
            f"(engine T = {60_000 / engine_rate:.1f} ms)"
        )
    for call in (c for c in calls if c["status"] == 429):
        at = parse_at(call["at"]).timestamp()
        earlier = [t for t in times if at - 60.0 < t <= at]
        sent = [t for t in left if at - 60.0 - 1.0 < t <= at]
        say(
            f"  429 at +{at - first.timestamp():.3f} s: {len(earlier)} accepted calls in the 60 s "
            f"before it, the oldest {at - earlier[0]:.3f} s earlier; the workers sent "
            f"{len(sent)} pushes in the 61 s before it"
            if earlier
            else f"  429 at +{at - first.timestamp():.3f} s"
        )
    ok = utilisation >= GOAL_UTILISATION and too_many == 0
    say(
        f"429s sent by the sandbox: {too_many}. Goal (>= {GOAL_UTILISATION} and 0): "
        + ("met" if ok else "MISSED")
    )
    say(load())
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench sync_rate_budget", description=__doc__)
    parser.add_argument("--rate", type=int, default=120, help="Platform budget, calls a minute")
    parser.add_argument("--engine-rate", type=float, default=None, help="Engine budget (= rate)")
    parser.add_argument("--jobs", type=int, default=150, help="Syncs in the backlog")
    parser.add_argument("--stores", type=int, default=None, help="Stores (default: one per job)")
    parser.add_argument("--workers", type=int, default=4, help="Worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="Jobs per worker process")
    parser.add_argument("--timeout", type=float, default=180, help="Give up after (seconds)")
    args = parser.parse_args(argv or [])

    async def bounded() -> int:
        async with asyncio.timeout(args.timeout):
            return await run(args)

    return asyncio.run(bounded())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
