"""``/api/v1/menus``: the company's canonical menus."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from menusync.core.schemas import Message, PageParams, Pagination, page_params
from menusync.core.web import error_responses
from menusync.menus.canonical import CanonicalMenu
from menusync.menus.dependencies import MenuServiceDep
from menusync.menus.models import Menu
from menusync.menus.schemas import (
    MenuCreate,
    MenuImport,
    MenuImportResponse,
    MenuListResponse,
    MenuRead,
    MenuReplace,
    MenuResponse,
    MenuSummary,
)
from menusync.tenancy.dependencies import Reader, Writer

router = APIRouter(prefix="/menus", tags=["menus"], responses=error_responses(401, 403, 422))


def _summary(menu: Menu) -> MenuSummary:
    return MenuSummary(
        id=menu.id,
        name=menu.name,
        branch_id=menu.branch_id,
        external_id=menu.external_id,
        version=menu.version,
        content_hash=menu.content_hash,
        item_count=len(menu.document.get("items", [])),
        created_at=menu.created_at,
        updated_at=menu.updated_at,
    )


def _read(menu: Menu) -> MenuRead:
    return MenuRead(**_summary(menu).model_dump(), menu=CanonicalMenu.model_validate(menu.document))


@router.get("", response_model=MenuListResponse, summary="List the company's menus")
async def list_menus(
    auth: Reader, service: MenuServiceDep, paging: Annotated[PageParams, Depends(page_params)]
) -> MenuListResponse:
    rows, total = await service.list_menus(auth, offset=paging.offset, limit=paging.limit)
    return MenuListResponse(
        data=[_summary(row) for row in rows],
        pagination=Pagination.of(paging.page, paging.limit, total),
    )


@router.post(
    "",
    response_model=MenuResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Create a menu",
)
async def create_menu(auth: Writer, service: MenuServiceDep, body: MenuCreate) -> MenuResponse:
    return MenuResponse(data=_read(await service.create_menu(auth, body)))


@router.post(
    "/import",
    response_model=MenuImportResponse,
    summary="Create or update many menus at once (all or nothing)",
)
async def import_menus(
    auth: Writer, service: MenuServiceDep, body: MenuImport
) -> MenuImportResponse:
    return MenuImportResponse(data=await service.import_menus(auth, body))


@router.get(
    "/{menuId}", response_model=MenuResponse, summary="Get a menu", responses=error_responses(404)
)
async def get_menu(
    auth: Reader, service: MenuServiceDep, menu_id: Annotated[uuid.UUID, Path(alias="menuId")]
) -> MenuResponse:
    return MenuResponse(data=_read(await service.get_menu(auth, menu_id)))


@router.put(
    "/{menuId}",
    response_model=MenuResponse,
    summary="Replace a menu (the version goes up when the content changes)",
    responses=error_responses(404),
)
async def replace_menu(
    auth: Writer,
    service: MenuServiceDep,
    menu_id: Annotated[uuid.UUID, Path(alias="menuId")],
    body: MenuReplace,
) -> MenuResponse:
    return MenuResponse(data=_read(await service.replace_menu(auth, menu_id, body)))


@router.delete(
    "/{menuId}", response_model=Message, summary="Delete a menu", responses=error_responses(404)
)
async def delete_menu(
    auth: Writer, service: MenuServiceDep, menu_id: Annotated[uuid.UUID, Path(alias="menuId")]
) -> Message:
    await service.delete_menu(auth, menu_id)
    return Message(message=f"Menu {menu_id} deleted")
