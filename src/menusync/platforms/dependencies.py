from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from menusync.core.dependencies import ResourcesDep, SessionDep
from menusync.platforms.connections import ConnectionService
from menusync.platforms.repository import ConnectionRepository
from menusync.platforms.runtime import PlatformRuntime
from menusync.tenancy.audit import AuditTrail


def get_runtime(request: Request) -> PlatformRuntime:
    runtime: PlatformRuntime = request.app.state.platform_runtime
    return runtime


RuntimeDep = Annotated[PlatformRuntime, Depends(get_runtime)]


def get_connection_service(
    session: SessionDep, resources: ResourcesDep, runtime: RuntimeDep
) -> ConnectionService:
    return ConnectionService(
        ConnectionRepository(session),
        runtime.gateway(resources),
        AuditTrail(session, resources.clock),
        resources.clock,
    )


ConnectionServiceDep = Annotated[ConnectionService, Depends(get_connection_service)]
