from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.dependencies import ResourcesDep, SessionDep
from menusync.core.resources import Resources
from menusync.menus.repository import MenuRepository
from menusync.menus.service import MenuService
from menusync.tenancy.audit import AuditTrail


def build_menu_service(session: AsyncSession, resources: Resources) -> MenuService:
    return MenuService(
        MenuRepository(session), AuditTrail(session, resources.clock), resources.clock
    )


def get_menu_service(session: SessionDep, resources: ResourcesDep) -> MenuService:
    return build_menu_service(session, resources)


MenuServiceDep = Annotated[MenuService, Depends(get_menu_service)]
