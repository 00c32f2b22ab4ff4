from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from menusync.core.schemas import ApiModel


class ConnectionUpdate(ApiModel):
    credentials: dict[str, Any] = Field(
        description="The platform's connection settings (its `Config` schema): credentials, store "
        "ids, base URLs. Secret fields left out keep their stored value."
    )
    is_enabled: bool = True


class ConnectionRead(ApiModel):
    platform_type: str
    store_key: str
    is_enabled: bool
    status: str
    settings: dict[str, Any] = Field(description="Connection settings with credentials masked")
    last_tested_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class ConnectionResponse(ApiModel):
    success: bool = True
    data: ConnectionRead
    message: str | None = None


class ConnectionListResponse(ApiModel):
    success: bool = True
    data: list[ConnectionRead]


class ConnectionTestResult(ApiModel):
    ok: bool
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ConnectionTestResponse(ApiModel):
    success: bool = True
    data: ConnectionTestResult
