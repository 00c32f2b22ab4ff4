"""Dispatch latency: from a sync request accepted (the 202 of ``POST /api/v1/platform-sync/single``)
to its payload arriving at the platform (the sandbox), with an idle worker waiting. Goal: p50 <=
25 ms, p99 <= 100 ms.

Topology, separate processes on loopback: a fresh PostgreSQL database
(``MENUSYNC_BENCH_POSTGRES_URL``, else ``MENUSYNC_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``); the simulators on their own port
(``menusync sandbox --fast``'s app, quiet, every Careem budget off); ``menusync api`` (it takes the
requests and receives Careem's catalog webhooks); one ``menusync worker`` with the default engine
settings (wake-up by PostgreSQL ``LISTEN``/``NOTIFY``, 1 s polling fallback) except budgets that
never bind. One company with the sample menu and a Careem connection to the sandbox.

``--requests`` forced syncs are sent one after the other by this process (keep-alive HTTP); each
waits until the previous sync has completed and the worker has been idle ``--gap`` seconds. The
client notes the wall-clock time it read the 202; the sandbox notes the wall-clock time the
``PUT /catalogs`` reached it (its call log, same machine clock). The latency is the difference;
it can be slightly negative when the worker is faster than the API's response (the job is
committed, and NOTIFY sent, before the 202 leaves). The first ``--warmup`` syncs (token, payload
cache, connection pools) are not counted.

The stages come from the job's own rows: ``created_at`` (the API's insert), ``started_at`` (the
worker's claim) and the integration log's ``created_at`` (the push leaving the adapter).

    uv run python -m bench --scenario sync_dispatch_latency [--requests 200] [--gap 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from sqlalchemy import text

from bench._stack import (
    SECRET,
    Database,
    SandboxControl,
    database,
    free_port,
    load,
    menusync_env,
    new_key,
    parse_at,
    percentile,
    say,
    scratch,
    seed_careem_stores,
    start_api,
    start_sandbox,
    start_worker,
    wait_workers,
)

GOAL_P50_MS = 25.0
GOAL_P99_MS = 100.0


def line(name: str, samples: list[float]) -> str:
    return (
        f"  {name:<34} p50 {percentile(samples, 0.5):7.1f} ms  p99 "
        f"{percentile(samples, 0.99):7.1f} ms  max {max(samples):7.1f} ms"
    )


async def run(args: argparse.Namespace) -> int:
    from menusync.core.security import TokenIssuer

    say(load())
    async with database("latency") as db, scratch() as (workdir, processes):
        key = new_key()
        api_port = free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        sandbox = await start_sandbox(processes, free_port())
        control = SandboxControl(sandbox)
        client = httpx2.AsyncClient(base_url=api_url, timeout=10)
        try:
            await control.set_limits({})
            await control.set_webhook(f"{api_url}/api/v1/platform-sync/webhook/careem")
            [store] = await seed_careem_stores(db, workdir, key, sandbox, 1)
            engine = {
                "platforms": {
                    "careem": {"requests_per_minute": 10_000_000, "per_store_scale": 1_000_000}
                }
            }
            env = menusync_env(db, workdir, key, public_url=api_url, engine=engine)
            await start_api(processes, api_port, env)
            await start_worker(processes, "worker", env, 4)
            await wait_workers(db, processes, 1)
            token = TokenIssuer(algorithm="HS256", key=SECRET).mint(
                subject="bench-user",
                company_id=store.company_id,
                role="company_owner",
                now=datetime.now(UTC),
                ttl=timedelta(hours=1),
            )
            headers = {"Authorization": f"Bearer {token}"}
            body = {
                "platformMenuId": str(store.menu_id),
                "platformType": "careem",
                "forceSync": True,
            }
            samples: list[dict[str, float]] = []
            for index in range(args.warmup + args.requests):
                processes.check_alive()
                await asyncio.sleep(args.gap)
                sent = time.time()
                response = await client.post(
                    "/api/v1/platform-sync/single", json=body, headers=headers
                )
                accepted = time.time()
                if response.status_code != 202:
                    raise RuntimeError(f"request {index}: {response.status_code} {response.text}")
                sync_id = uuid.UUID(response.json()["syncId"])
                row = await wait_done(db, sync_id)
                if row["status"] != "completed":
                    raise RuntimeError(f"sync {sync_id} ended {row['status']}: {row['message']}")
                pushes = [
                    c
                    for c in await control.calls(5)
                    if c["method"] == "PUT" and c["path"].endswith("/catalogs")
                ]
                if not pushes:
                    raise RuntimeError(f"no push seen by the sandbox for sync {sync_id}")
                arrived = parse_at(pushes[-1]["at"]).timestamp()
                if index >= args.warmup:
                    samples.append(
                        {
                            "total": (arrived - accepted) * 1000,
                            "from_send": (arrived - sent) * 1000,
                            "http": (accepted - sent) * 1000,
                            "claim": (row["started_at"] - accepted) * 1000,
                            "prepare": (row["call_at"] - row["started_at"]) * 1000,
                            "wire": (arrived - row["call_at"]) * 1000,
                        }
                    )
        finally:
            await client.aclose()
            await control.aclose()
            await processes.stop_all()

    totals = [s["total"] for s in samples]
    p50, p99 = percentile(totals, 0.5), percentile(totals, 0.99)
    say(
        "topology: PostgreSQL + `menusync api` + one `menusync worker` (concurrency 4) + the "
        "sandbox, four processes on loopback"
    )
    say(
        f"{len(samples)} sequential syncs (after {args.warmup} warm-up), {args.gap * 1000:.0f} ms idle between:"
    )
    say(line("202 received -> payload at sandbox", totals))
    say(line("request sent -> payload at sandbox", [s["from_send"] for s in samples]))
    say("stages:")
    say(line("request sent -> 202 received", [s["http"] for s in samples]))
    say(line("202 received -> worker claimed", [s["claim"] for s in samples]))
    say(line("claimed -> push leaves the adapter", [s["prepare"] for s in samples]))
    say(line("push leaves -> arrives at sandbox", [s["wire"] for s in samples]))
    ok = p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS
    say(
        f"goal p50 <= {GOAL_P50_MS:.0f} ms and p99 <= {GOAL_P99_MS:.0f} ms: "
        + ("met" if ok else "MISSED")
    )
    say(load())
    return 0 if ok else 1


async def wait_done(db: Database, sync_id: uuid.UUID, timeout: float = 15.0) -> dict[str, Any]:
    """Poll the job until it is finished; its status, claim time and push time (epoch s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT j.status, j.message, j.started_at, "
                        "(SELECT min(l.created_at) FROM platform_integration_logs l "
                        " WHERE l.sync_id = j.id AND l.operation = 'push_menu') "
                        "FROM platform_sync_logs j WHERE j.id = :id"
                    ),
                    {"id": sync_id},
                )
            ).one()
        if row[0] in ("completed", "failed", "cancelled"):
            return {
                "status": row[0],
                "message": row[1],
                "started_at": row[2].timestamp() if row[2] else float("nan"),
                "call_at": row[3].timestamp() if row[3] else float("nan"),
            }
        await asyncio.sleep(0.005)
    raise RuntimeError(f"sync {sync_id} did not finish within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench sync_dispatch_latency", description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="Syncs measured")
    parser.add_argument("--warmup", type=int, default=5, help="Syncs not counted")
    parser.add_argument("--gap", type=float, default=0.1, help="Idle seconds before each request")
    parser.add_argument("--timeout", type=float, default=180, help="Give up after (seconds)")
    args = parser.parse_args(argv or [])

    async def bounded() -> int:
        async with asyncio.timeout(args.timeout):
            return await run(args)

    return asyncio.run(bounded())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
