"""The stored canonical menu of a company."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from menusync.core.models import Base, IdMixin, TenantMixin, TimestampMixin


class Menu(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "menus"
    __table_args__ = (
        Index("ix_menus_company_updated", "company_id", "updated_at"),
        Index("ix_menus_company_external", "company_id", "external_id"),
    )

    branch_id: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    """The menu's id in the restaurant's own system, if it has one."""
    name: Mapped[str] = mapped_column(String(200))
    document: Mapped[dict[str, Any]]
    """The canonical menu (``menus.canonical.CanonicalMenu``) as JSON."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(128))
    updated_by: Mapped[str | None] = mapped_column(String(128))
