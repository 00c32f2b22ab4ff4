"""Careem (Careem Food / Careem NOW) "POS API" v2.1.0 adapter.

Sources: Careem's own OpenAPI, https://docs.careemnow.com/public-api.json (the "POS API" docs at
https://docs.careemnow.com/), summarised with the tag of each fact in ../shared/PLATFORMS.md
section 3. The vendor's quirks this adapter deals with:

- **Two hosts.** Tokens come from the identity host (``POST https://identity.careem.com/token``,
  ``multipart/form-data``, ``grant_type=client_credentials``, ``scope=pos``); the API lives at
  ``https://apigateway.careemdash.com/pos/api/v1``. Tokens live 24 h (``expires_in: 86399``), a new
  token does not revoke old ones, and asking for one per call "might lead to rate-limiting or even
  IP block", so tokens are cached per connection (``context.tokens``) and refreshed before expiry.
- **Headers, not path parameters.** Every call needs ``Authorization``, ``User-Agent`` (required)
  and, for catalog calls, ``Brand-Id`` / ``Branch-Id`` headers.
- **Flat catalog with id references** (catalog -> categories -> sub-categories -> items -> groups
  -> options -> nested groups). ``diff: false`` replaces the whole catalog (what is missing is
  deleted); ``diff: true`` adds/updates only what is sent (``deleted: true`` removes).
- **Money.** ``price`` is an ``integer`` in the schema (examples 20, 10, 5, 1) and its unit is not
  stated; all catalog prices are tax-inclusive. See :data:`CAREEM_PRICE_UNIT`.
- **Group rules** (quoted validation): ``multi_select: false`` needs 0 <= min <= #options and
  min <= max <= #options; ``multi_select: true`` needs min > 1 and max == min; a group whose options
  carry nested groups cannot be ``multi_select``. An item becomes unavailable when fewer options
  are available than a group's ``min``.
- **Ordering.** ``priority``: items, groups and options show the *lower* value first; categories
  show the *higher* value first and no two categories may share one.
- **Hours.** ``operational_hours[].day_of_week`` runs 1..7 (1 = Sunday, inferred from the official
  sample), shifts are local ``"HH:MM"`` in ``"00:00".."23:59"``, an end of ``00:00`` is refused, so a
  shift past midnight is split across two days.
- **Async result.** ``PUT /catalogs`` answers 200 with a ``request_id``; the outcome arrives by the
  ``CATALOG_REQUEST_STATUS_UPDATED`` webhook and by ``GET /catalogs/status/{request_id}``. 409 means
  an upload is already running for the branch (transient, platform healthy).
- **Webhooks** carry a static shared key in ``x-careem-api-key`` (no HMAC); Careem makes 5
  attempts, then drops the event; any 2xx acknowledges.
- **Limits.** 1 catalog sync per branch every 2 minutes, 50 per minute across branches, at most
  8,500 items per sync, at most 40 items per availability call; 429 without a documented
  ``Retry-After``.
- **Availability** (``PATCH /catalogs/{catalog_id}/items``) takes items only, ``active|inactive``,
  with no end time; store visibility is ``status_id`` 1 (active) / 2 (inactive, visible but cannot
  order), with a timed pause in minutes via ``visibility/status/expiries``.

Open questions (PLATFORMS.md section 9) and the choices made here:

- *Is catalog ``price`` in major or minor units?* Major (the examples only make sense as whole
  dirhams), held in the one constant :data:`CAREEM_PRICE_UNIT`. A major-unit price with a fraction
  (12.50 AED) is sent as a JSON decimal number (12.5): refusing it would block most real menus, and
  Careem's own order money fields are decimals in major units. Connections that find Careem
  refusing fractions set ``SyncConfig.fractional_prices = "reject"`` and ``validate_menu`` then
  refuses such prices before any call.
- *Are deletions supported under ``diff: true``?* Yes, as the official diff sample does: a partial
  push sends ``deleted: true`` for a requested item that is gone or hidden on Careem.
- *``day_of_week`` numbering?* 1 = Sunday ... 7 = Saturday (:func:`careem_day_of_week`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar
from urllib.parse import urlsplit

import httpx2
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
)

from menusync.core.resilience.retry import RetryPolicy
from menusync.menus.canonical import (
    CanonicalMenu,
    Item,
    ModifierGroup,
    PlatformOverride,
    ScheduleRule,
    Weekday,
)
from menusync.platforms.base import (
    AdapterContext,
    AvailabilityChange,
    Capability,
    ConnectionCheck,
    LimitRule,
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
from menusync.platforms.errors import (
    PlatformAuthError,
    PlatformBusy,
    PlatformContractError,
    PlatformError,
    PlatformNotFound,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from menusync.platforms.tokens import AccessToken, TokenCache

KIND: Final = "careem"

CAREEM_PRICE_UNIT: Final[Literal["major", "minor"]] = "major"
"""The unit of catalog ``price`` (PLATFORMS.md 3.3: unstated; the schema says ``integer`` and the
examples 20/10/5/1 only make sense as whole major units). Open question: switch to ``"minor"`` if
Careem confirms minor units; every conversion goes through :func:`careem_price`."""

CURRENCY_IDS: Final[Mapping[str, int]] = {
    "AED": 1, "SAR": 2, "EGP": 3, "QAR": 4, "LBP": 5, "KWD": 6, "JOD": 7,
    "BHD": 8, "SGD": 9, "IRR": 10, "OMR": 11, "PKR": 12, "AUD": 13, "IQD": 14,
}  # fmt: skip
"""``catalog.currency_id`` (the table in the ``currency_id`` description of the OpenAPI)."""

MAX_ITEMS_PER_SYNC: Final = 8_500
MAX_ITEMS_PER_AVAILABILITY_CALL: Final = 40
CAREEM_LANGUAGES: Final = ("en", "ar")
""""We only support Arabic and English." Other languages are not sent."""
MEALS_ON_TAG: Final = "careem-mealson"
"""The only item tag Careem accepts."""
CATALOG_RESULT_EVENTS: Final = frozenset(
    {"CATALOG_REQUEST_STATUS_UPDATED", "CATALOG_STATUS_UPDATED"}
)
"""The official example says ``CATALOG_REQUEST_STATUS_UPDATED``; the tag text says
``CATALOG_STATUS_UPDATED``. Both are accepted."""
WEBHOOK_KEY_HEADER: Final = "x-careem-api-key"
TEST_CONNECTION_TIMEOUT: Final = 10.0
TOKEN_EARLY_REFRESH: Final = timedelta(minutes=5)
"""A 24 h token is treated as expiring this much earlier, so no call starts with a token that
could expire in flight (the cache adds its own small margin)."""
LAST_MINUTE: Final = time(23, 59)
"""Careem refuses a shift ending at 00:00; a shift up to midnight ends at 23:59 instead."""

_CAREEM_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$"
CareemId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=_CAREEM_ID)]


def careem_day_of_week(day: Weekday) -> int:
    """Careem's ``day_of_week``: 1 = Sunday, 2 = Monday ... 7 = Saturday (PLATFORMS.md 3.3 [I])."""
    return (day.iso_index + 1) % 7 + 1


def careem_price(amount: Decimal, minor_units: int) -> int | float:
    """A canonical major-unit amount in Careem's unit (:data:`CAREEM_PRICE_UNIT`).

    Major units: a whole amount is sent as a JSON integer (the schema's type); an amount with a
    fraction is sent as a JSON decimal number (see the module docstring for why), unless the sync
    configuration refuses fractions in ``validate_menu``."""
    if CAREEM_PRICE_UNIT == "minor":  # pragma: no cover - the open question's other answer
        return int(amount.scaleb(minor_units).to_integral_value(rounding=ROUND_HALF_UP))
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)


def _is_whole_in_careem_unit(amount: Decimal) -> bool:
    return CAREEM_PRICE_UNIT == "minor" or amount == amount.to_integral_value()


def _base_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            "must be an http(s) URL, e.g. https://apigateway.careemdash.com/pos/api/v1"
        )
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    return value.strip().rstrip("/")


# ---- configuration ---------------------------------------------------------------------------


class CareemConfig(PlatformModel):
    """A connection to one Careem branch.

    For the sandbox, point both URLs at its prefix: ``identityBaseUrl =
    http://127.0.0.1:8000/sandbox/careem`` and ``apiBaseUrl =
    http://127.0.0.1:8000/sandbox/careem/pos/api/v1``."""

    client_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    client_secret: SecretStr
    brand_id: CareemId
    """Your brand id on Careem (``Brand-Id`` header), created with ``POST /brands``."""
    branch_id: CareemId
    """Your branch id (``Branch-Id`` header), chosen by you in ``PUT /branches/{branch_id}`` and
    mapped to an outlet by Careem ops."""
    catalog_id: CareemId | None = None
    """The catalog's id (chosen by you; defaults to the branch id)."""
    webhook_api_key: SecretStr | None = None
    """The static key Careem sends in ``x-careem-api-key`` (agreed with Careem at onboarding)."""
    api_base_url: str = "https://apigateway.careemdash.com/pos/api/v1"
    """Staging: ``https://apigateway-stg.careemdash.com/pos/api/v1``."""
    identity_base_url: str = "https://identity.careem.com"
    """Staging: ``https://identity.qa.careem-engineering.com``."""
    user_agent: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ] = "menusync/0.1"
    """Careem requires a ``User-Agent`` on every call."""

    @field_validator("client_secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("client secret is required")
        return value

    @field_validator("webhook_api_key")
    @classmethod
    def _key_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 8:
            raise ValueError("the webhook API key must have at least 8 characters")
        return value

    @field_validator("api_base_url", "identity_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _base_url(value)

    @property
    def effective_catalog_id(self) -> str:
        return self.catalog_id or self.branch_id


LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


class CareemSyncConfig(PlatformModel):
    """How one menu is sent to Careem."""

    price_adjustment_percent: Annotated[Decimal, Field(ge=-90, le=500)] = Decimal(0)
    """Added to every price that has no Careem override (e.g. 10 = +10 %), rounded half up to the
    currency's minor unit."""
    tax_percent: Annotated[Decimal, Field(ge=0, le=100)] | None = None
    """``catalog.tax``; defaults to the menu's ``taxRate``. Prices are always sent tax-inclusive
    (Careem's FAQ); a menu with tax-exclusive prices is grossed up with each item's rate."""
    english_language: LanguageCode = "en"
    """The menu language sent as Careem's ``en``."""
    arabic_language: LanguageCode = "ar"
    """The menu language sent as Careem's ``ar``."""
    catalog_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = (
        None
    )
    """``catalog.name``; defaults to the menu name."""
    fractional_prices: Literal["send", "reject"] = "send"
    """What to do with a price that is not a whole number of major units (see the module
    docstring): send it as a decimal number, or refuse the menu."""
    meals_on_tag: Annotated[str, StringConstraints(min_length=1)] | None = "meals-on"
    """Items with this canonical tag get Careem's ``careem-mealson`` tag."""


# ---- Careem's payload (private vendor models) -----------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Shift(_Wire):
    start_time: str
    end_time: str


class _OperationalHour(_Wire):
    day_of_week: int
    active: bool
    shifts: list[_Shift]


class _Catalog(_Wire):
    id: str
    name: str
    currency_id: int
    include_tax: bool
    tax: float | None = None
    file: str | None = None
    category_ids: list[str]
    operational_hours: list[_OperationalHour] | None = None


class _Category(_Wire):
    id: str
    name: str
    name_localized: dict[str, str]
    description: str | None = None
    description_localized: dict[str, str] | None = None
    priority: int
    media: str | None = None
    sub_categories: list[str] | None = None
    items: list[str]


class _Item(_Wire):
    id: str
    name: str | None = None
    name_localized: dict[str, str] | None = None
    description: str | None = None
    description_localized: dict[str, str] | None = None
    active: bool
    price: int | float | None = None
    calorie_counts: str | None = None
    allergic_information: str | None = None
    operational_hours: list[_OperationalHour] | None = None
    media: str | None = None
    priority: int | None = None
    tags: list[str] | None = None
    groups: list[str] | None = None
    deleted: bool | None = None


class _Group(_Wire):
    id: str
    name: str
    name_localized: dict[str, str]
    description: str | None = None
    description_localized: dict[str, str] | None = None
    multi_select: bool
    min: int
    max: int
    priority: int
    options: list[str]


class _Option(_Wire):
    id: str
    name: str
    name_localized: dict[str, str]
    active: bool
    price: int | float
    priority: int
    groups: list[str] | None = None


class _CatalogRequest(_Wire):
    diff: bool
    catalog: _Catalog
    categories: list[_Category]
    sub_categories: list[_Category]
    items: list[_Item]
    groups: list[_Group]
    options: list[_Option]


# Answers


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _TokenAnswer(_Answer):
    access_token: Annotated[str, StringConstraints(min_length=1)]
    token_type: str = "Bearer"
    expires_in: Annotated[float, Field(gt=0)]


class _CatalogAccepted(_Answer):
    request_id: str | int
    url: str | None = None
    message: str | None = None
    created_at: str | None = None


class _CatalogStatus(_Answer):
    catalog_id: str | int | None = None
    status: Literal["PENDING", "COMPLETED", "FAILED"]
    reason: str | None = None


class _Warning(_Answer):
    entity_name: str | None = None
    entity_id: str | int | None = None
    entity_type: str | None = None
    level: str | None = None
    severity: str | None = None
    description: str | None = None


class _WebhookDetails(_Answer):
    status: str | None = None
    catalog_id: str | int | None = None
    request_id: str | int | None = None
    vendor_brand_id: str | int | None = None
    vendor_branch_id: str | int | None = None
    reason: str | None = None
    warnings: list[_Warning] = Field(default_factory=list)


class _WebhookEnvelope(_Answer):
    event_id: str | int | None = None
    event_type: Annotated[str, StringConstraints(min_length=1)]
    details: _WebhookDetails = Field(default_factory=_WebhookDetails)
    occurred_at: str | None = None


class _Branch(_Answer):
    id: str | int
    state: str | None = None
    name: str | None = None


# ---- the menu as Careem will show it ---------------------------------------------------------


@dataclass(frozen=True)
class _Pricing:
    currency: str
    minor_units: int
    adjustment: Decimal
    default_tax: Decimal
    gross_up: bool

    def amount(
        self, base: Decimal, override: PlatformOverride | None, tax_rate: Decimal | None
    ) -> Decimal:
        """The tax-inclusive major-unit amount Careem gets: the Careem override price as is,
        otherwise the menu price adjusted by the configured percentage."""
        quantum = Decimal(1).scaleb(-self.minor_units)
        if override is not None and override.price is not None:
            amount = override.price
        else:
            amount = base * (Decimal(100) + self.adjustment) / Decimal(100)
        if self.gross_up:
            rate = self.default_tax if tax_rate is None else tax_rate
            amount = amount * (Decimal(100) + rate) / Decimal(100)
        return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def _sync_config(value: Any) -> CareemSyncConfig:
    if value is None:
        return CareemSyncConfig()
    if isinstance(value, CareemSyncConfig):
        return value
    if isinstance(value, BaseModel):
        return CareemSyncConfig.model_validate(value.model_dump(by_alias=True))
    return CareemSyncConfig.model_validate(value)


def _override(overrides: Mapping[str, PlatformOverride]) -> PlatformOverride | None:
    return overrides.get(KIND)


def _is_visible(overrides: Mapping[str, PlatformOverride]) -> bool:
    override = _override(overrides)
    return override is None or override.is_visible is not False


def _text_for(text: Mapping[str, str], language: str) -> str | None:
    if language in text:
        return text[language]
    prefix = language.split("-")[0]
    for code in sorted(text):
        if code.split("-")[0] == prefix:
            return text[code]
    return None


def _localized(text: Mapping[str, str] | None, config: CareemSyncConfig) -> dict[str, str]:
    """Careem's ``{en, ar}`` from canonical text; only the two languages Careem shows."""
    if not text:
        return {}
    result: dict[str, str] = {}
    ours_by_careem = (config.english_language, config.arabic_language)
    for careem_lang, ours in zip(CAREEM_LANGUAGES, ours_by_careem, strict=True):
        value = _text_for(text, ours)
        if value is not None and value.strip():
            result[careem_lang] = value.strip()
    return result


def _plain(localized: Mapping[str, str]) -> str | None:
    return localized.get("en") or localized.get("ar")


def _ranked(entities: Iterable[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """(index, entity) sorted by the entity's sort order, then menu position."""
    return sorted(entities, key=lambda pair: (pair[1].sort_order, pair[0]))


def _operational_hours(rules: list[ScheduleRule]) -> list[_OperationalHour] | None:
    """Careem's week from canonical schedule rules: every day 1..7, shifts in "HH:MM", a range
    past midnight split into [start, 23:59] and [00:00, end] on the next day."""
    if not rules:
        return None
    shifts: dict[int, set[tuple[time, time]]] = {day: set() for day in range(1, 8)}
    for rule in rules:
        for time_range in rule.ranges:
            if time_range.start == time_range.end:
                continue
            for day in rule.days:
                today = careem_day_of_week(day)
                if not time_range.crosses_midnight:
                    shifts[today].add((time_range.start, time_range.end))
                    continue
                shifts[today].add((time_range.start, LAST_MINUTE))
                if time_range.end != time(0, 0):
                    tomorrow = today % 7 + 1
                    shifts[tomorrow].add((time(0, 0), time_range.end))
    return [
        _OperationalHour(
            day_of_week=day,
            active=bool(shifts[day]),
            shifts=[
                _Shift(start_time=start.strftime("%H:%M"), end_time=end.strftime("%H:%M"))
                for start, end in sorted(shifts[day])
            ],
        )
        for day in range(1, 8)
    ]


@dataclass
class _Plan:
    """The canonical menu filtered to what Careem will show, with the canonical path of each
    entity so validation issues point into the menu."""

    visible_items: list[tuple[int, Item]]
    item_paths: dict[str, str]
    visible_options: dict[str, list[str]]
    """Group id -> ids of the options of it that Careem will show, in group order."""
    group_paths: dict[str, str]
    option_paths: dict[str, str]
    used_group_ids: list[str]
    used_option_ids: list[str]


def _plan(menu: CanonicalMenu, only_items: set[str] | None = None) -> _Plan:
    items = [
        (index, item)
        for index, item in enumerate(menu.items)
        if _is_visible(item.platform_overrides) and (only_items is None or item.id in only_items)
    ]
    group_paths = {group.id: f"modifierGroups[{i}]" for i, group in enumerate(menu.modifier_groups)}
    option_paths = {
        option.id: f"modifierOptions[{i}]" for i, option in enumerate(menu.modifier_options)
    }
    used_groups: list[str] = []
    used_options: list[str] = []
    visible_options: dict[str, list[str]] = {}

    def visit_group(group_id: str, trail: frozenset[str]) -> None:
        group = menu.group(group_id)
        if group is None or group_id in trail:
            return
        if group_id not in visible_options:
            used_groups.append(group_id)
            visible_options[group_id] = []
            for option_id in group.option_ids:
                option = menu.option(option_id)
                if option is None or not _is_visible(option.platform_overrides):
                    continue
                visible_options[group_id].append(option_id)
                if option_id not in used_options:
                    used_options.append(option_id)
        for option_id in visible_options[group_id]:
            option = menu.option(option_id)
            if option is not None:
                for nested in option.modifier_group_ids:
                    visit_group(nested, trail | {group_id})

    for _, item in items:
        for group_id in item.modifier_group_ids:
            visit_group(group_id, frozenset())
    return _Plan(
        visible_items=items,
        item_paths={item.id: f"items[{index}]" for index, item in items},
        visible_options=visible_options,
        group_paths=group_paths,
        option_paths=option_paths,
        used_group_ids=used_groups,
        used_option_ids=used_options,
    )


def _group_min_max(group: ModifierGroup, option_count: int) -> tuple[bool, int, int]:
    """``(multi_select, min, max)`` as Careem gets them. ``multi_select`` is Careem's "an option
    can be chosen more than once" (canonical ``allowRepeats``). Without repeats a customer cannot
    choose more options than there are, so ``max`` is capped at the option count (same meaning,
    and Careem refuses a larger ``max``)."""
    if group.allow_repeats:
        return True, group.min_selections, group.max_selections
    return False, group.min_selections, min(group.max_selections, option_count)


_AnswerT = TypeVar("_AnswerT", bound=BaseModel)


# ---- errors ----------------------------------------------------------------------------------


def _json_or_none(response: httpx2.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx2.Response, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if one was sent."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _careem_issues(envelope: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Careem's ``errors: [{field, errors: [{message}]}]`` as issue dicts (path, message, code)."""
    code = str(envelope.get("code") or "VALIDATION_ERROR")
    issues: list[dict[str, Any]] = []
    errors = envelope.get("errors")
    if isinstance(errors, list):
        for entry in errors:
            if not isinstance(entry, Mapping):
                continue
            field_name = str(entry.get("field") or "")
            messages = entry.get("errors")
            if isinstance(messages, list) and messages:
                for message in messages:
                    text = message.get("message") if isinstance(message, Mapping) else message
                    issues.append({"path": field_name, "message": str(text), "code": code})
            elif entry.get("message"):
                issues.append({"path": field_name, "message": str(entry["message"]), "code": code})
    if not issues and envelope.get("message"):
        issues.append({"path": "", "message": str(envelope["message"]), "code": code})
    return issues


def _error_for(response: httpx2.Response, operation: str, now: datetime) -> PlatformError:
    """The platform error for a non-2xx answer (401 is handled by the caller's refresh)."""
    status = response.status_code
    body = _json_or_none(response)
    envelope: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    platform_code = envelope.get("code") or envelope.get("error")
    platform_message = (
        envelope.get("message") or envelope.get("error_description") or response.text[:500]
    )
    details: dict[str, Any] = {"operation": operation}
    if envelope:
        details["response"] = dict(envelope)
    code = str(platform_code) if platform_code is not None else None
    message = f"Careem answered {status} to {operation}: {platform_message or 'no message'}"
    if status == 429:
        return PlatformRateLimited(
            message,
            retry_after=_retry_after(response, now),
            status_code=status,
            platform_code=code,
            details=details,
        )
    if status == 409:
        return PlatformBusy(
            f"Careem is still processing an earlier catalog upload for this branch ({status})",
            retry_after=_retry_after(response, now),
            status_code=status,
            platform_code=code,
            details=details,
        )
    if status >= 500:
        return PlatformUnavailable(
            message,
            retry_after=_retry_after(response, now),
            status_code=status,
            platform_code=code,
            details=details,
        )
    if status == 401:
        return PlatformAuthError(message, status_code=status, platform_code=code, details=details)
    if status == 404:
        return PlatformNotFound(message, status_code=status, platform_code=code, details=details)
    if status in (400, 403, 413, 422):
        return PlatformRejected(
            message,
            issues=_careem_issues(envelope) or [{"path": "", "message": str(platform_message)}],
            status_code=status,
            platform_code=code,
            details=details,
        )
    return PlatformContractError(
        f"Careem answered an unexpected {status} to {operation}",
        status_code=status,
        platform_code=code,
        details=details,
    )


def _parse(model: type[_AnswerT], response: httpx2.Response, operation: str) -> _AnswerT:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise PlatformContractError(
            f"Careem's answer to {operation} did not match its documented schema",
            status_code=response.status_code,
            details={"operation": operation, "body": response.text[:1000], "errors": str(exc)},
        ) from exc


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _push_result_from_status(
    external_ref: str, status: str, reason: str | None, details: dict[str, Any]
) -> PushResult:
    issues: list[PlatformIssue] = []
    if status == "COMPLETED":
        state: Literal["pending", "completed", "failed"] = "completed"
    elif status == "FAILED":
        state = "failed"
        issues.append(
            PlatformIssue(
                path="catalog",
                message=reason or "Careem failed the catalog upload without a reason",
                code="careem_catalog_failed",
            )
        )
    elif status == "PENDING":
        state = "pending"
    else:
        raise PlatformContractError(
            f"Careem reported an unknown catalog status {status!r}",
            details={"status": status, "requestId": external_ref},
        )
    return PushResult(
        state=state,
        external_ref=external_ref,
        issues=tuple(issues),
        message=reason or None,
        details=details,
    )


# ---- the adapter -----------------------------------------------------------------------------


class CareemAdapter:
    """Careem Food / Careem NOW through the POS API v2.1.0."""

    kind: ClassVar[str] = KIND
    display_name: ClassVar[str] = "Careem"
    Config: ClassVar[type[PlatformModel]] = CareemConfig
    SyncConfig: ClassVar[type[PlatformModel]] = CareemSyncConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.MENU_PUSH,
            Capability.PARTIAL_MENU_PUSH,
            Capability.PUSH_STATUS_POLL,
            Capability.PUSH_RESULT_WEBHOOK,
            Capability.ITEM_AVAILABILITY,
            Capability.STORE_STATUS,
            Capability.STORE_PAUSE,
            Capability.TEST_CONNECTION,
        }
    )
    limits: ClassVar[PlatformLimits] = PlatformLimits(
        rules=(
            LimitRule(
                name="careem_requests",
                requests=60,
                per_seconds=60,
                scope="platform",
                operations=frozenset(),
                source="DESIGN.md section 5 (whole-platform request budget)",
            ),
            LimitRule(
                name="careem_catalog_sync_per_branch",
                requests=1,
                per_seconds=120,
                scope="store",
                operations=frozenset({"push_menu"}),
                source="Careem POS API: 1 catalog sync per branch every 2 minutes",
            ),
            LimitRule(
                name="careem_catalog_sync_overall",
                requests=50,
                per_seconds=60,
                scope="platform",
                operations=frozenset({"push_menu"}),
                source="Careem POS API: 50 catalog syncs across all branches per minute",
            ),
        ),
        max_items_per_push=MAX_ITEMS_PER_SYNC,
        max_items_per_availability_call=MAX_ITEMS_PER_AVAILABILITY_CALL,
    )
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(
        max_retries=3, base_delay=5.0, max_delay=300.0, multiplier=2.0
    )
    secret_fields: ClassVar[frozenset[str]] = frozenset({"client_secret", "webhook_api_key"})

    def __init__(self, config: Any, context: AdapterContext) -> None:
        self.config: CareemConfig = (
            config if isinstance(config, CareemConfig) else CareemConfig.model_validate(config)
        )
        self.context = context

    @classmethod
    def store_key(cls, config: Any) -> str:
        """The Careem branch: Careem allows one catalog upload at a time per branch."""
        parsed = config if isinstance(config, CareemConfig) else CareemConfig.model_validate(config)
        return parsed.branch_id

    # ---- payload -----------------------------------------------------------------------

    def build_payload(
        self, menu: CanonicalMenu, sync_config: Any, item_ids: list[str] | None = None
    ) -> MenuPayload:
        """Careem's ``PUT /catalogs`` body for ``menu``. Pure.

        A full push (``diff: false``) sends every entity Careem should show; items hidden on
        Careem (``platformOverrides.careem.isVisible = false``) are left out, so Careem deletes
        them. ``item_ids`` makes a partial push (``diff: true``) on top of an earlier full push:
        those items, the groups and options they use, the categories that hold them, and the
        catalog header. Lists (a category's items, the catalog's categories) are always sent
        complete, so the result does not depend on whether Careem merges or replaces a list. A
        requested item that is not in the menu or is hidden on Careem is sent with
        ``deleted: true``.
        """
        config = _sync_config(sync_config)
        if item_ids is not None and not item_ids:
            raise ValueError("item_ids is empty: pass None for a full push")
        pricing = _Pricing(
            currency=menu.currency,
            minor_units=menu.minor_units,
            adjustment=config.price_adjustment_percent,
            default_tax=menu.tax_rate,
            gross_up=not menu.prices_include_tax,
        )
        full = _plan(menu)
        requested = set(item_ids) if item_ids is not None else None
        plan = full if requested is None else _plan(menu, requested)

        item_priority = {
            item.id: rank + 1 for rank, (_, item) in enumerate(_ranked(enumerate(menu.items)))
        }
        group_priority = {
            group.id: rank + 1
            for rank, (_, group) in enumerate(_ranked(enumerate(menu.modifier_groups)))
        }
        option_priority = {
            option.id: rank + 1
            for rank, (_, option) in enumerate(_ranked(enumerate(menu.modifier_options)))
        }
        visible_item_ids = {item.id for _, item in full.visible_items}

        # Categories: top level -> categories, with a parent -> sub_categories.
        tops = _ranked((i, c) for i, c in enumerate(menu.categories) if c.parent_id is None)
        children: dict[str, list[Any]] = {}
        for index, category in _ranked(enumerate(menu.categories)):
            if category.parent_id is not None:
                children.setdefault(category.parent_id, []).append((index, category))

        def category_items(item_list: list[str]) -> list[str]:
            seen: list[str] = []
            for item_id in item_list:
                if item_id in visible_item_ids and item_id not in seen:
                    seen.append(item_id)
            return seen

        def wire_category(category: Any, priority: int, subs: list[str] | None) -> _Category:
            name = _localized(category.name, config)
            description = _localized(category.description, config)
            return _Category(
                id=category.id,
                name=_plain(name) or category.id,
                name_localized=name,
                description=_plain(description),
                description_localized=description or None,
                priority=priority,
                media=str(category.image.url) if category.image else None,
                sub_categories=subs,
                items=category_items(category.item_ids),
            )

        categories: list[_Category] = []
        sub_categories: list[_Category] = []
        shown_tops = []
        for _, top in tops:
            shown_subs = [
                sub for _, sub in children.get(top.id, []) if category_items(sub.item_ids)
            ]
            if category_items(top.item_ids) or shown_subs:
                shown_tops.append((top, shown_subs))
        # Categories: higher priority first, and no two may share one.
        for rank, (top, shown_subs) in enumerate(shown_tops):
            categories.append(
                wire_category(top, len(shown_tops) - rank, [sub.id for sub in shown_subs] or None)
            )
            for sub_rank, sub in enumerate(shown_subs):
                sub_categories.append(wire_category(sub, len(shown_subs) - sub_rank, None))

        all_category_ids = [c.id for c in categories]
        if requested is not None:
            # Only the categories (and their parents) that hold a requested item, in the menu
            # (so a category that loses a hidden item is resent without it).
            holders = {c.id for c in menu.categories if set(c.item_ids) & requested}
            parents = {c.id for c in categories if set(c.sub_categories or ()) & holders}
            categories = [c for c in categories if c.id in holders | parents]
            sub_categories = [c for c in sub_categories if c.id in holders]

        items: list[_Item] = []
        for _, item in sorted(plan.visible_items, key=lambda pair: item_priority[pair[1].id]):
            override = _override(item.platform_overrides)
            name = _localized(override.name if override and override.name else item.name, config)
            description = _localized(
                override.description if override and override.description else item.description,
                config,
            )
            price = pricing.amount(item.price, override, item.tax_rate)
            tags = (
                [MEALS_ON_TAG]
                if config.meals_on_tag is not None and config.meals_on_tag in item.tags
                else None
            )
            items.append(
                _Item(
                    id=item.id,
                    name=_plain(name) or item.id,
                    name_localized=name,
                    description=_plain(description),
                    description_localized=description or None,
                    active=item.is_available,
                    price=careem_price(price, menu.minor_units),
                    calorie_counts=str(item.calories) if item.calories is not None else None,
                    allergic_information=", ".join(item.allergens) or None,
                    operational_hours=_operational_hours(item.schedule),
                    media=str(item.image.url) if item.image else None,
                    priority=item_priority[item.id],
                    tags=tags,
                    groups=[g for g in item.modifier_group_ids if g in plan.visible_options]
                    or None,
                )
            )
        if requested is not None:
            present = {item.id for _, item in plan.visible_items}
            for item_id in sorted(requested - present):
                items.append(_Item(id=item_id, active=False, deleted=True))

        groups: list[_Group] = []
        for group_id in sorted(plan.used_group_ids, key=lambda g: group_priority[g]):
            group = menu.group(group_id)
            if group is None:
                continue
            option_ids = sorted(plan.visible_options[group_id], key=lambda o: option_priority[o])
            multi_select, minimum, maximum = _group_min_max(group, len(option_ids))
            name = _localized(group.name, config)
            description = _localized(group.description, config)
            groups.append(
                _Group(
                    id=group.id,
                    name=_plain(name) or group.id,
                    name_localized=name,
                    description=_plain(description),
                    description_localized=description or None,
                    multi_select=multi_select,
                    min=minimum,
                    max=maximum,
                    priority=group_priority[group.id],
                    options=option_ids,
                )
            )

        options: list[_Option] = []
        for option_id in sorted(plan.used_option_ids, key=lambda o: option_priority[o]):
            option = menu.option(option_id)
            if option is None:
                continue
            override = _override(option.platform_overrides)
            name = _localized(override.name if override and override.name else option.name, config)
            price = pricing.amount(option.price, override, None)
            options.append(
                _Option(
                    id=option.id,
                    name=_plain(name) or option.id,
                    name_localized=name,
                    active=option.is_available,
                    price=careem_price(price, menu.minor_units),
                    priority=option_priority[option.id],
                    groups=[g for g in option.modifier_group_ids if g in plan.visible_options]
                    or None,
                )
            )

        menu_name = _localized(menu.name, config)
        tax = config.tax_percent if config.tax_percent is not None else menu.tax_rate
        request = _CatalogRequest(
            diff=requested is not None,
            catalog=_Catalog(
                id=self.config.effective_catalog_id,
                name=config.catalog_name or _plain(menu_name) or self.config.effective_catalog_id,
                currency_id=CURRENCY_IDS.get(menu.currency, 0),
                include_tax=True,
                tax=float(tax),
                file=str(menu.image.url) if menu.image else None,
                # Always the complete list: under ``diff: true`` a list replaces the stored one.
                category_ids=all_category_ids,
                operational_hours=_operational_hours(menu.schedule),
            ),
            categories=categories,
            sub_categories=sub_categories,
            items=items,
            groups=groups,
            options=options,
        )
        return MenuPayload(
            body=request.model_dump(mode="json", exclude_none=True),
            items_total=sum(1 for item in items if not item.deleted),
            is_partial=requested is not None,
        )

    def validate_menu(self, menu: CanonicalMenu, sync_config: Any) -> list[PlatformIssue]:
        """Every documented Careem rule ``menu`` breaks, with its path in the menu. Pure."""
        return list(self._issues(menu, _sync_config(sync_config)))

    def _issues(self, menu: CanonicalMenu, config: CareemSyncConfig) -> Iterator[PlatformIssue]:
        if menu.currency not in CURRENCY_IDS:
            supported = ", ".join(sorted(CURRENCY_IDS))
            yield PlatformIssue(
                path="currency",
                message=f"Careem does not sell in {menu.currency}; its catalogs take {supported}",
                code="careem_unsupported_currency",
            )
        plan = _plan(menu)
        if not plan.visible_items:
            yield PlatformIssue(
                path="items",
                message="No item is visible on Careem: Careem refuses an empty catalog",
                code="careem_empty_catalog",
            )
        if len(plan.visible_items) > MAX_ITEMS_PER_SYNC:
            yield PlatformIssue(
                path="items",
                message=f"{len(plan.visible_items)} items are visible on Careem; a catalog sync "
                f"takes at most {MAX_ITEMS_PER_SYNC:,}. Hide items on Careem or split the menu",
                code="careem_too_many_items",
            )

        def name_issue(path: str, text: Mapping[str, str]) -> PlatformIssue | None:
            if _localized(text, config):
                return None
            return PlatformIssue(
                path=path,
                message=f"Careem shows only English and Arabic: add a name in "
                f"{config.english_language!r} or {config.arabic_language!r} (found: "
                f"{', '.join(sorted(text))})",
                code="careem_name_missing",
            )

        if issue := name_issue("name", menu.name):
            yield issue
        for index, category in enumerate(menu.categories):
            if issue := name_issue(f"categories[{index}].name", category.name):
                yield issue

        pricing = _Pricing(
            currency=menu.currency,
            minor_units=menu.minor_units,
            adjustment=config.price_adjustment_percent,
            default_tax=menu.tax_rate,
            gross_up=not menu.prices_include_tax,
        )

        def price_issue(path: str, amount: Decimal) -> PlatformIssue | None:
            if config.fractional_prices == "send" or _is_whole_in_careem_unit(amount):
                return None
            return PlatformIssue(
                path=path,
                message=f"Careem catalog prices are whole {menu.currency} amounts (this connection "
                f"refuses fractions) but this price becomes {amount}: round it or set a Careem "
                f"price override",
                code="careem_fractional_price",
            )

        for index, item in plan.visible_items:
            path = f"items[{index}]"
            override = _override(item.platform_overrides)
            name_path = f"{path}.platformOverrides.careem.name"
            if override is None or override.name is None:
                name_path = f"{path}.name"
            if issue := name_issue(
                name_path, override.name if override and override.name else item.name
            ):
                yield issue
            price_path = (
                f"{path}.platformOverrides.careem.price"
                if override is not None and override.price is not None
                else f"{path}.price"
            )
            if issue := price_issue(
                price_path, pricing.amount(item.price, override, item.tax_rate)
            ):
                yield issue
            for ref_index, group_id in enumerate(item.modifier_group_ids):
                group = menu.group(group_id)
                if group is None:
                    continue
                available = [
                    option_id
                    for option_id in plan.visible_options.get(group_id, [])
                    if (option := menu.option(option_id)) is not None and option.is_available
                ]
                visible = plan.visible_options.get(group_id, [])
                if len(available) < group.min_selections <= len(visible):
                    yield PlatformIssue(
                        path=f"{path}.modifierGroupIds[{ref_index}]",
                        message=f"Only {len(available)} option(s) of group {group_id!r} are "
                        f"available but it needs {group.min_selections}: Careem will show this "
                        f"item as unavailable",
                        code="careem_item_unavailable_by_group",
                        severity="warning",
                    )

        for group_id in plan.used_group_ids:
            group = menu.group(group_id)
            if group is None:
                continue
            path = plan.group_paths[group_id]
            if issue := name_issue(f"{path}.name", group.name):
                yield issue
            count = len(plan.visible_options[group_id])
            if group.allow_repeats:
                if group.min_selections <= 1:
                    yield PlatformIssue(
                        path=f"{path}.minSelections",
                        message="Careem allows choosing an option more than once (allowRepeats) "
                        "only when at least 2 choices are required: set minSelections to 2 or "
                        "more, or turn allowRepeats off",
                        code="careem_multi_select_min",
                    )
                if group.max_selections != group.min_selections:
                    yield PlatformIssue(
                        path=f"{path}.maxSelections",
                        message=f"Careem needs maxSelections equal to minSelections "
                        f"({group.min_selections}) when options can be chosen more than once "
                        f"(allowRepeats)",
                        code="careem_multi_select_max",
                    )
                nested = [
                    option_id
                    for option_id in plan.visible_options[group_id]
                    if (option := menu.option(option_id)) is not None and option.modifier_group_ids
                ]
                if nested:
                    yield PlatformIssue(
                        path=f"{path}.allowRepeats",
                        message=f"Careem does not allow repeated choices in a group whose options "
                        f"have their own groups (option {nested[0]!r}): turn allowRepeats off",
                        code="careem_multi_select_nested",
                    )
            elif group.min_selections > count:
                yield PlatformIssue(
                    path=f"{path}.minSelections",
                    message=f"minSelections ({group.min_selections}) is more than the {count} "
                    f"option(s) Careem will show; Careem needs 0 <= min <= number of options",
                    code="careem_group_min",
                )
            if count == 0:
                yield PlatformIssue(
                    path=f"{path}.optionIds",
                    message="No option of this group is visible on Careem: show at least one "
                    "option or remove the group from its items",
                    code="careem_group_empty",
                )

        for option_id in plan.used_option_ids:
            option = menu.option(option_id)
            if option is None:
                continue
            path = plan.option_paths[option_id]
            override = _override(option.platform_overrides)
            name_path = f"{path}.name"
            if override is not None and override.name is not None:
                name_path = f"{path}.platformOverrides.careem.name"
            if issue := name_issue(
                name_path, override.name if override and override.name else option.name
            ):
                yield issue
            price_path = (
                f"{path}.platformOverrides.careem.price"
                if override is not None and override.price is not None
                else f"{path}.price"
            )
            if issue := price_issue(price_path, pricing.amount(option.price, override, None)):
                yield issue

    # ---- HTTP ---------------------------------------------------------------------------

    def _token_key(self) -> str:
        return TokenCache.key_for(
            KIND,
            self.config.identity_base_url,
            self.config.client_id,
            self.config.client_secret.get_secret_value(),
        )

    async def _fetch_token(self, timeout: float | None = None) -> AccessToken:
        """``POST {identity}/token`` as ``multipart/form-data``."""
        now = self.context.clock.now()
        response = await self._send(
            "token",
            "POST",
            f"{self.config.identity_base_url}/token",
            files={
                "client_id": (None, self.config.client_id),
                "client_secret": (None, self.config.client_secret.get_secret_value()),
                "grant_type": (None, "client_credentials"),
                "scope": (None, "pos"),
            },
            headers={"User-Agent": self.config.user_agent, "Accept": "application/json"},
            timeout=timeout,
        )
        if response.status_code in (400, 401, 403):
            error = _error_for(response, "token", now)
            raise PlatformAuthError(
                f"Careem refused the client credentials: {error.details.get('response', {})}",
                status_code=response.status_code,
                platform_code=error.platform_code,
                details=error.details,
            )
        if not response.is_success:
            raise _error_for(response, "token", now)
        answer = _parse(_TokenAnswer, response, "token")
        lifetime = timedelta(seconds=answer.expires_in)
        if lifetime > 2 * TOKEN_EARLY_REFRESH:
            lifetime -= TOKEN_EARLY_REFRESH
        return AccessToken(value=answer.access_token, expires_at=now + lifetime)

    async def _token(self, timeout: float | None = None) -> AccessToken:
        async def fetch() -> AccessToken:
            return await self._fetch_token(timeout)

        return await self.context.tokens.get(self._token_key(), fetch)

    async def _send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        files: Mapping[str, tuple[None, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        try:
            return await self.context.http.request(
                operation,
                method,
                url,
                json_body=json_body,
                files=files,
                headers=headers,
                timeout=timeout,
            )
        except httpx2.TimeoutException as exc:
            raise PlatformUnavailable(
                f"Careem did not answer {operation} in time",
                details={"operation": operation, "error": type(exc).__name__},
            ) from exc
        except httpx2.HTTPError as exc:
            raise PlatformUnavailable(
                f"Could not reach Careem for {operation}: {type(exc).__name__}",
                details={"operation": operation, "error": f"{type(exc).__name__}: {exc}"},
            ) from exc

    async def _api(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        timeout: float | None = None,
        expected: tuple[int, ...] = (200,),
    ) -> httpx2.Response:
        """One API call with Careem's headers; a 401 gets one token refresh and one retry."""
        url = f"{self.config.api_base_url}{path}"
        for attempt in (1, 2):
            token = await self._token(timeout)
            response = await self._send(
                operation,
                method,
                url,
                json_body=json_body,
                headers={
                    "Authorization": f"Bearer {token.value}",
                    "User-Agent": self.config.user_agent,
                    "Brand-Id": self.config.brand_id,
                    "Branch-Id": self.config.branch_id,
                    "Accept": "application/json",
                },
                timeout=timeout,
            )
            if response.status_code == 401:
                self.context.tokens.invalidate(self._token_key(), token.value)
                if attempt == 1:
                    continue
                error = _error_for(response, operation, self.context.clock.now())
                raise PlatformAuthError(
                    "Careem refused a freshly issued token twice: check the client's "
                    "credentials and permissions",
                    status_code=401,
                    platform_code=error.platform_code,
                    details=error.details,
                )
            if response.status_code in expected:
                return response
            if response.is_success:
                raise PlatformContractError(
                    f"Careem answered {response.status_code} to {operation}; documented: "
                    f"{', '.join(map(str, expected))}",
                    status_code=response.status_code,
                    details={"operation": operation, "body": response.text[:500]},
                )
            raise _error_for(response, operation, self.context.clock.now())
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- push and result ----------------------------------------------------------------

    async def push_menu(self, payload: MenuPayload) -> PushReceipt:
        """``PUT /catalogs``. Raises ``PlatformRejected`` (400: validation, unmapped branch, over
        8,500 items), ``PlatformBusy`` (409: an upload is running for the branch),
        ``PlatformRateLimited`` (429), ``PlatformUnavailable`` (5xx, timeout, connection),
        ``PlatformAuthError`` (401 after one refresh), ``PlatformNotFound`` (404),
        ``PlatformContractError`` (an answer without ``request_id``)."""
        response = await self._api("push_menu", "PUT", "/catalogs", json_body=payload.body)
        answer = _parse(_CatalogAccepted, response, "push_menu")
        return PushReceipt(
            outcome="accepted",
            external_ref=str(answer.request_id),
            message=answer.message,
            poll_after_seconds=15.0,
        )

    async def get_push_result(
        self,
        external_ref: str,
        payload: MenuPayload | None = None,  # noqa: ARG002 - the status endpoint needs only the id
    ) -> PushResult:
        """``GET /catalogs/status/{request_id}``: PENDING, COMPLETED or FAILED with ``reason``.
        Raises ``PlatformNotFound`` (unknown request), ``PlatformRateLimited``,
        ``PlatformUnavailable``, ``PlatformAuthError``, ``PlatformContractError``."""
        response = await self._api("push_status", "GET", f"/catalogs/status/{external_ref}")
        answer = _parse(_CatalogStatus, response, "push_status")
        details: dict[str, Any] = {"status": answer.status}
        if answer.catalog_id is not None:
            details["catalogId"] = str(answer.catalog_id)
        if answer.reason:
            details["reason"] = answer.reason
        return _push_result_from_status(external_ref, answer.status, answer.reason, details)

    # ---- webhooks -----------------------------------------------------------------------

    @classmethod
    def parse_webhook(
        cls,
        headers: Mapping[str, str],  # noqa: ARG003 - Careem puts nothing to parse in headers
        body: bytes,
    ) -> WebhookMessage:
        """Careem's envelope ``{event_id, event_type, details, occurred_at}``. A catalog result
        (``CATALOG_REQUEST_STATUS_UPDATED``) carries the push result, with its ``warnings`` as
        warning issues. Order events carry no push result. An event without ``event_id`` gets
        a stable id from its body, so a redelivery still deduplicates. Raises
        ``PlatformContractError``."""
        try:
            envelope = _WebhookEnvelope.model_validate_json(body)
        except ValidationError as exc:
            raise PlatformContractError(
                "Careem webhook body is not the documented envelope",
                details={"body": body[:1000].decode("utf-8", "replace"), "errors": str(exc)},
            ) from exc
        event_id = (
            str(envelope.event_id)
            if envelope.event_id not in (None, "")
            else "sha256:" + hashlib.sha256(body).hexdigest()
        )
        details = envelope.details
        store_ref = str(details.vendor_branch_id) if details.vendor_branch_id is not None else None
        if envelope.event_type not in CATALOG_RESULT_EVENTS:
            return WebhookMessage(
                event_id=event_id,
                event_type=envelope.event_type,
                external_ref=None,
                store_ref=store_ref,
            )
        if details.request_id is None or details.status is None:
            raise PlatformContractError(
                "Careem catalog webhook without request_id or status",
                details={"eventId": event_id, "eventType": envelope.event_type},
            )
        external_ref = str(details.request_id)
        result_details: dict[str, Any] = {"status": details.status, "eventId": event_id}
        if details.catalog_id is not None:
            result_details["catalogId"] = str(details.catalog_id)
        if envelope.occurred_at:
            result_details["occurredAt"] = envelope.occurred_at
        if details.warnings:
            result_details["warnings"] = [w.model_dump(exclude_none=True) for w in details.warnings]
        result = _push_result_from_status(
            external_ref, details.status, details.reason, result_details
        )
        warnings = tuple(
            PlatformIssue(
                path=f"{(w.entity_type or 'entity').lower()}:{w.entity_id}",
                message=w.description or "Careem reported a catalog warning",
                code=f"careem_warning_{(w.severity or 'unknown').lower()}",
                severity="warning",
            )
            for w in details.warnings
        )
        result = PushResult(
            state=result.state,
            external_ref=result.external_ref,
            issues=result.issues + warnings,
            message=result.message,
            details=result.details,
        )
        return WebhookMessage(
            event_id=event_id,
            event_type=envelope.event_type,
            external_ref=external_ref,
            store_ref=store_ref,
            result=result,
        )

    def verify_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes,  # noqa: ARG002 - a static key covers no body (no HMAC at Careem)
    ) -> bool:
        """Careem signs nothing: it sends the static key agreed at onboarding in
        ``x-careem-api-key`` (header names compared case-insensitively, the key in constant
        time). Without a configured key nothing verifies. ``body`` is not covered by the key."""
        expected = self.config.webhook_api_key
        given = _header(headers, WEBHOOK_KEY_HEADER)
        if expected is None or given is None:
            return False
        return hmac.compare_digest(
            given.strip().encode("utf-8"), expected.get_secret_value().encode("utf-8")
        )

    @classmethod
    def webhook_reply(cls, message: WebhookMessage | None, *, accepted: bool) -> WebhookReply:
        """Any 2xx stops Careem's redelivery (5 attempts in all, then the event is lost); a 503
        asks for another attempt."""
        if accepted:
            body: dict[str, Any] = {"received": True}
            if message is not None:
                body["eventId"] = message.event_id
            return WebhookReply(status_code=200, body=body)
        return WebhookReply(status_code=503, body={"received": False})

    # ---- availability and store status --------------------------------------------------

    async def set_item_availability(self, changes: list[AvailabilityChange]) -> OperationResult:
        """``PATCH /catalogs/{catalog_id}/items`` in batches of at most 40 items, each
        ``active``/``inactive`` (204). Careem's availability call takes items only and no end
        time: option changes are reported as partial failures (push the menu instead), ``until``
        is ignored. Raises ``PlatformRejected`` (400), ``PlatformNotFound`` (404: unknown
        catalog), ``PlatformRateLimited``, ``PlatformUnavailable``, ``PlatformAuthError``."""
        latest: dict[str, AvailabilityChange] = {}
        failures: list[dict[str, Any]] = []
        for change in changes:
            if change.kind != "item":
                failures.append(
                    {
                        "itemId": change.item_id,
                        "kind": change.kind,
                        "reason": "Careem's availability API takes items only; push the menu "
                        "to change an option",
                    }
                )
                continue
            latest.pop(change.item_id, None)
            latest[change.item_id] = change
        batch: list[AvailabilityChange] = list(latest.values())
        path = f"/catalogs/{self.config.effective_catalog_id}/items"
        processed = 0
        for start in range(0, len(batch), MAX_ITEMS_PER_AVAILABILITY_CALL):
            chunk = batch[start : start + MAX_ITEMS_PER_AVAILABILITY_CALL]
            await self._api(
                "item_availability",
                "PATCH",
                path,
                json_body={
                    "items": [
                        {"id": c.item_id, "status": "active" if c.is_available else "inactive"}
                        for c in chunk
                    ]
                },
                expected=(200, 204),
            )
            processed += len(chunk)
        return OperationResult(
            succeeded=not failures,
            message=f"{processed} item(s) updated on Careem (shown within about 5 minutes)",
            partial_failures=tuple(failures),
            items_processed=processed,
        )

    async def set_store_status(self, change: StoreStatusChange) -> OperationResult:
        """``POST /branches/{id}/visibility/status`` with ``status_id`` 1 (open) or 2 (closed:
        visible but cannot order); a pause with ``until`` uses ``visibility/status/expiries``
        with ``till_time`` in whole minutes (rounded up). Raises ``PlatformNotFound`` (404: the
        branch is not mapped), ``PlatformRejected``, ``PlatformRateLimited``,
        ``PlatformUnavailable``, ``PlatformAuthError``."""
        base = f"/branches/{self.config.branch_id}/visibility/status"
        if change.state == "paused" and change.until is not None:
            seconds = (change.until - self.context.clock.now()).total_seconds()
            minutes = max(1, math.ceil(seconds / 60))
            response = await self._api(
                "store_status",
                "POST",
                f"{base}/expiries",
                json_body={"status_id": 2, "till_time": minutes},
                expected=(200, 201),
            )
            answer = _json_or_none(response)
            ends = answer.get("end_date") if isinstance(answer, Mapping) else None
            return OperationResult(
                succeeded=True,
                message=f"Careem branch paused for {minutes} minute(s)"
                + (f" (until {ends})" if ends else ""),
                items_processed=1,
            )
        status_id = 1 if change.state == "open" else 2
        await self._api(
            "store_status",
            "POST",
            base,
            json_body={"status_id": status_id},
            expected=(200, 201, 204),
        )
        label = "open (active)" if status_id == 1 else "closed (inactive: visible, cannot order)"
        return OperationResult(succeeded=True, message=f"Careem branch {label}", items_processed=1)

    async def test_connection(self) -> ConnectionCheck:
        """A token request and ``GET /branches/{branch_id}``, each with a short timeout. Never
        raises: failures come back as ``ok=False`` with Careem's answer in ``details``."""
        try:
            response = await self._api(
                "test_connection",
                "GET",
                f"/branches/{self.config.branch_id}",
                timeout=TEST_CONNECTION_TIMEOUT,
            )
            branch = _parse(_Branch, response, "test_connection")
        except PlatformError as exc:
            return ConnectionCheck(
                ok=False,
                message=exc.message,
                details={"code": exc.code, **exc.details},
            )
        details = {"branchId": str(branch.id), "state": branch.state}
        if branch.state is not None and branch.state.upper() != "MAPPED":
            return ConnectionCheck(
                ok=False,
                message=f"Credentials work, but branch {branch.id} is {branch.state}: ask Careem "
                "operations to map it to an outlet before pushing a catalog",
                details=details,
            )
        return ConnectionCheck(
            ok=True, message=f"Connected to Careem branch {branch.id}", details=details
        )


__all__ = [
    "CAREEM_PRICE_UNIT",
    "CURRENCY_IDS",
    "CareemAdapter",
    "CareemConfig",
    "CareemSyncConfig",
    "careem_day_of_week",
    "careem_price",
]
