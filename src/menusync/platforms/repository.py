"""SQL for platform connections and integration logs, always filtered by company."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.platforms.models import IntegrationLog, PlatformConnection


class ConnectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_platform(self, company_id: str, platform: str) -> PlatformConnection | None:
        statement = select(PlatformConnection).where(
            PlatformConnection.company_id == company_id, PlatformConnection.platform == platform
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_for_company(self, company_id: str) -> Sequence[PlatformConnection]:
        statement = (
            select(PlatformConnection)
            .where(PlatformConnection.company_id == company_id)
            .order_by(PlatformConnection.platform)
        )
        return (await self.session.execute(statement)).scalars().all()

    def add(self, connection: PlatformConnection) -> None:
        self.session.add(connection)

    async def delete(self, connection: PlatformConnection) -> None:
        await self.session.delete(connection)

    def add_logs(self, logs: Sequence[IntegrationLog]) -> None:
        self.session.add_all(logs)
