"""A scriptable platform for queue tests that need thousands of jobs in several processes.

Each push appends the job's marker (from its sync configuration) to a log file, so a test can
count how many times every job ran; an optional delay keeps jobs in flight long enough to kill
a worker mid-job. No HTTP: it isolates the queue's guarantees from any platform.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from menusync.core.resilience.retry import RetryPolicy
from menusync.menus.canonical import CanonicalMenu
from menusync.platforms.base import (
    AdapterContext,
    AvailabilityChange,
    Capability,
    ConnectionCheck,
    MenuPayload,
    OperationResult,
    PlatformIssue,
    PlatformLimits,
    PlatformModel,
    PushReceipt,
    PushResult,
    StoreStatusChange,
    WebhookMessage,
    WebhookReply,
)


class FakeConfig(PlatformModel):
    store: str = "fake-store"
    log_path: str
    delay_seconds: float = 0.0


class FakeSyncConfig(PlatformModel):
    marker: str = ""


class FakeAdapter:
    kind: ClassVar[str] = "fake"
    display_name: ClassVar[str] = "Fake"
    Config: ClassVar[type[PlatformModel]] = FakeConfig
    SyncConfig: ClassVar[type[PlatformModel]] = FakeSyncConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.MENU_PUSH})
    limits: ClassVar[PlatformLimits] = PlatformLimits(rules=())
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(max_retries=3, base_delay=0.1, max_delay=0.2)
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Any, context: AdapterContext) -> None:
        self.config: FakeConfig = config
        self.context = context

    @classmethod
    def store_key(cls, config: Any) -> str:
        return str(config.store)

    def build_payload(
        self, menu: CanonicalMenu, sync_config: Any, item_ids: list[str] | None = None
    ) -> MenuPayload:
        return MenuPayload(body={"marker": sync_config.marker}, items_total=len(menu.items))

    def validate_menu(self, menu: CanonicalMenu, sync_config: Any) -> list[PlatformIssue]:
        return []

    async def push_menu(self, payload: MenuPayload) -> PushReceipt:
        if self.config.delay_seconds:
            await asyncio.sleep(self.config.delay_seconds)
        line = f"{payload.body['marker']} {os.getpid()}\n".encode()
        fd = os.open(self.config.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return PushReceipt(outcome="completed", external_ref=str(payload.body["marker"]))

    async def get_push_result(
        self, external_ref: str, payload: MenuPayload | None = None
    ) -> PushResult:
        return PushResult(state="completed", external_ref=external_ref)

    @classmethod
    def parse_webhook(cls, headers: Mapping[str, str], body: bytes) -> WebhookMessage:
        raise NotImplementedError

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False

    @classmethod
    def webhook_reply(cls, message: WebhookMessage | None, *, accepted: bool) -> WebhookReply:
        return WebhookReply()

    async def set_item_availability(self, changes: list[AvailabilityChange]) -> OperationResult:
        return OperationResult(succeeded=True)

    async def set_store_status(self, change: StoreStatusChange) -> OperationResult:
        return OperationResult(succeeded=True)

    async def test_connection(self) -> ConnectionCheck:
        return ConnectionCheck(ok=True, message="fake")
