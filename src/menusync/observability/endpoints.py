"""``/healthz`` (alive), ``/readyz`` (database reachable, migrations current, a worker seen),
``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from menusync.core.dependencies import ResourcesDep
from menusync.core.schemas import ApiModel
from menusync.migrations import current_and_head
from menusync.sync.models import WorkerHeartbeat

router = APIRouter(tags=["system"])

WORKER_STALE_AFTER = timedelta(seconds=60)


class Liveness(ApiModel):
    status: str = "ok"


class Readiness(ApiModel):
    status: str
    checks: dict[str, dict[str, Any]]


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process answers")
async def healthz() -> Liveness:
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: database reachable, migrations at head, a worker seen recently",
    responses={503: {"model": Readiness, "description": "Not ready; `checks` says why"}},
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    checks: dict[str, dict[str, Any]] = {}
    try:
        async with resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": str(exc)}
    if checks["database"]["ok"]:
        try:
            current, head = await asyncio.to_thread(
                current_and_head, resources.settings.database_url
            )
            checks["migrations"] = {
                "ok": current == head,
                "current": sorted(current),
                "head": sorted(head),
            }
        except Exception as exc:
            checks["migrations"] = {"ok": False, "error": str(exc)}
        async with resources.sessions() as session:
            since = resources.clock.now() - WORKER_STALE_AFTER
            seen = (
                await session.execute(
                    select(func.count())
                    .select_from(WorkerHeartbeat)
                    .where(WorkerHeartbeat.last_seen_at >= since)
                )
            ).scalar_one()
        checks["workers"] = {"ok": seen > 0, "recentlySeen": int(seen)}
    ready = all(check["ok"] for check in checks.values()) and len(checks) == 3
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(by_alias=True), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
