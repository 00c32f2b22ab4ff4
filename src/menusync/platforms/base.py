"""The adapter Protocol: everything menusync needs from a delivery platform, over canonical types.

An adapter is one file in ``platforms/adapters/`` plus one line in ``platforms/registry.py``. It
translates and talks HTTP; it never retries, sleeps or rate-limits (the runner composes resilience
around it) and never touches the database. It declares, as class attributes:

- ``kind``: the platform slug (``careem``), stored as a plain string;
- ``Config``: the pydantic schema of a connection (credentials as ``SecretStr``, store ids, base
  URLs defaulting to the real hosts), validated when a connection is saved;
- ``SyncConfig``: the schema of per-menu sync configuration on this platform (price adjustments,
  tax, language mapping...);
- ``capabilities``: what works (the runner and the API decide behaviour by these, never by kind);
- ``limits``: the platform's documented rate limits, as limiter rules the runner enforces;
- ``retry_policy``: the default backoff schedule.

Instances are built per use by ``registry.create_adapter(kind, config, context)``; the context
carries the shared HTTP client (recording every call), the token cache and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from menusync.core.clock import Clock
from menusync.core.http import PlatformHttp
from menusync.core.resilience.retry import RetryPolicy
from menusync.menus.canonical import CanonicalMenu
from menusync.platforms.tokens import TokenCache


class Capability(StrEnum):
    MENU_PUSH = "menu_push"
    PARTIAL_MENU_PUSH = "partial_menu_push"
    """Only the given ``itemIds`` can be pushed (Careem ``diff: true``)."""
    PUSH_STATUS_POLL = "push_status_poll"
    PUSH_RESULT_WEBHOOK = "push_result_webhook"
    ITEM_AVAILABILITY = "item_availability"
    AVAILABILITY_UNTIL = "availability_until"
    """Unavailability can carry an end time the platform honours itself."""
    STORE_STATUS = "store_status"
    STORE_PAUSE = "store_pause"
    """A timed pause (closed until a time)."""
    TEST_CONNECTION = "test_connection"


@dataclass(frozen=True)
class LimitRule:
    """A documented rate limit: ``requests`` per ``per_seconds``, for one scope and operation."""

    name: str
    requests: int
    per_seconds: float
    scope: Literal["platform", "store"]
    operations: frozenset[str]
    """Operation names it applies to; empty means every call to the platform."""
    source: str = ""

    @property
    def interval(self) -> float:
        """Seconds between two calls at the sustained rate."""
        return self.per_seconds / self.requests


@dataclass(frozen=True)
class PlatformLimits:
    rules: tuple[LimitRule, ...]
    max_items_per_push: int | None = None
    max_items_per_availability_call: int | None = None


class PlatformModel(BaseModel):
    """Base for adapters' Config and SyncConfig: camelCase over the API, no unknown fields."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


# ---- what adapters take and return --------------------------------------------------------


@dataclass(frozen=True)
class PlatformIssue:
    """One reason the platform would reject (or rejected) a menu."""

    path: str
    message: str
    code: str = "platform_rule"
    severity: Literal["error", "warning"] = "error"

    def as_dict(self) -> dict[str, str]:
        return {
            "path": self.path,
            "message": self.message,
            "code": self.code,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class AvailabilityChange:
    item_id: str
    is_available: bool
    kind: Literal["item", "option"] = "item"
    until: datetime | None = None


@dataclass(frozen=True)
class MenuPayload:
    """The exact body (or bodies) the platform will receive for one push."""

    body: dict[str, Any]
    items_total: int
    """Sellable items in the payload (for progress counts)."""
    is_partial: bool = False
    follow_up_availability: tuple[AvailabilityChange, ...] = ()
    """What the platform's menu body cannot say (Deliveroo has no "unavailable" in an upload):
    the engine applies these as an availability change once the push is confirmed."""


@dataclass(frozen=True)
class PushReceipt:
    """The platform's first answer to a push."""

    outcome: Literal["accepted", "completed", "unchanged"]
    """``accepted``: processing asynchronously, confirm by webhook or poll; ``completed``: done
    now; ``unchanged``: the platform already had exactly this menu."""
    external_ref: str | None = None
    """The platform's job id (Careem ``request_id``, DH ``catalogImportId``, Deliveroo menu id)."""
    message: str | None = None
    poll_after_seconds: float = 10.0


@dataclass(frozen=True)
class PushResult:
    """Where an asynchronous push stands."""

    state: Literal["pending", "completed", "failed"]
    external_ref: str
    issues: tuple[PlatformIssue, ...] = ()
    message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookMessage:
    """A platform webhook, parsed (not yet verified)."""

    event_id: str
    event_type: str
    external_ref: str | None
    """Which push it is about (matches ``PushReceipt.external_ref``)."""
    store_ref: str | None = None
    result: PushResult | None = None
    """The push outcome it reports, if it reports one."""


@dataclass(frozen=True)
class WebhookReply:
    """What to answer the platform so that it stops (or keeps) redelivering."""

    status_code: int = 200
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoreStatusChange:
    state: Literal["open", "closed", "paused"]
    until: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class OperationResult:
    """Result of an availability or store-status call, per platform target where the platform
    reports several (Delivery Hero answers per platform vendor)."""

    succeeded: bool
    message: str | None = None
    partial_failures: tuple[Mapping[str, Any], ...] = ()
    items_processed: int = 0


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class AdapterContext:
    """What an adapter instance may use: HTTP (recorded), the token cache, the clock."""

    http: PlatformHttp
    tokens: TokenCache
    clock: Clock
    callback_url: str
    """Where this platform should send its webhooks/callbacks for menusync."""


@runtime_checkable
class PlatformAdapter(Protocol):
    kind: ClassVar[str]
    display_name: ClassVar[str]
    Config: ClassVar[type[PlatformModel]]
    SyncConfig: ClassVar[type[PlatformModel]]
    capabilities: ClassVar[frozenset[Capability]]
    limits: ClassVar[PlatformLimits]
    retry_policy: ClassVar[RetryPolicy]
    secret_fields: ClassVar[frozenset[str]]
    """Names of ``Config`` fields that are credentials (stored encrypted, never returned)."""

    def __init__(self, config: Any, context: AdapterContext) -> None: ...

    @classmethod
    def store_key(cls, config: Any) -> str:
        """The platform target this connection pushes to (one job at a time per target)."""
        ...

    def build_payload(
        self, menu: CanonicalMenu, sync_config: Any, item_ids: list[str] | None = None
    ) -> MenuPayload:
        """The platform's payload for ``menu``. Pure: no I/O, same input -> same output.
        ``item_ids`` asks for a partial push (only with ``PARTIAL_MENU_PUSH``)."""
        ...

    def validate_menu(self, menu: CanonicalMenu, sync_config: Any) -> list[PlatformIssue]:
        """Every documented rule of the platform that ``menu`` breaks. Pure."""
        ...

    async def push_menu(self, payload: MenuPayload) -> PushReceipt:
        """Send the payload. Raises ``PlatformRejected``, ``PlatformRateLimited``,
        ``PlatformUnavailable``/``PlatformBusy``, ``PlatformAuthError``, ``PlatformContractError``."""
        ...

    async def get_push_result(
        self, external_ref: str, payload: MenuPayload | None = None
    ) -> PushResult:
        """Poll the platform for a push's outcome. ``payload`` is what was pushed, for platforms
        that can only compare the live menu with it. Raises the same errors as ``push_menu``."""
        ...

    @classmethod
    def parse_webhook(cls, headers: Mapping[str, str], body: bytes) -> WebhookMessage:
        """Parse a webhook body (without trusting it: it is verified with the connection of the
        job it names). Raises ``PlatformContractError``."""
        ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the webhook is signed the way this platform signs, with this connection's
        secret (constant-time comparison)."""
        ...

    @classmethod
    def webhook_reply(cls, message: WebhookMessage | None, *, accepted: bool) -> WebhookReply:
        """The answer that makes the platform stop redelivering (or, when not accepted, retry)."""
        ...

    async def set_item_availability(self, changes: list[AvailabilityChange]) -> OperationResult:
        """Mark items or options (un)available. Splits into the platform's batch size."""
        ...

    async def set_store_status(self, change: StoreStatusChange) -> OperationResult:
        """Open, close or pause the store."""
        ...

    async def test_connection(self) -> ConnectionCheck:
        """Check the credentials (a token request and a cheap read), with a short timeout."""
        ...
