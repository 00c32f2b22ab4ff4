"""Builders of the sync service, shared by the API, the worker and the CLI."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.dependencies import ResourcesDep, SessionDep
from menusync.core.resources import Resources
from menusync.menus.repository import MenuRepository
from menusync.platforms.connections import PlatformGateway
from menusync.platforms.dependencies import RuntimeDep
from menusync.platforms.repository import ConnectionRepository
from menusync.platforms.runtime import PlatformRuntime
from menusync.sync.policy import EnginePolicies
from menusync.sync.repository import SyncRepository
from menusync.sync.service import SyncService
from menusync.sync.tracking import Tracker
from menusync.tenancy.audit import AuditTrail


def build_sync_service(
    session: AsyncSession, resources: Resources, runtime: PlatformRuntime, policies: EnginePolicies
) -> SyncService:
    return SyncService(
        repository=SyncRepository(session),
        menus=MenuRepository(session),
        connections=ConnectionRepository(session),
        gateway=runtime.gateway(resources),
        policies=policies,
        tracker=Tracker(session, resources.clock),
        audit=AuditTrail(session, resources.clock),
        clock=resources.clock,
    )


def get_policies(request: Request) -> EnginePolicies:
    policies: EnginePolicies = request.app.state.engine_policies
    return policies


PoliciesDep = Annotated[EnginePolicies, Depends(get_policies)]


def get_gateway(resources: ResourcesDep, runtime: RuntimeDep) -> PlatformGateway:
    return runtime.gateway(resources)


GatewayDep = Annotated[PlatformGateway, Depends(get_gateway)]


def get_sync_service(
    session: SessionDep, resources: ResourcesDep, runtime: RuntimeDep, policies: PoliciesDep
) -> SyncService:
    return build_sync_service(session, resources, runtime, policies)


SyncServiceDep = Annotated[SyncService, Depends(get_sync_service)]
