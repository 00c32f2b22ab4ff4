"""What a push changes on a platform: a platform-neutral summary of the menu as one platform sees
it (items with their names, prices and availability after that platform's overrides), stored
with each successful push, and the diff between two summaries.

Payload formats differ per platform, so diffs are computed on these summaries, not on payloads:
an operator reads "Shawarma: 16.00 -> 17.00" whatever the platform's money format.
"""

from __future__ import annotations

from typing import Any

from menusync.menus.canonical import CanonicalMenu


def menu_summary(menu: CanonicalMenu, platform: str) -> dict[str, dict[str, Any]]:
    """Items and options as ``platform`` shows them: name (first language), price, availability."""
    summary: dict[str, dict[str, Any]] = {}
    for item in menu.items:
        override = item.platform_overrides.get(platform)
        if override is not None and override.is_visible is False:
            continue
        name = (override.name if override and override.name else None) or item.name
        price = override.price if override and override.price is not None else item.price
        summary[item.id] = {
            "kind": "item",
            "name": _first(name),
            "price": str(price),
            "available": item.is_available,
        }
    for option in menu.modifier_options:
        override = option.platform_overrides.get(platform)
        if override is not None and override.is_visible is False:
            continue
        price = override.price if override and override.price is not None else option.price
        summary[option.id] = {
            "kind": "option",
            "name": _first(option.name),
            "price": str(price),
            "available": option.is_available,
        }
    return summary


def diff_summaries(
    before: dict[str, dict[str, Any]] | None, after: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Added, removed and changed entries (with old and new values) between two summaries."""
    if before is None:
        return {
            "firstPush": True,
            "added": sorted(after),
            "removed": [],
            "changed": [],
            "unchangedCount": 0,
        }
    changed = []
    for entry_id in sorted(set(before) & set(after)):
        old, new = before[entry_id], after[entry_id]
        fields = {
            field: {"from": old.get(field), "to": new.get(field)}
            for field in ("name", "price", "available")
            if old.get(field) != new.get(field)
        }
        if fields:
            changed.append(
                {"id": entry_id, "kind": new["kind"], "name": new["name"], "changes": fields}
            )
    return {
        "firstPush": False,
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": changed,
        "unchangedCount": len(set(before) & set(after)) - len(changed),
    }


def _first(text: dict[str, str]) -> str:
    return text.get("en") or next(iter(text.values()))
