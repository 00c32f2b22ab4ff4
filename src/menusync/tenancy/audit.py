"""The audit trail: every user action, written in the same transaction as the action itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.clock import Clock
from menusync.tenancy.context import AuthContext
from menusync.tenancy.models import AuditLog


class AuditTrail:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def record(
        self,
        auth: AuthContext,
        action: str,
        target_type: str,
        target_id: object | None = None,
        **details: Any,
    ) -> AuditLog:
        """Add an audit row for ``auth`` doing ``action`` on a target (flushed with the unit)."""
        entry = AuditLog(
            company_id=auth.company_id,
            user_id=auth.user_id,
            role=auth.role.value,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            details=details,
            request_id=auth.request_id,
            created_at=self._clock.now(),
        )
        self._session.add(entry)
        return entry
