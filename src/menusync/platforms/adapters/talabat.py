"""Talabat, through Delivery Hero's POS Integration Middleware.

Talabat (and HungerStation, foodpanda, Yemeksepeti...) take menus from a POS through Delivery
Hero's "Integration Middleware". Facts and sources: ``PLATFORMS.md`` section 2; the primary source
is Delivery Hero's own OpenAPI (``middlewareExternalApi.yaml`` and ``docs/api/pluginApi.yaml``,
copied into the public repository ``Nahuel90gem/test-pedidosya-sse``); portals
https://developers.deliveryhero.com/documentation/pos.html,
https://integration.foodpanda.com/en/documentation and ``integration.talabat.com/en/documentation``.

Quirks this adapter deals with:

- **Login**: ``POST {base}/v2/login``, form-encoded ``username``, ``password``,
  ``grant_type=client_credentials``; the answer is a JWT living about 1800 s, sent as
  ``Authorization: Bearer`` on every call. Credentials arrive PGP-encrypted from Delivery Hero.
- **Hosts**: production for Talabat is the Middle East region,
  ``https://integration-middleware.me.restaurant-partners.com``; staging is
  ``https://integration-middleware.stg.restaurant-partners.com``.
- **Full catalogs only**: "It is only supported to push full catalogs for a vendor. The support
  of partial updates is planned". ``PUT /v2/chains/{chainCode}/catalog`` answers **202**
  ``{status: "submitted", catalogImportId}``; validation, image checks and the push to each
  platform vendor happen later. ``itemIds`` therefore still pushes the whole catalog.
- **Result**: a ``POST`` to ``callbackUrl`` signed with an **HS512 JWT** (shared plugin secret,
  claim ``service: "middleware"``, no body signature): first ``in_progress``, then ``done``,
  ``done_with_errors`` or ``failed``. Answer 200 to keep receiving updates, 204 to stop. The same
  outcome can be polled in ``GET .../vendors/{posVendorId}/menu-import-logs``.
- **Catalog shape**: one flat map ``catalog.items`` keyed by id, entries typed ``Menu``,
  ``Category``, ``Product``, ``Topping``, ``Image``, ``ScheduleEntry``; parents point at children
  by ``{id, type}``. Prices are decimal strings in major units (``"18.00"``); the currency is not
  in the payload, it follows the platform vendor. Titles are ``{default, <lang>...}`` maps.
  Products not listed on a ``Menu`` are not sold, so option products live in a category that no
  menu lists (hidden). Every product must be in a category. Ids are the ``remoteCode`` sent back
  on orders, so they must stay stable.
- **Talabat toppings**: at most two levels; level one must be a mutually exclusive choice
  (``minimum = maximum = 1``) even with a single option.
- **Images**: at most 20 MB and 16 Mpx, GIF/JPEG/Lottie/PNG/SVG/TIFF/WebP, and immutable URLs
  (a new picture needs a new URL), so image ids derive from the URL.
- **Item availability**: ``PUT .../vendors/{posVendorId}/catalog/items/availability``; **204**
  when every platform vendor applied it, **200** with per-platform ``details`` when some did not.
- **Store status**: ``GET`` then ``PUT .../remoteVendors/{posVendorId}/availability``; only the
  states, reasons and minutes the GET offered are valid, and only where ``changeable`` is true.
  A **204** on the GET means "acknowledged, not ready yet": retry in a few seconds.
- **Errors**: catalog endpoints answer ``{errorCode, message}``, others ``{code, message}``. No
  rate limits are published; menusync budgets itself (DESIGN.md section 5).

Open questions (PLATFORMS.md section 9) and the choice made here:

- The exact ``catalog-schema.yaml`` is not public. ``menuType`` is always ``DELIVERY`` (the only
  value seen); Arabic goes under the ``ar`` key (configurable through ``SyncConfig.languageKeys``);
  topping quantities use ``{minimum, maximum}`` (what production imports send; the spec's
  Talabat example says ``{min, max}``).
- The availability request schemas are not public: the body is the one the spec's description
  gives (``globalEntityId, items, type, isAvailable, willBeAvailable, atTimeStamp``), sent with
  ``PUT`` (the spec) rather than ``POST`` (the foodpanda portal overview).
- No rate limits are published: the whole-platform budget of DESIGN.md (40/min) is our own, and no
  per-store rule is declared.
- Money: see :data:`PRICES_AS_DECIMAL_STRINGS`.
- Schedules crossing midnight are allowed on Talabat but not on the Pandora platforms; we always
  split them at midnight, which is valid everywhere and means the same.
- ``done_with_errors`` (some platform vendors imported, some not) is reported as a failed push
  with the failing vendors as issues, so an operator sees it.
- Talabat's first-level rule (min = max = 1) would refuse most real menus (optional extras on an
  item). By default (``SyncConfig.wrapOptionalToppings``) such groups are nested under a
  one-option mandatory choice per item, the "even with one option" pattern of the rule; the
  synthetic ids (``menusync-choice-<item>``, ``menusync-base-<item>``) come back on orders.
- Delivery Hero publishes no catalog size limit: :data:`MAX_CATALOG_PRODUCTS` is our own guard.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar
from urllib.parse import urlsplit

import httpx2
import jwt
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from menusync.core.resilience.retry import RetryPolicy
from menusync.menus.canonical import (
    CURRENCY_MINOR_UNITS,
    CanonicalMenu,
    Category,
    Item,
    ModifierGroup,
    ModifierOption,
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
from menusync.platforms.tokens import AccessToken

PRODUCTION_BASE_URL: Final = "https://integration-middleware.me.restaurant-partners.com"
"""Middle East + Turkey production host, the one Talabat vendors live on (PLATFORMS.md 2.1)."""
STAGING_BASE_URL: Final = "https://integration-middleware.stg.restaurant-partners.com"

PRICES_AS_DECIMAL_STRINGS: Final = True
"""Open question on money (PLATFORMS.md 2.4 and 9): Delivery Hero documents ``price`` as a
decimal **string in major units** (``"1.50"``), while some examples use bare JSON numbers. We send
strings, with as many decimals as the vendor's currency has (3 for KWD, BHD, OMR, JOD: the Gnext
plan's OMR note). Flip to ``False`` to send JSON numbers instead if Delivery Hero asks for them."""

MAX_CATALOG_PRODUCTS: Final = 10_000
"""Our own guard, not a published limit: Delivery Hero documents none. A catalog with more
products (items plus option products) is refused before any call."""

AVAILABILITY_BATCH: Final = 100
"""Items per availability call. Not a published limit either; keeps each call small."""

TOKEN_LIFETIME_SECONDS: Final = 1800
"""Used when the login answer carries no ``expires_in`` (PLATFORMS.md 2.1: ~1800 s)."""

TEST_CONNECTION_TIMEOUT: Final = 10.0

WEBHOOK_LEEWAY_SECONDS: Final = 60
"""Clock skew tolerated on the callback JWT's ``exp``/``nbf``, when it carries them."""

SYNTHETIC_ID_PREFIX: Final = "menusync-"
"""Catalog entries menusync adds (menus, schedules, images, the hidden options category) use ids
with this prefix; canonical ids must not start with it."""

IMAGE_FORMATS: Final = frozenset(
    {"gif", "jpg", "jpeg", "json", "lottie", "png", "svg", "tif", "tiff", "webp"}
)
"""Extensions of the documented formats (GIF, JPEG, Lottie, PNG, SVG, TIFF, WebP)."""

# Platform vendors' currency, by global entity (the catalog carries none: PLATFORMS.md 2.4).
ENTITY_CURRENCIES: Final[Mapping[str, str]] = {
    "TB_AE": "AED", "TB_KW": "KWD", "TB_BH": "BHD", "TB_OM": "OMR", "TB_QA": "QAR",
    "TB_JO": "JOD", "TB_EG": "EGP", "TB_IQ": "IQD", "HS_SA": "SAR", "HF_EG": "EGP",
}  # fmt: skip

CLOSING_REASONS: Final = frozenset(
    {
        "TOO_BUSY_NO_DRIVERS", "TOO_BUSY_KITCHEN", "UPDATES_IN_MENU", "TECHNICAL_PROBLEM",
        "CLOSED", "OTHER", "CHECK_IN_REQUIRED", "ORDER_FAILURE", "TOO_MANY_REJECTED_ORDERS",
        "UNREACHABLE", "COURIER_DELAYED_AT_PICKUP", "RESTRICTED_VISIBILITY", "BAD_WEATHER",
        "HOLIDAY_SPECIAL_DAY", "ONBOARDING", "OFFBOARDING", "RETENTION", "COMPLIANCE_ISSUES",
        "OWNERSHIP_CHANGE", "REFURBISHMENT", "FOOD_HYGIENE", "FRAUD", "RELIGIOUS_OBSERVANCE",
        "CHECK_IN_FAILED", "AREA_DISRUPTION",
    }
)  # fmt: skip

_IMPORT_DONE: Final = frozenset({"done", "success", "successful", "completed", "imported"})
_IMPORT_FAILED: Final = frozenset({"failed", "error", "done_with_errors", "rejected"})
_WEEK: Final = tuple(Weekday)

Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$")
]


# ---- configuration ---------------------------------------------------------------------------


class TalabatConfig(PlatformModel):
    """A connection to one Talabat vendor through the Delivery Hero middleware."""

    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    password: SecretStr
    plugin_secret: SecretStr
    """Shared secret Delivery Hero signs its callbacks with (HS512); differs per environment."""
    chain_code: Identifier
    pos_vendor_id: Identifier
    """The POS vendor (remote) id this connection pushes to."""
    global_entity_id: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}_[A-Z]{2}$")] = "TB_AE"
    """Platform and country, e.g. ``TB_AE`` (Talabat UAE), ``TB_KW``, ``HS_SA``."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    """The vendor's currency; derived from ``global_entity_id`` when not given."""
    base_url: AnyHttpUrl = AnyHttpUrl(PRODUCTION_BASE_URL)

    @field_validator("password", "plugin_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _currency_known(self) -> TalabatConfig:
        currency = self.currency or ENTITY_CURRENCIES.get(self.global_entity_id)
        if currency is None:
            raise ValueError(
                f"currency is required for global entity {self.global_entity_id!r} "
                f"(known: {', '.join(sorted(ENTITY_CURRENCIES))})"
            )
        if currency not in CURRENCY_MINOR_UNITS:
            raise ValueError(f"unsupported currency {currency!r}")
        return self

    @property
    def vendor_currency(self) -> str:
        return self.currency or ENTITY_CURRENCIES[self.global_entity_id]

    @property
    def api_base(self) -> str:
        return str(self.base_url).rstrip("/")


class TalabatSyncConfig(PlatformModel):
    """Per-menu settings on Talabat: what the canonical menu does not say."""

    price_adjustment_percent: Annotated[Decimal, Field(ge=-90, le=500)] = Decimal(0)
    """Added to every item and option price (e.g. ``10`` for +10 %), rounded half up."""
    add_tax_to_prices: bool = True
    """When the menu's prices exclude tax, send tax-inclusive prices (Talabat shows what the
    customer pays). Ignored for menus whose prices include tax."""
    default_language: Annotated[
        str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    ] = "en"
    """The canonical language whose text goes under the required ``default`` key."""
    languages: list[Annotated[str, StringConstraints(min_length=2, max_length=12)]] = Field(
        default_factory=lambda: ["en", "ar"]
    )
    """Canonical languages sent as translations beside ``default``."""
    language_keys: dict[str, Annotated[str, StringConstraints(min_length=2, max_length=12)]] = (
        Field(default_factory=dict)
    )
    """Canonical language -> Delivery Hero key, when they differ (e.g. ``{"en-GB": "en"}``)."""
    options_category_title: Annotated[str, StringConstraints(min_length=1, max_length=120)] = (
        "Options"
    )
    """Title of the hidden category that hosts option products (never shown to customers)."""
    wrap_optional_toppings: bool = True
    """Talabat wants every first-level topping to be a single mandatory choice. When an item has
    other groups (optional extras, "pick up to 3"), nest them under a one-option choice named
    after the item (``menusync-choice-<item>`` with option ``menusync-base-<item>``), the way
    Talabat menus model "even with one option". Off: such menus are refused by validation."""


# ---- vendor payload models (private) ---------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class _Ref(_Wire):
    id: str
    type: Literal["Product", "Topping", "Image", "ScheduleEntry"]
    order: int | None = None
    price: str | float | None = None


class _Quantity(_Wire):
    minimum: int
    maximum: int


class _ScheduleEntry(_Wire):
    id: str
    type: Literal["ScheduleEntry"] = "ScheduleEntry"
    start_time: str
    end_time: str
    week_days: list[str]


class _Image(_Wire):
    id: str
    type: Literal["Image"] = "Image"
    url: str
    alt: dict[str, str]


class _Menu(_Wire):
    id: str
    type: Literal["Menu"] = "Menu"
    menu_type: Literal["DELIVERY"] = "DELIVERY"
    title: dict[str, str]
    description: dict[str, str] | None = None
    products: dict[str, _Ref]
    schedule: dict[str, _Ref]


class _Category(_Wire):
    id: str
    type: Literal["Category"] = "Category"
    title: dict[str, str]
    description: dict[str, str] | None = None
    products: dict[str, _Ref]


class _Product(_Wire):
    id: str
    type: Literal["Product"] = "Product"
    title: dict[str, str]
    description: dict[str, str] | None = None
    price: str | float | None = None
    active: bool
    is_prepacked_item: bool = False
    is_express_item: bool = False
    exclude_dish_information: bool = False
    toppings: dict[str, _Ref] | None = None
    images: dict[str, _Ref] | None = None
    tags: dict[str, list[str]] | None = None


class _Topping(_Wire):
    id: str
    type: Literal["Topping"] = "Topping"
    title: dict[str, str]
    description: dict[str, str] | None = None
    quantity: _Quantity
    products: dict[str, _Ref]
    topping_type: Literal["PRODUCT_OPTION"] = "PRODUCT_OPTION"


_Entity = _Menu | _ScheduleEntry | _Category | _Product | _Topping | _Image


class _Catalog(_Wire):
    items: dict[str, _Entity]


class _CatalogRequest(_Wire):
    vendors: list[str]
    catalog: _Catalog
    callback_url: str | None = None


# ---- platform answers (private; unknown fields ignored) ---------------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)


class _LoginAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: Annotated[str, StringConstraints(min_length=1)]
    expires_in: float | None = None
    token_type: str | None = None


class _SubmitAnswer(_Answer):
    status: str | None = None
    catalog_import_id: Annotated[str, StringConstraints(min_length=1)]


class _ImportLog(_Answer):
    menu_import_id: str | None = None
    status: str | None = None
    message: str | None = None
    created_at: str | None = None
    url: str | None = None
    version: str | int | None = None


class _ImportLogs(_Answer):
    menu_import_logs: dict[str, list[_ImportLog]] = Field(default_factory=dict)


class _CallbackDetail(_Answer):
    status: str | None = None
    pos_vendor_id: str | None = None
    platform_vendor_id: str | None = None
    global_entity_id: str | None = None
    message: str | None = None


class _Callback(_Answer):
    catalog_import_id: Annotated[str, StringConstraints(min_length=1)]
    status: Annotated[str, StringConstraints(min_length=1)]
    message: str | None = None
    details: list[_CallbackDetail] = Field(default_factory=list)


class _AvailabilityDetail(_Answer):
    platform_vendor_id: str | None = None
    global_entity_id: str | None = None
    status: str | None = None
    message: str | None = None


class _AvailabilityAnswer(_Answer):
    status: str | None = None
    details: list[_AvailabilityDetail] = Field(default_factory=list)


class _VendorAvailability(_Answer):
    availability_state: str | None = None
    availability_states: list[str] = Field(default_factory=list)
    changeable: bool = False
    closed_reason: str | None = None
    closing_minutes: list[int] = Field(default_factory=list)
    closing_reasons: list[str] = Field(default_factory=list)
    closed_until: str | None = None
    platform_id: str | int | None = None
    platform_key: str | None = None
    platform_restaurant_id: str | None = None
    platform_type: str | None = None


# ---- the pure translation ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Texts:
    default_language: str
    languages: tuple[str, ...]
    keys: Mapping[str, str]

    def pick(self, text: Mapping[str, str]) -> str:
        for lang in (self.default_language, *self.languages):
            if lang in text:
                return text[lang]
        return text[sorted(text)[0]]

    def map(self, text: Mapping[str, str]) -> dict[str, str]:
        result = {"default": self.pick(text)}
        for lang in self.languages:
            if lang in text:
                result[self.keys.get(lang, lang)] = text[lang]
        return result


_Ordered = TypeVar("_Ordered", Category, Item, ModifierOption, ModifierGroup)


def _sorted_by_order(entities: Iterable[_Ordered]) -> list[_Ordered]:
    return sorted(entities, key=lambda entity: entity.sort_order)


def _hhmmss(hour: int, minute: int, second: int = 0) -> str:
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def _schedule_entries(rules: list[ScheduleRule]) -> list[_ScheduleEntry]:
    """Rules as ScheduleEntry, split at midnight; an empty rule list means all week."""
    spans: list[tuple[tuple[str, ...], str, str]] = []
    if not rules:
        spans.append((tuple(day.name for day in _WEEK), "00:00:00", "23:59:59"))
    for rule in rules:
        days = tuple(day.name for day in _WEEK if day in rule.days)
        for time_range in rule.ranges:
            start = _hhmmss(time_range.start.hour, time_range.start.minute)
            end = _hhmmss(time_range.end.hour, time_range.end.minute)
            if not time_range.crosses_midnight:
                spans.append((days, start, end))
                continue
            spans.append((days, start, "23:59:59"))
            if (time_range.end.hour, time_range.end.minute) != (0, 0):
                next_days = tuple(
                    _WEEK[(day.iso_index + 1) % 7].name for day in _WEEK if day in rule.days
                )
                ordered = tuple(day.name for day in _WEEK if day.name in next_days)
                spans.append((ordered, "00:00:00", end))
    entries: dict[str, _ScheduleEntry] = {}
    for days, start, end in spans:
        digest = hashlib.sha256(f"{','.join(days)}|{start}|{end}".encode()).hexdigest()[:12]
        entry_id = f"{SYNTHETIC_ID_PREFIX}schedule-{digest}"
        entries.setdefault(
            entry_id, _ScheduleEntry(id=entry_id, start_time=start, end_time=end, week_days=[*days])
        )
    return list(entries.values())


def _image_id(url: str) -> str:
    # Delivery Hero wants immutable image URLs; an id derived from the URL changes with it.
    return f"{SYNTHETIC_ID_PREFIX}image-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def _is_single_choice(group: ModifierGroup) -> bool:
    return group.min_selections == 1 and group.max_selections == 1


def _format_price(amount: Decimal, places: int) -> str | float:
    quantized = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{quantized:.{places}f}" if PRICES_AS_DECIMAL_STRINGS else float(quantized)


def _reachable_groups(
    menu: CanonicalMenu, items: Iterable[Item]
) -> tuple[list[ModifierGroup], list[ModifierOption]]:
    """Groups and options reachable from ``items``, in first-seen order (deterministic)."""
    groups: dict[str, ModifierGroup] = {}
    options: dict[str, ModifierOption] = {}

    def visit(group_ids: Iterable[str]) -> None:
        for group_id in group_ids:
            group = menu.group(group_id)
            if group is None or group.id in groups:
                continue
            groups[group.id] = group
            for option_id in group.option_ids:
                option = menu.option(option_id)
                if option is None or option.id in options:
                    continue
                options[option.id] = option
                visit(option.modifier_group_ids)

    for item in items:
        visit(item.modifier_group_ids)
    return list(groups.values()), list(options.values())


class _CatalogBuilder:
    """Translates one canonical menu into a Delivery Hero catalog (no I/O)."""

    def __init__(self, menu: CanonicalMenu, sync: TalabatSyncConfig, kind: str) -> None:
        self.menu = menu
        self.sync = sync
        self.kind = kind
        self.texts = _Texts(
            default_language=sync.default_language,
            languages=tuple(sync.languages),
            keys=dict(sync.language_keys),
        )
        self.places = menu.minor_units

    # visibility and overrides

    def item_visible(self, item: Item) -> bool:
        override = item.platform_overrides.get(self.kind)
        return not (override is not None and override.is_visible is False)

    def option_visible(self, option: ModifierOption) -> bool:
        override = option.platform_overrides.get(self.kind)
        return not (override is not None and override.is_visible is False)

    def item_title(self, item: Item | ModifierOption) -> dict[str, str]:
        override = item.platform_overrides.get(self.kind)
        name = override.name if override is not None and override.name else item.name
        return self.texts.map(name)

    def item_description(self, item: Item) -> dict[str, str] | None:
        override = item.platform_overrides.get(self.kind)
        description = (
            override.description
            if override is not None and override.description
            else item.description
        )
        return self.texts.map(description) if description else None

    def price(self, base: Decimal, override: Decimal | None, tax_rate: Decimal | None) -> Decimal:
        if override is not None:
            return override  # the platform's own price, as the restaurant set it
        amount = base
        if not self.menu.prices_include_tax and self.sync.add_tax_to_prices:
            rate = tax_rate if tax_rate is not None else self.menu.tax_rate
            amount = amount * (1 + rate / 100)
        if self.sync.price_adjustment_percent:
            amount = amount * (1 + self.sync.price_adjustment_percent / 100)
        return amount

    def item_price(self, item: Item) -> str | float:
        override = item.platform_overrides.get(self.kind)
        amount = self.price(item.price, override.price if override else None, item.tax_rate)
        return _format_price(amount, self.places)

    def option_price(self, option: ModifierOption) -> str | float:
        override = option.platform_overrides.get(self.kind)
        amount = self.price(option.price, override.price if override else None, None)
        return _format_price(amount, self.places)

    # structure

    def categories(self) -> list[tuple[Category, list[Item]]]:
        """Categories in display order (a sub-category right after its parent), each with its
        visible items in display order; categories left empty are dropped."""
        top = _sorted_by_order(c for c in self.menu.categories if c.parent_id is None)
        ordered: list[Category] = []
        for category in top:
            ordered.append(category)
            ordered.extend(
                _sorted_by_order(c for c in self.menu.categories if c.parent_id == category.id)
            )
        known = {c.id for c in ordered}
        ordered.extend(c for c in self.menu.categories if c.id not in known)  # orphans
        result: list[tuple[Category, list[Item]]] = []
        for category in ordered:
            items = [
                item
                for item_id in category.item_ids
                if (item := self.menu.item(item_id)) is not None and self.item_visible(item)
            ]
            if items:
                result.append((category, _sorted_by_order(items)))
        return result

    def build(self) -> tuple[dict[str, _Entity], int]:
        entities: dict[str, _Entity] = {}
        categories = self.categories()

        sold: dict[str, Item] = {}
        for _, items in categories:
            for item in items:
                sold.setdefault(item.id, item)

        # Menus: the main one on the menu's schedule, one more per distinct item schedule.
        menus: dict[str, tuple[list[ScheduleRule], list[Item]]] = {}
        for item in sold.values():
            if item.schedule:
                key = json.dumps([rule.model_dump(mode="json") for rule in item.schedule])
                menus.setdefault(key, (item.schedule, []))[1].append(item)
            else:
                menus.setdefault("", (self.menu.schedule, []))[1].append(item)
        schedules: dict[str, _ScheduleEntry] = {}
        for index, (key, (rules, items)) in enumerate(
            sorted(menus.items(), key=lambda pair: pair[0] != "")
        ):
            menu_id = f"{SYNTHETIC_ID_PREFIX}menu" + ("" if key == "" else f"-{index}")
            entries = _schedule_entries(rules)
            for entry in entries:
                schedules.setdefault(entry.id, entry)
            entities[menu_id] = _Menu(
                id=menu_id,
                title=self.texts.map(self.menu.name),
                description=self.texts.map(self.menu.description)
                if self.menu.description
                else None,
                products={
                    item.id: _Ref(id=item.id, type="Product", order=order)
                    for order, item in enumerate(items, start=1)
                },
                schedule={entry.id: _Ref(id=entry.id, type="ScheduleEntry") for entry in entries},
            )
        entities.update(schedules)

        for category, items in categories:
            entities[category.id] = _Category(
                id=category.id,
                title=self.texts.map(category.name),
                description=self.texts.map(category.description) if category.description else None,
                products={
                    item.id: _Ref(id=item.id, type="Product", order=order)
                    for order, item in enumerate(items, start=1)
                },
            )

        groups, options = _reachable_groups(self.menu, sold.values())
        visible_options = [option for option in options if self.option_visible(option)]
        wrapped = {item.id: w for item in sold.values() if (w := self.wrapped_groups(item))}
        hosted = [option.id for option in visible_options] + [
            self.base_id(item_id) for item_id in wrapped
        ]
        if hosted:
            options_category = f"{SYNTHETIC_ID_PREFIX}options"
            entities[options_category] = _Category(
                id=options_category,
                title={"default": self.sync.options_category_title},
                products={
                    product_id: _Ref(id=product_id, type="Product", order=order)
                    for order, product_id in enumerate(hosted, start=1)
                },
            )

        images: dict[str, _Image] = {}
        for item in sold.values():
            entities[item.id] = self.product(item, images, wrapped.get(item.id, []))
        for option in visible_options:
            entities[option.id] = _Product(
                id=option.id,
                title=self.item_title(option),
                active=option.is_available,
                toppings=self.topping_refs(option.modifier_group_ids),
            )
        for item_id, group_ids in wrapped.items():
            item = sold[item_id]
            base_id = self.base_id(item_id)
            entities[base_id] = _Product(
                id=base_id,
                title=self.item_title(item),
                active=True,
                toppings=self.topping_refs(group_ids),
            )
        for item_id in wrapped:
            choice_id = self.choice_id(item_id)
            base_id = self.base_id(item_id)
            entities[choice_id] = _Topping(
                id=choice_id,
                title=self.item_title(sold[item_id]),
                quantity=_Quantity(minimum=1, maximum=1),
                products={
                    base_id: _Ref(
                        id=base_id,
                        type="Product",
                        order=1,
                        price=_format_price(Decimal(0), self.places),
                    )
                },
            )
        for group in groups:
            entities[group.id] = self.topping(group)
        entities.update(images)
        return entities, len(sold)

    @staticmethod
    def choice_id(item_id: str) -> str:
        return f"{SYNTHETIC_ID_PREFIX}choice-{item_id}"

    @staticmethod
    def base_id(item_id: str) -> str:
        return f"{SYNTHETIC_ID_PREFIX}base-{item_id}"

    def wrapped_groups(self, item: Item) -> list[str]:
        """The item's groups that are not a single mandatory choice, when they get nested
        under a one-option choice (``SyncConfig.wrapOptionalToppings``)."""
        if not self.sync.wrap_optional_toppings:
            return []
        return [
            group_id
            for group_id in item.modifier_group_ids
            if (group := self.menu.group(group_id)) is not None and not _is_single_choice(group)
        ]

    def product(self, item: Item, images: dict[str, _Image], wrapped: list[str]) -> _Product:
        image_refs: dict[str, _Ref] | None = None
        if item.image is not None:
            url = str(item.image.url)
            image_id = _image_id(url)
            alt = item.image.alt or item.name
            images.setdefault(image_id, _Image(id=image_id, url=url, alt=self.texts.map(alt)))
            image_refs = {image_id: _Ref(id=image_id, type="Image")}
        group_ids = [g for g in item.modifier_group_ids if g not in wrapped]
        toppings = self.topping_refs(group_ids) or {}
        if wrapped:
            choice_id = self.choice_id(item.id)
            toppings[choice_id] = _Ref(id=choice_id, type="Topping", order=len(toppings) + 1)
        return _Product(
            id=item.id,
            title=self.item_title(item),
            description=self.item_description(item),
            price=self.item_price(item),
            active=item.is_available,
            toppings=toppings or None,
            images=image_refs,
            tags={"ageRestrictedItem": ["ID_CHECK_18"]} if item.contains_alcohol else None,
        )

    def topping_refs(self, group_ids: list[str]) -> dict[str, _Ref] | None:
        refs = {
            group_id: _Ref(id=group_id, type="Topping", order=order)
            for order, group_id in enumerate(group_ids, start=1)
            if self.menu.group(group_id) is not None
        }
        return refs or None

    def topping(self, group: ModifierGroup) -> _Topping:
        options = [
            option
            for option_id in group.option_ids
            if (option := self.menu.option(option_id)) is not None and self.option_visible(option)
        ]
        return _Topping(
            id=group.id,
            title=self.texts.map(group.name),
            description=self.texts.map(group.description) if group.description else None,
            quantity=_Quantity(minimum=group.min_selections, maximum=group.max_selections),
            products={
                option.id: _Ref(
                    id=option.id, type="Product", order=order, price=self.option_price(option)
                )
                for order, option in enumerate(_sorted_by_order(options), start=1)
            },
        )


# ---- validation (pure) -----------------------------------------------------------------------


def _issues(
    menu: CanonicalMenu, sync: TalabatSyncConfig, config: TalabatConfig, kind: str
) -> Iterator[PlatformIssue]:
    builder = _CatalogBuilder(menu, sync, kind)
    lang = sync.default_language

    if menu.currency != config.vendor_currency:
        yield PlatformIssue(
            path="currency",
            message=f"the menu is in {menu.currency} but Talabat vendor {config.pos_vendor_id} "
            f"({config.global_entity_id}) sells in {config.vendor_currency}; Delivery Hero "
            "catalogs carry no currency, so prices would be read in the vendor's currency",
            code="currency_mismatch",
        )

    # Ids: unique across the flat catalog, and none of the ids menusync adds for itself.
    seen: dict[str, str] = {}
    collections: list[tuple[str, Sequence[Category | Item | ModifierGroup | ModifierOption]]] = [
        ("categories", menu.categories),
        ("items", menu.items),
        ("modifierGroups", menu.modifier_groups),
        ("modifierOptions", menu.modifier_options),
    ]
    for collection, entities in collections:
        for index, entity in enumerate(entities):
            path = f"{collection}[{index}].id"
            if entity.id.startswith(SYNTHETIC_ID_PREFIX):
                yield PlatformIssue(
                    path=path,
                    message=f"ids starting with {SYNTHETIC_ID_PREFIX!r} are reserved for the "
                    "entries menusync adds to a Delivery Hero catalog; rename this one",
                    code="reserved_id",
                )
            if entity.id in seen:
                yield PlatformIssue(
                    path=path,
                    message=f"id {entity.id!r} is also used at {seen[entity.id]}; Delivery Hero "
                    "keeps every entry in one map keyed by id, so ids must be unique",
                    code="duplicate_id",
                )
            else:
                seen[entity.id] = path

    # Texts: every title needs the language that fills the required ``default`` key.
    def name_issue(path: str, name: Mapping[str, str], what: str) -> Iterator[PlatformIssue]:
        if lang not in name:
            yield PlatformIssue(
                path=f"{path}.name.{lang}",
                message=f"the {what} has no {lang!r} name; Talabat titles need a default text "
                f"and the sync configuration takes it from {lang!r}",
                code="missing_default_text",
            )

    if lang not in menu.name:
        yield PlatformIssue(
            path=f"name.{lang}",
            message=f"the menu has no {lang!r} name; Talabat titles need a default text and "
            f"the sync configuration takes it from {lang!r}",
            code="missing_default_text",
        )
    categories = builder.categories()
    shown_categories = {category.id for category, _ in categories}
    for index, category in enumerate(menu.categories):
        if category.id in shown_categories:
            yield from name_issue(f"categories[{index}]", category.name, "category")

    in_category = {item_id for category in menu.categories for item_id in category.item_ids}
    sold: set[str] = set()
    for index, item in enumerate(menu.items):
        if not builder.item_visible(item):
            continue
        path = f"items[{index}]"
        if item.id not in in_category:
            yield PlatformIssue(
                path=path,
                message="the item is in no category; Delivery Hero requires every product to "
                'be in a category ("Product or one or more of its variants does not belong to a '
                'category")',
                code="product_without_category",
            )
            continue
        sold.add(item.id)
        override = item.platform_overrides.get(kind)
        if override is not None and override.name:
            yield from name_issue(f"{path}.platformOverrides.{kind}", override.name, "item")
        else:
            yield from name_issue(path, item.name, "item")
        if item.image is not None:
            yield from _image_issues(str(item.image.url), f"{path}.image.url")
        for ref_index, group_id in enumerate(item.modifier_group_ids):
            if menu.group(group_id) is None:
                yield PlatformIssue(
                    path=f"{path}.modifierGroupIds[{ref_index}]",
                    message=f"unknown modifier group {group_id!r}",
                    code="unknown_reference",
                )

    if not categories:
        yield PlatformIssue(
            path="categories",
            message="no category has an item Talabat would show; Delivery Hero requires at "
            "least one category with products",
            code="no_category",
        )

    # Toppings: Talabat allows two levels, and level one must be a single mandatory choice.
    group_index = {group.id: index for index, group in enumerate(menu.modifier_groups)}
    option_index = {option.id: index for index, option in enumerate(menu.modifier_options)}
    level_one: dict[str, str] = {}
    level_two: dict[str, str] = {}
    # group id -> why it sits on the second level (for messages)
    for item in menu.items:
        if item.id not in sold:
            continue
        wrapped = builder.wrapped_groups(item)
        for group_id in item.modifier_group_ids:
            group = menu.group(group_id)
            if group_id in wrapped:
                level_two.setdefault(
                    group_id,
                    f"menusync nests this optional group under a single choice for item "
                    f"{item.id!r}",
                )
            else:
                level_one.setdefault(group_id, item.id)
            for option_id in group.option_ids if group else []:
                option = menu.option(option_id)
                for nested in option.modifier_group_ids if option else []:
                    level_two.setdefault(nested, f"it hangs under option {option_id!r}")
    for group_id, item_id in level_one.items():
        group = menu.group(group_id)
        if group is None:
            continue
        path = f"modifierGroups[{group_index[group_id]}]"
        if not _is_single_choice(group):
            field = "minSelections" if group.min_selections != 1 else "maxSelections"
            yield PlatformIssue(
                path=f"{path}.{field}",
                message=f"group {group.id!r} is a first-level topping (of item {item_id!r}) with "
                f"{group.min_selections}..{group.max_selections} selections; Talabat needs "
                "first-level toppings to be a single mandatory choice (minimum 1, maximum 1, "
                "even with one option): nest optional extras under the options of a choice, "
                "or turn on wrapOptionalToppings in the Talabat sync configuration",
                code="talabat_level_one_choice",
            )
    named: set[str] = set()
    for group_id in sorted(level_one.keys() | level_two, key=lambda g: group_index.get(g, 0)):
        group = menu.group(group_id)
        if group is None:
            continue
        path = f"modifierGroups[{group_index[group_id]}]"
        yield from name_issue(path, group.name, "modifier group")
        group_options = [menu.option(option_id) for option_id in group.option_ids]
        for ref_index, option_id in enumerate(group.option_ids):
            if menu.option(option_id) is None:
                yield PlatformIssue(
                    path=f"{path}.optionIds[{ref_index}]",
                    message=f"unknown modifier option {option_id!r}",
                    code="unknown_reference",
                )
        visible = [o for o in group_options if o is not None and builder.option_visible(o)]
        if not visible:
            yield PlatformIssue(
                path=f"{path}.optionIds",
                message=f"every option of group {group.id!r} is hidden on Talabat; a topping "
                "needs at least one product",
                code="empty_topping",
            )
        elif group.min_selections > len(visible):
            yield PlatformIssue(
                path=f"{path}.minSelections",
                message=f"group {group.id!r} asks for {group.min_selections} selections but "
                f"only {len(visible)} of its options are shown on Talabat",
                code="topping_min_exceeds_options",
            )
        for option in visible:
            opt_path = f"modifierOptions[{option_index[option.id]}]"
            if option.id not in named:
                named.add(option.id)
                yield from name_issue(opt_path, option.name, "modifier option")
            if group_id in level_two and option.modifier_group_ids:
                yield PlatformIssue(
                    path=f"{opt_path}.modifierGroupIds",
                    message=f"option {option.id!r} is on the second topping level (group "
                    f"{group.id!r}: {level_two[group_id]}) and carries more toppings; Talabat "
                    "allows at most two topping levels",
                    code="talabat_topping_depth",
                )

    _, reachable = _reachable_groups(menu, (item for item in menu.items if item.id in sold))
    product_count = len(sold) + sum(1 for option in reachable if builder.option_visible(option))
    if product_count > MAX_CATALOG_PRODUCTS:
        yield PlatformIssue(
            path="items",
            message=f"the catalog would hold {product_count} products (items and options); "
            f"menusync sends at most {MAX_CATALOG_PRODUCTS} to Delivery Hero in one import",
            code="too_many_products",
        )


def _image_issues(url: str, path: str) -> Iterator[PlatformIssue]:
    parts = urlsplit(url)
    name = parts.path.rsplit("/", 1)[-1]
    if "." in name:
        extension = name.rsplit(".", 1)[-1].lower()
        if extension not in IMAGE_FORMATS:
            yield PlatformIssue(
                path=path,
                message=f"'.{extension}' images are not accepted; Delivery Hero takes GIF, "
                "JPEG, Lottie, PNG, SVG, TIFF or WebP (at most 20 MB and 16 megapixels)",
                code="image_format",
            )


# ---- HTTP answers -> errors --------------------------------------------------------------------


def _json(response: httpx2.Response) -> object:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _platform_message(body: object) -> tuple[str | None, str | None]:
    """The platform's own ``(code, message)`` from ``{errorCode|code, message}``."""
    if not isinstance(body, dict):
        return None, None
    code = body.get("errorCode", body.get("code"))
    message = body.get("message", body.get("error_description", body.get("error")))
    return (
        str(code) if code is not None else None,
        str(message) if message is not None else None,
    )


def _rejection_issues(body: object, code: str | None, message: str | None) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    if isinstance(body, dict):
        for key in ("errors", "details", "issues", "validationErrors"):
            entries = body.get(key)
            if isinstance(entries, list):
                for entry in entries:
                    if isinstance(entry, dict):
                        text = entry.get("message") or entry.get("error") or json.dumps(entry)
                        issues.append(
                            {
                                "path": str(entry.get("path") or entry.get("field") or "catalog"),
                                "message": str(text),
                                "code": str(entry.get("code") or code or "platform_rejected"),
                                "severity": "error",
                            }
                        )
                    elif isinstance(entry, str):
                        issues.append(
                            {
                                "path": "catalog",
                                "message": entry,
                                "code": code or "platform_rejected",
                                "severity": "error",
                            }
                        )
    if not issues:
        issues.append(
            {
                "path": "catalog",
                "message": message or "rejected by Delivery Hero",
                "code": code or "platform_rejected",
                "severity": "error",
            }
        )
    return issues


def _issues_from_details(details: Iterable[_CallbackDetail]) -> tuple[PlatformIssue, ...]:
    issues: list[PlatformIssue] = []
    for detail in details:
        status = (detail.status or "").lower()
        if status and status not in _IMPORT_DONE and status != "in_progress":
            where = "/".join(
                part
                for part in (detail.global_entity_id, detail.platform_vendor_id)
                if part is not None
            )
            issues.append(
                PlatformIssue(
                    path=f"vendors.{detail.pos_vendor_id or '?'}"
                    + (f".platforms.{where}" if where else ""),
                    message=detail.message
                    or f"the import {status} on platform vendor {where or '?'}",
                    code=f"import_{status}",
                )
            )
    return tuple(issues)


def _import_state(
    status: str | None, message: str | None
) -> Literal["pending", "completed", "failed"]:
    normalised = (status or "").strip().lower()
    if normalised in _IMPORT_DONE:
        return "completed"
    if normalised in _IMPORT_FAILED:
        return "failed"
    if not normalised and message and "successful" in message.lower():
        return "completed"
    return "pending"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


# ---- the adapter -------------------------------------------------------------------------------


class TalabatAdapter:
    """Talabat through the Delivery Hero POS Integration Middleware."""

    kind: ClassVar[str] = "talabat"
    display_name: ClassVar[str] = "Talabat (Delivery Hero)"
    Config: ClassVar[type[PlatformModel]] = TalabatConfig
    SyncConfig: ClassVar[type[PlatformModel]] = TalabatSyncConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.MENU_PUSH,
            Capability.PUSH_STATUS_POLL,
            Capability.PUSH_RESULT_WEBHOOK,
            Capability.ITEM_AVAILABILITY,
            Capability.AVAILABILITY_UNTIL,
            Capability.STORE_STATUS,
            Capability.STORE_PAUSE,
            Capability.TEST_CONNECTION,
        }
    )
    limits: ClassVar[PlatformLimits] = PlatformLimits(
        rules=(
            LimitRule(
                name="talabat-platform-budget",
                requests=40,
                per_seconds=60,
                scope="platform",
                operations=frozenset(),
                source="DESIGN.md section 5 (Delivery Hero publishes no rate limits)",
            ),
        ),
        max_items_per_push=MAX_CATALOG_PRODUCTS,
        max_items_per_availability_call=AVAILABILITY_BATCH,
    )
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(
        max_retries=3, base_delay=3.0, max_delay=180.0, multiplier=2.5
    )
    secret_fields: ClassVar[frozenset[str]] = frozenset({"password", "plugin_secret"})

    def __init__(
        self, config: TalabatConfig | Mapping[str, object], context: AdapterContext
    ) -> None:
        self.config = (
            config if isinstance(config, TalabatConfig) else TalabatConfig.model_validate(config)
        )
        self.context = context
        self._token_key = context.tokens.key_for(
            self.kind,
            self.config.api_base,
            self.config.username,
            self.config.password.get_secret_value(),
        )

    @classmethod
    def store_key(cls, config: TalabatConfig | Mapping[str, object]) -> str:
        parsed = (
            config if isinstance(config, TalabatConfig) else TalabatConfig.model_validate(config)
        )
        return f"{parsed.chain_code}/{parsed.pos_vendor_id}"

    # ---- pure -------------------------------------------------------------------------------

    @staticmethod
    def _sync(sync_config: TalabatSyncConfig | Mapping[str, object] | None) -> TalabatSyncConfig:
        if isinstance(sync_config, TalabatSyncConfig):
            return sync_config
        return TalabatSyncConfig.model_validate(sync_config or {})

    def build_payload(
        self,
        menu: CanonicalMenu,
        sync_config: TalabatSyncConfig | Mapping[str, object] | None,
        item_ids: list[str] | None = None,
    ) -> MenuPayload:
        """The ``PUT /v2/chains/{chainCode}/catalog`` body. Delivery Hero takes full catalogs
        only, so ``item_ids`` is ignored and the whole menu is sent."""
        del item_ids  # no partial form: a full catalog every time
        entities, sold = _CatalogBuilder(menu, self._sync(sync_config), self.kind).build()
        request = _CatalogRequest(
            vendors=[self.config.pos_vendor_id],
            catalog=_Catalog(items=entities),
            callback_url=self.context.callback_url or None,
        )
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        return MenuPayload(body=body, items_total=sold, is_partial=False)

    def validate_menu(
        self, menu: CanonicalMenu, sync_config: TalabatSyncConfig | Mapping[str, object] | None
    ) -> list[PlatformIssue]:
        """Every Delivery Hero / Talabat catalog rule ``menu`` breaks, with canonical paths."""
        return list(_issues(menu, self._sync(sync_config), self.config, self.kind))

    # ---- HTTP plumbing ------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.config.api_base}{path}"

    @property
    def _vendor_path(self) -> str:
        return f"/v2/chains/{self.config.chain_code}/vendors/{self.config.pos_vendor_id}"

    async def _fetch_token(self, timeout: float | None = None) -> AccessToken:
        response = await self._send_raw(
            "token",
            "POST",
            self._url("/v2/login"),
            data={
                "username": self.config.username,
                "password": self.config.password.get_secret_value(),
                "grant_type": "client_credentials",
            },
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
        if response.status_code in (400, 401, 403):
            code, message = _platform_message(_json(response))
            raise PlatformAuthError(
                f"Delivery Hero refused the login: {message or response.reason_phrase}",
                status_code=response.status_code,
                platform_code=code,
                details={"message": message},
            )
        self._raise_for_status(response, "token")
        try:
            answer = _LoginAnswer.model_validate_json(response.content)
        except ValidationError as exc:
            raise PlatformContractError(
                "the login answer has no access_token",
                status_code=response.status_code,
                details={"errors": exc.errors(include_url=False, include_input=False)},
            ) from None
        lifetime = answer.expires_in if answer.expires_in and answer.expires_in > 0 else None
        expires_at = self.context.clock.now() + timedelta(
            seconds=lifetime if lifetime is not None else TOKEN_LIFETIME_SECONDS
        )
        return AccessToken(value=answer.access_token, expires_at=expires_at)

    async def _token(self, timeout: float | None = None) -> AccessToken:
        return await self.context.tokens.get(
            self._token_key, lambda: self._fetch_token(timeout=timeout)
        )

    async def _send_raw(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        json_body: object = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        try:
            return await self.context.http.request(
                operation,
                method,
                url,
                json_body=json_body,
                data=data,
                params=params,
                headers=headers,
                timeout=timeout,
            )
        except httpx2.TimeoutException as exc:
            raise PlatformUnavailable(
                f"Delivery Hero did not answer in time ({operation})",
                details={"error": type(exc).__name__},
            ) from exc
        except httpx2.HTTPError as exc:
            raise PlatformUnavailable(
                f"could not reach Delivery Hero ({operation}): {type(exc).__name__}",
                details={"error": f"{type(exc).__name__}: {exc}"},
            ) from exc

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json_body: object = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        """One authenticated call; a 401 gets one fresh token and one retry."""
        token = await self._token(timeout)
        response = await self._authorised(
            operation, method, path, token, json_body, params, timeout
        )
        if response.status_code == 401:
            self.context.tokens.invalidate(self._token_key, token.value)
            token = await self._token(timeout)
            response = await self._authorised(
                operation, method, path, token, json_body, params, timeout
            )
            if response.status_code == 401:
                code, message = _platform_message(_json(response))
                raise PlatformAuthError(
                    f"Delivery Hero rejected a fresh token: {message or 'unauthorized'}",
                    status_code=401,
                    platform_code=code,
                    details={"message": message, "operation": operation},
                )
        return response

    async def _authorised(
        self,
        operation: str,
        method: str,
        path: str,
        token: AccessToken,
        json_body: object,
        params: Mapping[str, str] | None,
        timeout: float | None,
    ) -> httpx2.Response:
        return await self._send_raw(
            operation,
            method,
            self._url(path),
            json_body=json_body,
            params=params,
            headers={"Authorization": f"Bearer {token.value}", "Accept": "application/json"},
            timeout=timeout,
        )

    def _retry_after(self, response: httpx2.Response) -> float | None:
        raw = response.headers.get("Retry-After")
        if raw is None:
            return None
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, (when - self.context.clock.now()).total_seconds())

    def _raise_for_status(self, response: httpx2.Response, operation: str) -> None:
        """Map a non-2xx answer to the platform error classification."""
        status = response.status_code
        if 200 <= status < 300:
            return
        body = _json(response)
        code, message = _platform_message(body)
        text = message or response.reason_phrase or f"HTTP {status}"
        details: dict[str, Any] = {"operation": operation, "message": message}
        if body is None and response.content:
            details["body"] = response.text[:500]
        common: dict[str, Any] = {"status_code": status, "platform_code": code, "details": details}
        if status == 429:
            raise PlatformRateLimited(
                f"Delivery Hero rate limit reached ({operation}): {text}",
                retry_after=self._retry_after(response),
                **common,
            )
        if status >= 500:
            raise PlatformUnavailable(
                f"Delivery Hero failed ({operation}, HTTP {status}): {text}",
                retry_after=self._retry_after(response),
                **common,
            )
        if status == 401:
            raise PlatformAuthError(f"Delivery Hero: {text}", **common)
        if status == 403:
            raise PlatformAuthError(
                f"Delivery Hero refused access to chain {self.config.chain_code} / vendor "
                f"{self.config.pos_vendor_id}: {text}",
                **common,
            )
        if status == 404:
            raise PlatformNotFound(
                f"Delivery Hero does not know chain {self.config.chain_code} / vendor "
                f"{self.config.pos_vendor_id} ({operation}): {text}",
                **common,
            )
        if status == 409 and operation == "push_menu":
            raise PlatformBusy(f"Delivery Hero is still importing a catalog: {text}", **common)
        raise PlatformRejected(
            f"Delivery Hero rejected the request ({operation}): {text}",
            issues=_rejection_issues(body, code, message),
            **common,
        )

    # ---- menu push and result --------------------------------------------------------------

    async def push_menu(self, payload: MenuPayload) -> PushReceipt:
        """``PUT /v2/chains/{chainCode}/catalog``; 202 carries the ``catalogImportId``.

        Raises ``PlatformRejected`` (400 and other 4xx), ``PlatformAuthError`` (login refused,
        401 after one refresh, 403), ``PlatformNotFound`` (404: chain or vendor unknown),
        ``PlatformBusy`` (409), ``PlatformRateLimited`` (429), ``PlatformUnavailable`` (5xx,
        timeouts, connection errors), ``PlatformContractError`` (an answer without an import id).
        """
        response = await self._call(
            "push_menu", "PUT", f"/v2/chains/{self.config.chain_code}/catalog",
            json_body=payload.body,
        )  # fmt: skip
        self._raise_for_status(response, "push_menu")
        try:
            answer = _SubmitAnswer.model_validate_json(response.content)
        except ValidationError as exc:
            raise PlatformContractError(
                "Delivery Hero accepted the catalog without a catalogImportId",
                status_code=response.status_code,
                details={"body": response.text[:500]},
            ) from exc
        return PushReceipt(
            outcome="accepted",
            external_ref=answer.catalog_import_id,
            message=f"catalog {answer.status or 'submitted'}",
            poll_after_seconds=15.0,
        )

    async def get_push_result(
        self,
        external_ref: str,
        payload: MenuPayload | None = None,  # noqa: ARG002 - the status endpoint needs only the id
    ) -> PushResult:
        """Read the vendor's ``menu-import-logs`` (last 30 days, newest first) for the import.

        Raises the same errors as :meth:`push_menu`; an import not listed yet is ``pending``.
        """
        # The window ends at the next whole second (the API takes whole seconds, and an import
        # logged earlier in the current second must be in it) and spans the 30 days allowed.
        until = self.context.clock.now() + timedelta(seconds=1)
        response = await self._call(
            "push_status",
            "GET",
            f"{self._vendor_path}/menu-import-logs",
            params={
                "from": (until - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "to": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "limit": "100",
                "sort": "desc",
            },
        )
        self._raise_for_status(response, "push_status")
        try:
            logs = _ImportLogs.model_validate_json(response.content)
        except ValidationError as exc:
            raise PlatformContractError(
                "the menu-import-logs answer does not match Delivery Hero's schema",
                status_code=response.status_code,
                details={"body": response.text[:500]},
            ) from exc
        entries = [
            entry
            for vendor_logs in logs.menu_import_logs.values()
            for entry in vendor_logs
            if entry.menu_import_id == external_ref
        ]
        if not entries:
            return PushResult(state="pending", external_ref=external_ref, message="not logged yet")
        states = [(_import_state(entry.status, entry.message), entry) for entry in entries]
        final = [pair for pair in states if pair[0] != "pending"]
        state, entry = max(final or states, key=lambda pair: pair[1].created_at or "")
        issues: tuple[PlatformIssue, ...] = ()
        if state == "failed":
            issues = (
                PlatformIssue(
                    path="catalog",
                    message=entry.message or f"import {entry.status}",
                    code=f"import_{(entry.status or 'failed').lower()}",
                ),
            )
        return PushResult(
            state=state,
            external_ref=external_ref,
            issues=issues,
            message=entry.message,
            details={
                "status": entry.status,
                "createdAt": entry.created_at,
                "url": entry.url,
                "version": entry.version,
            },
        )

    # ---- callbacks -----------------------------------------------------------------------------

    @classmethod
    def parse_webhook(cls, headers: Mapping[str, str], body: bytes) -> WebhookMessage:
        """Parse a ``CatalogImportCallbackRequest``. Raises ``PlatformContractError``.

        The event id is ``catalogImportId:status``, so the ``in_progress`` and the final callback
        of one import are two events, and a redelivery of either is a duplicate."""
        del headers  # the callback carries nothing else we need
        try:
            callback = _Callback.model_validate_json(body)
        except ValidationError as exc:
            raise PlatformContractError(
                "the Delivery Hero callback is not a catalog import callback",
                details={"errors": exc.errors(include_url=False, include_input=False)},
            ) from exc
        status = callback.status.strip().lower()
        state = _import_state(status, None)
        issues = _issues_from_details(callback.details) if state == "failed" else ()
        if state == "failed" and not issues:
            issues = (
                PlatformIssue(
                    path="catalog",
                    message=callback.message or f"import {status}",
                    code=f"import_{status}",
                ),
            )
        store_ref = next(
            (d.pos_vendor_id for d in callback.details if d.pos_vendor_id is not None), None
        )
        return WebhookMessage(
            event_id=f"{callback.catalog_import_id}:{status}",
            event_type=f"catalog_import.{status}",
            external_ref=callback.catalog_import_id,
            store_ref=store_ref,
            result=PushResult(
                state=state,
                external_ref=callback.catalog_import_id,
                issues=issues,
                message=callback.message,
                details={
                    "status": status,
                    "details": [d.model_dump(by_alias=True) for d in callback.details],
                },
            ),
        )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        """The callback's ``Authorization: Bearer <JWT>`` is HS512-signed with the plugin secret
        and carries ``service: "middleware"``. The body itself is not signed by Delivery Hero."""
        del body  # Delivery Hero signs the caller, not the body (PLATFORMS.md 2.1)
        authorization = _header(headers, "authorization")
        if authorization is None:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        secret = self.config.plugin_secret.get_secret_value()
        try:
            with warnings.catch_warnings():
                # The secret's length is Delivery Hero's choice, not ours.
                warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
                claims = jwt.decode(
                    token.strip(),
                    secret,
                    algorithms=["HS512"],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
        except jwt.PyJWTError:
            return False
        service = claims.get("service")
        if not isinstance(service, str) or not hmac.compare_digest(service.encode(), b"middleware"):
            return False
        # Expiry is checked against the injected clock, not the host's.
        now = self.context.clock.now().timestamp()
        exp = claims.get("exp")
        if isinstance(exp, int | float) and now > exp + WEBHOOK_LEEWAY_SECONDS:
            return False
        nbf = claims.get("nbf")
        return not (isinstance(nbf, int | float) and now < nbf - WEBHOOK_LEEWAY_SECONDS)

    @classmethod
    def webhook_reply(cls, message: WebhookMessage | None, *, accepted: bool) -> WebhookReply:
        """200 keeps the updates of an import coming; 204 stops them once its status is final;
        500 makes the middleware deliver again (it retries on 429 and 5xx)."""
        if not accepted:
            return WebhookReply(status_code=500)
        if message is not None and message.result is not None and message.result.state != "pending":
            return WebhookReply(status_code=204)
        return WebhookReply(status_code=200)

    # ---- availability and store status ------------------------------------------------------

    async def set_item_availability(self, changes: list[AvailabilityChange]) -> OperationResult:
        """``PUT .../catalog/items/availability``, one call per (type, state, until) and per
        :data:`AVAILABILITY_BATCH` ids. 204: all platform vendors applied it; 200: the per-platform
        ``details`` that did not become ``partial_failures``.

        Raises ``PlatformRejected`` (400), ``PlatformAuthError``, ``PlatformNotFound``,
        ``PlatformRateLimited``, ``PlatformUnavailable``, ``PlatformContractError``."""
        batches: dict[tuple[str, bool, datetime | None], list[str]] = {}
        for change in changes:
            kind = "TOPPING" if change.kind == "option" else "ITEM"
            until = None if change.is_available else change.until
            ids = batches.setdefault((kind, change.is_available, until), [])
            if change.item_id not in ids:
                ids.append(change.item_id)
        failures: list[Mapping[str, Any]] = []
        processed = 0
        for (kind, is_available, until), ids in batches.items():
            for start in range(0, len(ids), AVAILABILITY_BATCH):
                chunk = ids[start : start + AVAILABILITY_BATCH]
                body: dict[str, Any] = {
                    "globalEntityId": self.config.global_entity_id,
                    "items": chunk,
                    "type": kind,
                    "isAvailable": is_available,
                }
                if until is not None:
                    body["willBeAvailable"] = "AT_TIMESTAMP"
                    body["atTimeStamp"] = until.strftime("%Y-%m-%dT%H:%M:%SZ")
                response = await self._call(
                    "item_availability",
                    "PUT",
                    f"{self._vendor_path}/catalog/items/availability",
                    json_body=body,
                )
                self._raise_for_status(response, "item_availability")
                processed += len(chunk)
                if response.status_code == 204 or not response.content:
                    continue
                try:
                    answer = _AvailabilityAnswer.model_validate_json(response.content)
                except ValidationError as exc:
                    raise PlatformContractError(
                        "the availability answer does not match Delivery Hero's schema",
                        status_code=response.status_code,
                        details={"body": response.text[:500]},
                    ) from exc
                for detail in answer.details:
                    if (detail.status or "").lower() != "success":
                        failures.append(
                            {
                                "platformVendorId": detail.platform_vendor_id,
                                "globalEntityId": detail.global_entity_id,
                                "status": detail.status,
                                "message": detail.message,
                                "items": chunk,
                                "type": kind,
                            }
                        )
                if not answer.details and (answer.status or "").lower() not in ("", "success"):
                    failures.append({"status": answer.status, "items": chunk, "type": kind})
        return OperationResult(
            succeeded=not failures,
            message=None if not failures else f"{len(failures)} platform vendor(s) did not apply",
            partial_failures=tuple(failures),
            items_processed=processed,
        )

    async def _read_store_availability(
        self, timeout: float | None = None
    ) -> list[_VendorAvailability]:
        response = await self._call(
            "store_status",
            "GET",
            f"/v2/chains/{self.config.chain_code}/remoteVendors/"
            f"{self.config.pos_vendor_id}/availability",
            timeout=timeout,
        )
        self._raise_for_status(response, "store_status")
        if response.status_code == 204:
            # "Acknowledged, result not ready yet: retry in a few seconds" (PLATFORMS.md 2.2).
            raise PlatformUnavailable(
                "Delivery Hero has not got the vendor's availability yet (204); retry shortly",
                status_code=204,
                retry_after=self._retry_after(response) or 5.0,
                details={"operation": "store_status"},
            )
        body = _json(response)
        if not isinstance(body, list):
            raise PlatformContractError(
                "the vendor availability answer is not a list of platforms",
                status_code=response.status_code,
                details={"body": response.text[:500]},
            )
        try:
            return [_VendorAvailability.model_validate(entry) for entry in body]
        except ValidationError as exc:
            raise PlatformContractError(
                "the vendor availability answer does not match Delivery Hero's schema",
                status_code=response.status_code,
                details={"errors": exc.errors(include_url=False, include_input=False)},
            ) from exc

    def _store_request(
        self, change: StoreStatusChange, platform: _VendorAvailability
    ) -> dict[str, Any] | str:
        """The PUT body for one platform, or why it cannot be sent."""
        if not platform.changeable:
            return (
                "the platform does not let the POS change this vendor now "
                f"(state {platform.availability_state}, reason {platform.closed_reason})"
            )
        allowed = platform.availability_states
        body: dict[str, Any] = {
            "platformKey": platform.platform_key,
            "platformRestaurantId": platform.platform_restaurant_id,
        }
        if change.state == "open":
            if allowed and "OPEN" not in allowed:
                return f"OPEN is not allowed now (allowed: {', '.join(allowed)})"
            return {"availabilityState": "OPEN", **body}
        minutes: int | None = None
        if change.until is not None or change.state == "paused":
            state = "CLOSED_UNTIL"
            wanted = (
                (change.until - self.context.clock.now()).total_seconds() / 60
                if change.until is not None
                else 0
            )
            choices = sorted(platform.closing_minutes)
            if not choices:
                return "the platform offers no closing durations"
            minutes = next((m for m in choices if m >= wanted), choices[-1])
        else:
            state = next(
                (
                    s
                    for s in ("CLOSED", "CLOSED_TODAY", "CLOSED_UNTIL")
                    if not allowed or s in allowed
                ),
                "CLOSED",
            )
            if state == "CLOSED_UNTIL":
                if not platform.closing_minutes:
                    return "the platform offers no closing durations"
                minutes = max(platform.closing_minutes)
        if allowed and state not in allowed:
            return f"{state} is not allowed now (allowed: {', '.join(allowed)})"
        reasons = platform.closing_reasons or sorted(CLOSING_REASONS)
        wanted_reason = (change.reason or "").strip().upper().replace(" ", "_").replace("-", "_")
        defaults = (
            ("TOO_BUSY_KITCHEN", "OTHER") if change.state == "paused" else ("CLOSED", "OTHER")
        )
        reason = next(
            (r for r in (wanted_reason, *defaults) if r and r in reasons),
            reasons[0],
        )
        request = {"availabilityState": state, **body, "closedReason": reason}
        if minutes is not None:
            request["closingMinutes"] = minutes
        return request

    async def set_store_status(self, change: StoreStatusChange) -> OperationResult:
        """Read the vendor's per-platform availability, then ``PUT`` the change to every
        platform that lets the POS change it, with a state, reason and duration it offered.

        Raises ``PlatformUnavailable`` (a 204 "not ready" on the read, 5xx, timeouts),
        ``PlatformRejected`` (400), ``PlatformAuthError`` (401 after a refresh, 403
        "User not matching"), ``PlatformNotFound``, ``PlatformRateLimited``,
        ``PlatformContractError``."""
        platforms = await self._read_store_availability()
        failures: list[Mapping[str, Any]] = []
        applied = 0
        for platform in platforms:
            request = self._store_request(change, platform)
            where = {
                "platformKey": platform.platform_key,
                "platformRestaurantId": platform.platform_restaurant_id,
                "platformType": platform.platform_type,
            }
            if isinstance(request, str):
                failures.append({**where, "status": "not_changeable", "message": request})
                continue
            response = await self._call(
                "store_status",
                "PUT",
                f"/v2/chains/{self.config.chain_code}/remoteVendors/"
                f"{self.config.pos_vendor_id}/availability",
                json_body=request,
            )
            self._raise_for_status(response, "store_status")
            applied += 1
        if not platforms:
            return OperationResult(succeeded=False, message="Delivery Hero listed no platforms")
        return OperationResult(
            succeeded=not failures,
            message=f"{change.state} on {applied} of {len(platforms)} platform(s)",
            partial_failures=tuple(failures),
            items_processed=applied,
        )

    async def test_connection(self) -> ConnectionCheck:
        """Log in and read the vendor's availability, each with a short timeout. Never raises
        a platform error: it reports it."""
        try:
            self.context.tokens.invalidate(self._token_key)
            await self._token(TEST_CONNECTION_TIMEOUT)
            try:
                platforms = await self._read_store_availability(TEST_CONNECTION_TIMEOUT)
            except PlatformUnavailable as exc:
                if exc.status_code != 204:
                    raise
                platforms = []
        except PlatformError as exc:
            return ConnectionCheck(
                ok=False, message=exc.message, details={"code": exc.code, **exc.details}
            )
        return ConnectionCheck(
            ok=True,
            message=f"logged in; vendor {self.config.pos_vendor_id} of chain "
            f"{self.config.chain_code} is reachable",
            details={
                "platforms": [
                    {"platformKey": p.platform_key, "availabilityState": p.availability_state}
                    for p in platforms
                ]
            },
        )
