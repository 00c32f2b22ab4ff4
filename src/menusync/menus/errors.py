from __future__ import annotations

from typing import Any

from menusync.core.errors import NotFound, ValidationFailed
from menusync.menus.canonical import MenuIssue


class MenuNotFound(NotFound):
    code = "menu_not_found"

    def __init__(self, menu_id: object) -> None:
        super().__init__(f"Menu {menu_id} not found", details={"menuId": str(menu_id)})


class MenuInvalid(ValidationFailed):
    code = "menu_invalid"

    def __init__(self, issues: list[MenuIssue], *, prefix: str = "body.menu") -> None:
        listed: list[dict[str, Any]] = [
            {"path": f"{prefix}.{issue.path}", "message": issue.message, "code": issue.code}
            for issue in issues
        ]
        super().__init__(f"The menu breaks {len(listed)} rule(s)", listed)
