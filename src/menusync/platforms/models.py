"""A company's connections to platforms, and the log of every call made to a platform."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from menusync.core.http import CallRecord
from menusync.core.models import Base, IdMixin, TenantMixin, TimestampMixin, _now


class PlatformConnection(IdMixin, TenantMixin, TimestampMixin, Base):
    """A company's link to one platform: encrypted credentials and store settings."""

    __tablename__ = "platform_connections"
    __table_args__ = (UniqueConstraint("company_id", "platform"),)

    platform: Mapped[str] = mapped_column(String(32))
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    """Fernet token of the adapter ``Config`` secrets (JSON)."""
    settings: Mapped[dict[str, Any]]
    """The non-secret part of the adapter ``Config`` (store ids, market, base URLs)."""
    store_key: Mapped[str] = mapped_column(String(200))
    """Identifies the platform target (site, vendor, branch): one job at a time per target."""
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(32), default="untested")
    """``untested``, ``connected``, ``needs_reauth``, ``error``."""
    last_tested_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class IntegrationLog(IdMixin, TenantMixin, Base):
    """One outbound platform API call (secrets redacted, bodies size-capped)."""

    __tablename__ = "platform_integration_logs"
    __table_args__ = (
        Index("ix_integration_logs_sync", "sync_id", "created_at"),
        Index("ix_integration_logs_company_created", "company_id", "created_at"),
        Index("ix_integration_logs_platform_created", "platform", "created_at"),
    )

    sync_id: Mapped[uuid.UUID | None]
    platform: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    request_body: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=_now)

    @classmethod
    def of_call(
        cls,
        call: CallRecord,
        *,
        company_id: str,
        platform: str,
        sync_id: uuid.UUID | None,
        attempt: int = 1,
    ) -> IntegrationLog:
        """The log row of one recorded platform call."""
        return cls(
            company_id=company_id,
            sync_id=sync_id,
            platform=platform,
            operation=call.operation,
            method=call.method,
            url=call.url,
            status_code=call.status_code,
            duration_ms=call.duration_ms,
            request_body=call.request_body,
            response_body=call.response_body,
            error=call.error,
            attempt=attempt,
            created_at=call.started_at,
        )
