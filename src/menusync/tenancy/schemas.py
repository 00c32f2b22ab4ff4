"""Response bodies of the audit trail endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from menusync.core.schemas import ApiModel, Pagination, SuccessFlag


class AuditEntryRead(ApiModel):
    id: uuid.UUID
    user_id: str
    role: str = Field(description="The caller's role at the time")
    action: str = Field(examples=["menu.created", "circuit_breaker.reset"])
    target_type: str = Field(examples=["menu", "sync", "connection", "circuit_breaker"])
    target_id: str | None
    details: dict[str, Any]
    request_id: str | None = Field(description="The `X-Request-ID` of the request that did it")
    created_at: datetime


class AuditResponse(ApiModel):
    success: SuccessFlag = True
    data: list[AuditEntryRead] = Field(description="Newest first")
    pagination: Pagination
