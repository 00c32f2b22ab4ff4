"""The control API every simulator serves under ``/__sandbox`` (CONTRACT.md section 4).

Common to all platforms: the call log, stats, faults, limits, store views, reset, plus a few test
helpers (webhook attempt log, clock moves when the clock is a :class:`ManualClock`, early token
revocation, waiting for background work). Platform-specific admin triggers (mapping a Careem
branch, closing a Delivery Hero vendor, ...) live in each platform module. Control calls are not
subject to faults or rate limits and are not recorded in the call log.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from fastapi import APIRouter, FastAPI, Request
from pydantic import Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from menusync.sandbox.runtime import (
    CamelModel,
    Faults,
    SandboxError,
    SandboxMiddleware,
    Simulator,
    iso,
    relative_path,
)
from menusync.sandbox.settings import ManualClock


class ClockMove(CamelModel):
    advance_seconds: float | None = None
    set_to: datetime | None = Field(default=None, alias="set")


def control_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def json_body(request: Request) -> object:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _limit_param(request: Request, default: int) -> int:
    try:
        return max(0, int(request.query_params.get("limit", default)))
    except ValueError:
        return default


def control_router(sim: Simulator) -> APIRouter:
    router = APIRouter(prefix="/__sandbox", include_in_schema=False)

    @router.get("/calls")
    async def get_calls(request: Request) -> JSONResponse:
        limit = _limit_param(request, 100)
        calls = list(sim.calls)[-limit:] if limit else []
        return JSONResponse({"calls": [c.as_json() for c in calls]})

    @router.get("/webhooks")
    async def get_webhooks(request: Request) -> JSONResponse:
        limit = _limit_param(request, 100)
        attempts = list(sim.webhook_log)[-limit:] if limit else []
        return JSONResponse({"webhooks": [a.as_json() for a in attempts]})

    @router.get("/stats")
    async def get_stats() -> JSONResponse:
        return JSONResponse(sim.stats.as_json())

    @router.get("/faults")
    async def get_faults() -> JSONResponse:
        return JSONResponse(sim.faults.model_dump(mode="json", by_alias=True))

    @router.put("/faults")
    async def put_faults(request: Request) -> JSONResponse:
        try:
            faults = Faults.model_validate(await json_body(request))
        except ValidationError as exc:
            return control_error(422, "invalid_faults", str(exc))
        sim.faults = faults
        sim.outage_until = (
            sim.now() + timedelta(seconds=faults.outage_seconds) if faults.outage_seconds else None
        )
        return JSONResponse(faults.model_dump(mode="json", by_alias=True))

    @router.delete("/faults")
    async def delete_faults() -> Response:
        sim.faults = Faults()
        sim.outage_until = None
        return Response(status_code=204)

    @router.get("/limits")
    async def get_limits() -> JSONResponse:
        return JSONResponse(sim.limits.model_dump(mode="json", by_alias=True))

    @router.put("/limits")
    async def put_limits(request: Request) -> JSONResponse:
        body = await json_body(request)
        if not isinstance(body, dict):
            return control_error(422, "invalid_limits", "body must be a JSON object")
        merged = {
            **sim.limits_type.off().model_dump(by_alias=True),
            **body,
        }
        try:
            limits = sim.limits_type.model_validate(merged)
        except ValidationError as exc:
            return control_error(422, "invalid_limits", str(exc))
        known = {sim.limits_type.model_fields[n].alias for n in sim.limits_type.budget_names()}
        for store_id, override in limits.stores.items():
            unknown = set(override) - known
            if unknown:
                return control_error(
                    422, "invalid_limits", f"unknown budgets for {store_id}: {sorted(unknown)}"
                )
        sim.limits = limits
        sim.windows.clear()
        return JSONResponse(limits.model_dump(mode="json", by_alias=True))

    @router.delete("/limits")
    async def delete_limits() -> Response:
        sim.limits = sim.documented_limits()
        sim.windows.clear()
        return Response(status_code=204)

    @router.get("/stores")
    async def list_stores() -> JSONResponse:
        return JSONResponse({"stores": [{"id": store_id} for store_id in sim.store_ids()]})

    @router.get("/stores/{store_id}")
    async def get_store(store_id: str) -> JSONResponse:
        view = sim.store_view(store_id)
        if view is None:
            return control_error(404, "store_not_found", f"unknown store {store_id}")
        return JSONResponse(view)

    @router.post("/reset")
    async def reset() -> Response:
        sim.reset()
        return Response(status_code=204)

    @router.post("/tokens/revoke")
    async def revoke_tokens() -> Response:
        """Fault: every token issued so far stops working before its expiry."""
        sim.tokens.revoke_all()
        return Response(status_code=204)

    @router.post("/clock")
    async def move_clock(request: Request) -> JSONResponse:
        clock = sim.clock
        if not isinstance(clock, ManualClock):
            return control_error(409, "clock_not_manual", "the sandbox runs on the real clock")
        try:
            move = ClockMove.model_validate(await json_body(request))
        except ValidationError as exc:
            return control_error(422, "invalid_clock", str(exc))
        if move.set_to is not None:
            clock.set(move.set_to)
        if move.advance_seconds is not None:
            clock.advance(move.advance_seconds)
        return JSONResponse({"now": iso(clock.now())})

    @router.post("/settle")
    async def settle(request: Request) -> JSONResponse:
        """Wait (up to ``timeout`` seconds) until no job or webhook is in flight."""
        try:
            timeout = float(request.query_params.get("timeout", "10"))
        except ValueError:
            timeout = 10.0
        return JSONResponse({"settled": await sim.drain(timeout)})

    return router


def build_platform_app(sim: Simulator, platform_router: APIRouter, title: str) -> FastAPI:
    """A FastAPI app serving ``platform_router`` and the control API over ``sim``.

    Errors (raised :class:`SandboxError`, unknown paths, wrong methods) are rendered in the
    platform's envelope; the lifespan cancels the simulator's background work at shutdown.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sim.aclose()

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.simulator = sim

    async def on_sandbox_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SandboxError)
        return sim.render_error(exc, relative_path(request.scope))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        error = SandboxError(exc.status_code, sim.error_code_for(exc.status_code), message)
        return sim.render_error(error, relative_path(request.scope))

    app.add_exception_handler(SandboxError, on_sandbox_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.include_router(control_router(sim))
    app.include_router(platform_router)
    app.add_middleware(SandboxMiddleware, simulator=sim)
    return app
