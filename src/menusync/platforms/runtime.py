"""What a process keeps for talking to platforms: the registry and the token cache.

Built once by the app and by the worker; shared by every request and job in that process.
"""

from __future__ import annotations

from dataclasses import dataclass

from menusync.core.http import NullRecorder, PlatformHttp
from menusync.core.resources import Resources
from menusync.platforms.connections import PlatformGateway
from menusync.platforms.registry import AdapterRegistry
from menusync.platforms.tokens import TokenCache


@dataclass
class PlatformRuntime:
    registry: AdapterRegistry
    tokens: TokenCache

    def gateway(self, resources: Resources) -> PlatformGateway:
        return PlatformGateway(
            registry=self.registry,
            secret_box=resources.secret_box,
            http=PlatformHttp(resources.http, NullRecorder(), resources.clock),
            tokens=self.tokens,
            clock=resources.clock,
            callback_base_url=resources.settings.public_url,
        )
