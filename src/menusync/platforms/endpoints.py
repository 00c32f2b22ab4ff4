"""``/api/v1/platform-sync/connections``: a company's platform connections (credentials masked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from menusync.core.schemas import Message
from menusync.core.web import error_responses
from menusync.platforms.connections import ConnectionService
from menusync.platforms.dependencies import ConnectionServiceDep
from menusync.platforms.models import PlatformConnection
from menusync.platforms.schemas import (
    ConnectionListResponse,
    ConnectionRead,
    ConnectionResponse,
    ConnectionTestResponse,
    ConnectionTestResult,
    ConnectionUpdate,
)
from menusync.tenancy.dependencies import Reader, Writer

router = APIRouter(
    prefix="/platform-sync/connections",
    tags=["connections"],
    responses=error_responses(401, 403, 422),
)

PlatformPath = Annotated[str, Path(alias="platformType", pattern=r"^[a-z][a-z0-9_]{1,31}$")]


def _read(service: ConnectionService, connection: PlatformConnection) -> ConnectionRead:
    return ConnectionRead(
        platform_type=connection.platform,
        store_key=connection.store_key,
        is_enabled=connection.is_enabled,
        status=connection.status,
        settings=service.masked_settings(connection),
        last_tested_at=connection.last_tested_at,
        last_error=connection.last_error,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )


@router.get("", response_model=ConnectionListResponse, summary="The company's platform connections")
async def list_connections(auth: Reader, service: ConnectionServiceDep) -> ConnectionListResponse:
    return ConnectionListResponse(
        data=[_read(service, c) for c in await service.list_connections(auth)]
    )


@router.put(
    "/{platformType}",
    response_model=ConnectionResponse,
    summary="Set credentials and store ids (validated by the platform's schema, stored encrypted)",
    responses=error_responses(404),
)
async def put_connection(
    auth: Writer, service: ConnectionServiceDep, platform: PlatformPath, body: ConnectionUpdate
) -> ConnectionResponse:
    connection = await service.set_connection(
        auth, platform, body.credentials, is_enabled=body.is_enabled
    )
    return ConnectionResponse(
        data=_read(service, connection), message=f"{platform} connection saved"
    )


@router.delete(
    "/{platformType}",
    response_model=Message,
    summary="Remove a connection",
    responses=error_responses(404),
)
async def delete_connection(
    auth: Writer, service: ConnectionServiceDep, platform: PlatformPath
) -> Message:
    await service.delete_connection(auth, platform)
    return Message(message=f"{platform} connection removed")


@router.post(
    "/{platformType}/test",
    response_model=ConnectionTestResponse,
    summary="Check the credentials against the platform (short timeout)",
    responses=error_responses(404),
)
async def test_connection(
    auth: Writer, service: ConnectionServiceDep, platform: PlatformPath
) -> ConnectionTestResponse:
    check = await service.test_connection(auth, platform)
    return ConnectionTestResponse(
        data=ConnectionTestResult(ok=check.ok, message=check.message, details=dict(check.details))
    )
