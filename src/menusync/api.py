"""The one place routers are included, one line per domain."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from menusync.analytics.endpoints import router as analytics_router
from menusync.dashboard.endpoints import router as dashboard_router
from menusync.menus.endpoints import router as menus_router
from menusync.observability.endpoints import router as system_router
from menusync.platforms.endpoints import router as connections_router
from menusync.sync.endpoints import router as sync_router
from menusync.sync.operations_endpoints import router as operations_router
from menusync.tenancy.endpoints import router as audit_router
from menusync.tenancy.idempotency import IDEMPOTENCY_DEPENDENCY


def include_routers(app: FastAPI) -> None:
    api = APIRouter(prefix="/api/v1", dependencies=[IDEMPOTENCY_DEPENDENCY])
    api.include_router(menus_router)
    api.include_router(analytics_router)
    api.include_router(connections_router)
    api.include_router(sync_router)
    api.include_router(operations_router)
    api.include_router(audit_router)
    app.include_router(api)
    app.include_router(system_router)
    app.include_router(dashboard_router)
