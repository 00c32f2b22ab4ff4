"""SQL for menus, always filtered by company."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.menus.models import Menu


class MenuRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, company_id: str, menu_id: uuid.UUID) -> Menu | None:
        statement = select(Menu).where(Menu.company_id == company_id, Menu.id == menu_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_by_external_id(self, company_id: str, external_id: str) -> Menu | None:
        statement = select(Menu).where(
            Menu.company_id == company_id, Menu.external_id == external_id
        )
        return (await self.session.execute(statement)).scalars().first()

    async def list_page(self, company_id: str, *, offset: int, limit: int) -> Sequence[Menu]:
        statement = (
            select(Menu)
            .where(Menu.company_id == company_id)
            .order_by(Menu.updated_at.desc(), Menu.id)
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def count(self, company_id: str) -> int:
        statement = select(func.count()).select_from(Menu).where(Menu.company_id == company_id)
        return int((await self.session.execute(statement)).scalar_one())

    def add(self, menu: Menu) -> None:
        self.session.add(menu)

    async def delete(self, menu: Menu) -> None:
        await self.session.delete(menu)
