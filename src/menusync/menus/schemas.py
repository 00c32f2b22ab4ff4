from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from menusync.core.schemas import ApiModel, Pagination
from menusync.menus.canonical import CanonicalMenu

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class MenuCreate(ApiModel):
    menu: CanonicalMenu
    name: Label | None = Field(default=None, description="Defaults to the menu's English name")
    branch_id: ShortId | None = None
    external_id: ShortId | None = Field(
        default=None, description="The menu's id in your own system (used by import upserts)"
    )


class MenuReplace(ApiModel):
    menu: CanonicalMenu
    name: Label | None = None
    branch_id: ShortId | None = None


class MenuSummary(ApiModel):
    id: uuid.UUID
    name: str
    branch_id: str | None
    external_id: str | None
    version: int
    content_hash: str
    item_count: int
    created_at: datetime
    updated_at: datetime


class MenuRead(MenuSummary):
    menu: CanonicalMenu


class MenuResponse(ApiModel):
    success: bool = True
    data: MenuRead


class MenuListResponse(ApiModel):
    success: bool = True
    data: list[MenuSummary]
    pagination: Pagination


class MenuImport(ApiModel):
    menus: Annotated[list[MenuCreate], Field(min_length=1, max_length=100)]
    mode: Literal["create", "upsert"] = Field(
        default="upsert",
        description="`upsert` replaces menus whose externalId already exists; `create` always adds",
    )


class ImportedMenu(ApiModel):
    id: uuid.UUID
    external_id: str | None
    version: int
    outcome: Literal["created", "updated", "unchanged"]


class MenuImportResult(ApiModel):
    created: int
    updated: int
    unchanged: int
    menus: list[ImportedMenu]


class MenuImportResponse(ApiModel):
    success: bool = True
    data: MenuImportResult
