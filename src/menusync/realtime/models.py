"""The transactional outbox of realtime events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from menusync.core.models import Base, TenantMixin, _now


class SyncEvent(TenantMixin, Base):
    """An event, written in the same transaction as the state change it describes."""

    __tablename__ = "sync_events"
    __table_args__ = (
        Index("ix_sync_events_company_id", "company_id", "id"),
        Index("ix_sync_events_sync", "sync_id", "id"),
        Index("ix_sync_events_batch", "batch_id", "id"),
        Index("ix_sync_events_created", "created_at"),
    )

    # BIGINT on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    sync_id: Mapped[uuid.UUID | None]
    batch_id: Mapped[uuid.UUID | None]
    type: Mapped[str] = mapped_column(String(48))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=_now)
