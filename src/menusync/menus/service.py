"""Rules for a company's menus: validation, versioning, import. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from menusync.core.clock import Clock
from menusync.core.errors import ValidationFailed
from menusync.menus.canonical import CanonicalMenu, check_menu
from menusync.menus.errors import MenuInvalid, MenuNotFound
from menusync.menus.models import Menu
from menusync.menus.repository import MenuRepository
from menusync.menus.schemas import (
    ImportedMenu,
    MenuCreate,
    MenuImport,
    MenuImportResult,
    MenuReplace,
)
from menusync.tenancy.audit import AuditTrail
from menusync.tenancy.context import AuthContext


def default_name(menu: CanonicalMenu) -> str:
    return menu.name.get("en") or next(iter(menu.name.values()))


class MenuService:
    def __init__(self, repository: MenuRepository, audit: AuditTrail, clock: Clock) -> None:
        self.repository = repository
        self.audit = audit
        self.clock = clock

    async def get_menu(self, auth: AuthContext, menu_id: uuid.UUID) -> Menu:
        """The company's menu, or ``MenuNotFound`` (also for another company's menu)."""
        menu = await self.repository.get_by_id(auth.company_id, menu_id)
        if menu is None:
            raise MenuNotFound(menu_id)
        return menu

    async def list_menus(
        self, auth: AuthContext, *, offset: int, limit: int
    ) -> tuple[Sequence[Menu], int]:
        rows = await self.repository.list_page(auth.company_id, offset=offset, limit=limit)
        return rows, await self.repository.count(auth.company_id)

    async def create_menu(self, auth: AuthContext, data: MenuCreate) -> Menu:
        _ensure_consistent(data.menu)
        menu = self._new_menu(auth, data)
        self.repository.add(menu)
        await self.repository.session.flush()
        self.audit.record(auth, "menu.created", "menu", menu.id, version=1)
        return menu

    async def replace_menu(self, auth: AuthContext, menu_id: uuid.UUID, data: MenuReplace) -> Menu:
        """Replace the document; the version goes up when the content changed."""
        _ensure_consistent(data.menu)
        menu = await self.get_menu(auth, menu_id)
        changed = self._apply(auth, menu, data.menu, data.name, data.branch_id)
        self.audit.record(
            auth, "menu.replaced", "menu", menu.id, version=menu.version, changed=changed
        )
        return menu

    async def delete_menu(self, auth: AuthContext, menu_id: uuid.UUID) -> None:
        menu = await self.get_menu(auth, menu_id)
        await self.repository.delete(menu)
        self.audit.record(auth, "menu.deleted", "menu", menu_id, version=menu.version)

    async def import_menus(self, auth: AuthContext, data: MenuImport) -> MenuImportResult:
        """Create or update many menus at once; all or nothing: one invalid menu stops the import."""
        issues: list[dict[str, str]] = []
        for index, entry in enumerate(data.menus):
            issues.extend(
                {
                    "path": f"body.menus[{index}].menu.{issue.path}",
                    "message": issue.message,
                    "code": issue.code,
                }
                for issue in check_menu(entry.menu)
            )
        if issues:
            raise ValidationFailed(
                "The import contains invalid menus; nothing was imported", issues
            )
        external_ids = [entry.external_id for entry in data.menus if entry.external_id]
        if len(external_ids) != len(set(external_ids)):
            raise ValidationFailed(
                "externalId values repeat within the import",
                [
                    {
                        "path": "body.menus",
                        "message": "duplicate externalId",
                        "code": "duplicate_external_id",
                    }
                ],
            )
        results: list[ImportedMenu] = []
        for entry in data.menus:
            existing = None
            if data.mode == "upsert" and entry.external_id:
                existing = await self.repository.get_by_external_id(
                    auth.company_id, entry.external_id
                )
            if existing is None:
                menu = self._new_menu(auth, entry)
                self.repository.add(menu)
                await self.repository.session.flush()
                results.append(
                    ImportedMenu(
                        id=menu.id, external_id=menu.external_id, version=1, outcome="created"
                    )
                )
                continue
            changed = self._apply(auth, existing, entry.menu, entry.name, entry.branch_id)
            results.append(
                ImportedMenu(
                    id=existing.id,
                    external_id=existing.external_id,
                    version=existing.version,
                    outcome="updated" if changed else "unchanged",
                )
            )
        counts = {
            outcome: sum(1 for r in results if r.outcome == outcome)
            for outcome in ("created", "updated", "unchanged")
        }
        self.audit.record(auth, "menu.imported", "menu", None, **counts)
        return MenuImportResult(**counts, menus=results)

    def _new_menu(self, auth: AuthContext, data: MenuCreate) -> Menu:
        now = self.clock.now()
        return Menu(
            id=uuid.uuid4(),
            company_id=auth.company_id,
            branch_id=data.branch_id,
            external_id=data.external_id,
            name=data.name or default_name(data.menu),
            document=data.menu.to_document(),
            version=1,
            content_hash=data.menu.content_hash(),
            created_by=auth.user_id,
            updated_by=auth.user_id,
            created_at=now,
            updated_at=now,
        )

    def _apply(
        self,
        auth: AuthContext,
        menu: Menu,
        document: CanonicalMenu,
        name: str | None,
        branch_id: str | None,
    ) -> bool:
        new_hash = document.content_hash()
        changed = new_hash != menu.content_hash
        if changed:
            menu.document = document.to_document()
            menu.content_hash = new_hash
            menu.version += 1
        if name is not None:
            menu.name = name
        if branch_id is not None:
            menu.branch_id = branch_id
        menu.updated_by = auth.user_id
        menu.updated_at = self.clock.now()
        return changed


def _ensure_consistent(menu: CanonicalMenu) -> None:
    issues = check_menu(menu)
    if issues:
        raise MenuInvalid(issues)
