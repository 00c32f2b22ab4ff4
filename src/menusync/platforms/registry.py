"""The platforms menusync speaks, listed explicitly: adding one is one line here.

The runner, the API and the CLI look adapters up through an ``AdapterRegistry`` they are given
(``default_registry()`` in production), so tests can register a scriptable adapter without
patching anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from menusync.core.errors import NotFound
from menusync.platforms.adapters.careem import CareemAdapter
from menusync.platforms.adapters.deliveroo import DeliverooAdapter
from menusync.platforms.adapters.talabat import TalabatAdapter
from menusync.platforms.base import AdapterContext, PlatformAdapter

ADAPTERS: tuple[type[PlatformAdapter], ...] = (CareemAdapter, TalabatAdapter, DeliverooAdapter)


class UnknownPlatform(NotFound):
    code = "unknown_platform"


class AdapterRegistry:
    def __init__(self, adapters: Iterable[type[PlatformAdapter]]) -> None:
        self._adapters: dict[str, type[PlatformAdapter]] = {}
        for adapter in adapters:
            if adapter.kind in self._adapters:
                raise ValueError(f"platform {adapter.kind!r} is registered twice")
            self._adapters[adapter.kind] = adapter

    @property
    def kinds(self) -> list[str]:
        return sorted(self._adapters)

    def __contains__(self, kind: object) -> bool:
        return kind in self._adapters

    def get(self, kind: str) -> type[PlatformAdapter]:
        try:
            return self._adapters[kind]
        except KeyError:
            known = ", ".join(self.kinds) or "none"
            raise UnknownPlatform(
                f"Unknown platform {kind!r}; registered platforms: {known}",
                details={"platformType": kind, "registered": self.kinds},
            ) from None

    def create(self, kind: str, config: Any, context: AdapterContext) -> PlatformAdapter:
        return self.get(kind)(config, context)


def default_registry() -> AdapterRegistry:
    return AdapterRegistry(ADAPTERS)
