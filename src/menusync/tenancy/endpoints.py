"""``/api/v1/platform-sync/audit``: who did what, when (W roles only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from menusync.core.dependencies import SessionDep
from menusync.core.errors import ValidationFailed
from menusync.core.schemas import PageParams, Pagination, page_params
from menusync.core.web import error_responses
from menusync.tenancy.dependencies import Writer
from menusync.tenancy.repository import AuditFilter, AuditRepository
from menusync.tenancy.schemas import AuditEntryRead, AuditResponse

router = APIRouter(
    prefix="/platform-sync/audit", tags=["audit"], responses=error_responses(401, 403, 422)
)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def audit_filter(
    action: Annotated[
        str | None, Query(max_length=64, description="Exact action, e.g. `menu.created`")
    ] = None,
    user_id: Annotated[str | None, Query(alias="userId", max_length=128)] = None,
    target_type: Annotated[
        str | None, Query(alias="targetType", max_length=48, description="e.g. `menu`, `sync`")
    ] = None,
    date_from: Annotated[
        datetime | None, Query(alias="dateFrom", description="At or after (ISO 8601)")
    ] = None,
    date_to: Annotated[
        datetime | None, Query(alias="dateTo", description="At or before (ISO 8601)")
    ] = None,
) -> AuditFilter:
    date_from, date_to = _aware(date_from), _aware(date_to)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ValidationFailed(
            "dateFrom is after dateTo",
            [{"path": "query.dateFrom", "message": "must not be after dateTo", "code": "range"}],
        )
    return AuditFilter(
        action=action,
        user_id=user_id,
        target_type=target_type,
        date_from=date_from,
        date_to=date_to,
    )


@router.get(
    "",
    response_model=AuditResponse,
    summary="User actions of the company, newest first",
)
async def list_audit_entries(
    auth: Writer,
    session: SessionDep,
    filters: Annotated[AuditFilter, Depends(audit_filter)],
    paging: Annotated[PageParams, Depends(page_params)],
) -> AuditResponse:
    # Only reads: on SQLite a deferred transaction takes no write lock.
    await session.connection(execution_options={"sqlite_begin": "DEFERRED"})
    rows, total = await AuditRepository(session).list_entries(
        auth.company_id, filters, offset=paging.offset, limit=paging.limit
    )
    return AuditResponse(
        data=[AuditEntryRead.model_validate(row) for row in rows],
        pagination=Pagination.of(paging.page, paging.limit, total),
    )
