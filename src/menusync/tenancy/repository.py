"""SQL of the audit trail, always filtered by company."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.tenancy.models import AuditLog


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    user_id: str | None = None
    target_type: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_entries(
        self, company_id: str, filters: AuditFilter, *, offset: int, limit: int
    ) -> tuple[Sequence[AuditLog], int]:
        """The company's audit entries, newest first (``ix_audit_logs_company_created``)."""
        where = [AuditLog.company_id == company_id]
        if filters.action:
            where.append(AuditLog.action == filters.action)
        if filters.user_id:
            where.append(AuditLog.user_id == filters.user_id)
        if filters.target_type:
            where.append(AuditLog.target_type == filters.target_type)
        if filters.date_from:
            where.append(AuditLog.created_at >= filters.date_from)
        if filters.date_to:
            where.append(AuditLog.created_at <= filters.date_to)
        total = (
            await self.session.execute(select(func.count()).select_from(AuditLog).where(*where))
        ).scalar_one()
        statement = (
            select(AuditLog)
            .where(*where)
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all(), int(total)
