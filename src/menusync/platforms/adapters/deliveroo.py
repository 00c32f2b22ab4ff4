"""Deliveroo: Partner Platform Menu API v1, Site API and menu-event webhooks.

The vendor's quirks, as PLATFORMS.md section 1 documents them (links to Deliveroo's pages):

- **Auth** is OAuth2 client credentials (https://api-docs.deliveroo.com/docs/authentication):
  ``POST {auth host}/oauth2/token`` with ``grant_type=client_credentials`` and
  ``Authorization: Basic base64(client_id:client_secret)``. Tokens live **300 s** and there is no
  refresh token, so the cache asks for a new one shortly before expiry.
- **Menu upload** is ``PUT /menu/v1/brands/{brand_id}/menus/{menu_id}`` with ``{name, menu,
  site_ids}`` and is **asynchronous**: the HTTP answer only acknowledges, the verdict arrives as a
  ``menu.upload_result`` webhook (https://deliveroo-group.readme.io/reference/menu-events-webhook).
  An upload identical to the live menu answers ``{"result": "MATCH_EXISTING_MENU"}`` and changes
  nothing. There is no partial upload and no price-only endpoint: every change is a full push.
  Limit: one upload per minute per site; a 429 carries no documented ``Retry-After``
  (https://api-docs.deliveroo.com/docs/http-status-codes).
- **Menu shape**: modifier options are items of ``type: "CHOICE"`` listed in
  ``modifiers[].item_ids``; products are ``type: "ITEM"``, linked from ``categories[].item_ids``
  and to their groups by ``modifier_ids``; a CHOICE may carry ``modifier_ids`` (nesting). Prices
  are integers in minor units (3 decimals for KWD/BHD/OMR). Texts are objects keyed by the
  market's languages. ``tax_rate`` is a string from the market's list. Mealtimes need a cover
  image, a name and a description; ``day_of_week`` is 0 = Monday ... 6 = Sunday.
  Text lengths and image rules: https://api-docs.deliveroo.com/docs/menu-api-guidelines.
- **Availability** (https://api-docs.deliveroo.com/reference/put_v1-brands-brand-id-menus-id-item-unavailabilities-site-id):
  ``unavailable`` is cleared at the next **morning stock reset**, ``hidden`` survives it. We use the
  partial form ``POST /menu/v2/brands/{brand_id}/sites/{site_id}/menu/item_unavailabilities`` (it
  touches only the listed items, so changes made on the tablet survive); an unknown id fails the
  whole request with 404. After a new upload, availability must wait for ``menu.upload_result``
  or it may not reach the new items (see ``push_menu``).
- **Site status** (https://api-docs.deliveroo.com/docs/site): ``PUT /site/v1/brands/{brand_id}/
  sites/{site_id}/status`` ``{status: OPEN|CLOSED|READY_TO_OPEN}``. Opening outside the opening
  hours answers 400 ``Unable to open restaurant, reason: OPENING_HOURS`` (or ``VACATION_MODE``,
  ``CLOSED_PERIOD``).
- **Webhook signature** (https://api-docs.deliveroo.com/docs/securing-webhooks):
  ``X-Deliveroo-Hmac-Sha256 = hex(HMAC_SHA256(webhook_secret, sequence_guid + " " + raw_body))``
  with the guid from ``X-Deliveroo-Sequence-Guid`` (also our deduplication id). The webhook secret
  is not the API secret. Any non-2xx answer is redelivered for up to 30 minutes.
- **Errors**: Site API bodies look like ``{"error": {"code": "bad_request", "message": "..."}}``;
  the token endpoint answers OAuth style ``{"error": "invalid_client"}``.

Open questions of PLATFORMS.md section 9 for Deliveroo, and the choice made here:

- *The exact body of a successful, changed v1 upload*: any 2xx JSON object (or an empty body) other
  than ``MATCH_EXISTING_MENU`` is read as "accepted, result by webhook".
- *The exact 429 body*: not parsed; the status alone decides, and ``retry_after`` is set only when a
  ``Retry-After`` header is present.
- *Is ``menu.upload_result`` sent for ``MATCH_EXISTING_MENU``?*: the receipt says ``unchanged``,
  which is final; a webhook that arrives anyway parses as a normal (completed) result.
- *The field name of an item's operational name in v1*: not sent (``operational_name`` is not
  confirmed), so nothing the platform might reject is invented.
- Money unit: see ``PRICES_USE_ISO_MINOR_UNITS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

import httpx2
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from menusync.core.resilience.retry import RetryPolicy
from menusync.menus.canonical import (
    CanonicalMenu,
    Category,
    Item,
    ModifierGroup,
    ModifierOption,
    PlatformOverride,
    ScheduleRule,
    check_menu,
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
    PlatformContractError,
    PlatformError,
    PlatformNotFound,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from menusync.platforms.tokens import AccessToken

KIND = "deliveroo"

PRICES_USE_ISO_MINOR_UNITS = True
"""The one money-unit assumption. ``True``: ``price_info.price = major * 10**d`` with ``d`` the
ISO 4217 minor units of the menu currency (2 for AED/GBP, **3 for KWD/BHD/OMR**), as Odoo's
Deliveroo provider sends it [V-impl]; Deliveroo's own pages only say "integer minor units".
``False`` would always use 2 decimals (cents/fils), should Deliveroo turn out to ignore the third."""

# Languages and accepted tax rates per market, as Odoo's Deliveroo provider sends them
# (PLATFORMS.md 1.3) [V-impl]. The first language is the market's primary one.
MARKET_LANGUAGES: Mapping[str, tuple[str, ...]] = {
    "AE": ("en", "ar"),
    "KW": ("ar", "en"),
    "QA": ("ar", "en"),
    "GB": ("en",),
    "IE": ("en",),
    "FR": ("fr", "en"),
    "BE": ("fr", "nl", "en"),
    "IT": ("it", "en"),
    "HK": ("zh", "en"),
    "SG": ("zh", "en"),
}
MARKET_TAX_RATES: Mapping[str, frozenset[str]] = {
    "AE": frozenset({"0", "5"}),
    "KW": frozenset({"0"}),
    "QA": frozenset({"0"}),
    "GB": frozenset({"0", "5", "12.5", "20"}),
    "IE": frozenset({"0", "9", "13.5", "23"}),
    "FR": frozenset({"0", "2.1", "5.5", "10", "20"}),
}
Market = Literal["AE", "KW", "QA", "GB", "IE", "FR", "BE", "IT", "HK", "SG"]
ModifierType = Literal[
    "up-sell-existing-items",
    "remove-ingredient",
    "add-ingredient",
    "cooking-instruction",
    "size-modification",
    "product-variation",
    "gift-wrap",
    "bundle-item",
    "add-separate-condiment",
]

# Menu guidelines (https://api-docs.deliveroo.com/docs/menu-api-guidelines) [V].
CATEGORY_NAME_LENGTH = (3, 120)
CATEGORY_DESCRIPTION_LENGTH = (3, 255)
ITEM_NAME_LENGTH = (2, 120)
DESCRIPTION_MAX_LENGTH = 500
MAX_CATEGORIES = 100  # [V] Oracle Simphony's Deliveroo integration guide.
MAX_MENU_ITEMS = 10_000
"""Items (products and choices) per upload. Deliveroo publishes no v1 figure; 10k is the
documented ceiling of its Retail Catalogue upload, used here as the working bound [I]."""
AVAILABILITY_BATCH_SIZE = 100
"""Items per partial availability call. Not published; small enough that one unknown id (which
fails the whole call with 404) costs little [I]."""
WHOLE_DAY = ("00:00", "23:59")
TEST_CONNECTION_TIMEOUT = 10.0
POLL_AFTER_SECONDS = 15.0
MATCH_EXISTING_MENU = "MATCH_EXISTING_MENU"
UPLOAD_RESULT_EVENT = "menu.upload_result"

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$"
_URL_PATTERN = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_REASON = re.compile(r"reason:\s*([A-Z_]+)")

DeliverooId = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]


def _check_secret(value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if not secret.strip() or secret != secret.strip():
        raise ValueError("must be non-blank, without surrounding spaces")
    return value


def _check_base_url(value: str) -> str:
    if not _URL_PATTERN.match(value):
        raise ValueError("must be an http(s) URL without query or fragment")
    return value.rstrip("/")


# ---- schemas ---------------------------------------------------------------------------------


class DeliverooConfig(PlatformModel):
    """A Deliveroo connection: API client credentials, webhook secret, and the brand/site/menu."""

    client_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]
    client_secret: SecretStr
    webhook_secret: SecretStr
    """The menu-events webhook secret (Developer Portal); distinct from the API secret."""
    brand_id: DeliverooId
    site_id: DeliverooId
    """The Deliveroo site (restaurant location) this connection pushes to."""
    menu_id: DeliverooId = "menusync"
    """Our id for the menu at Deliveroo (the upload creates or replaces it)."""
    market: Market = "AE"
    """Decides the languages and tax rates Deliveroo accepts."""
    api_base_url: str = "https://api.developers.deliveroo.com"
    auth_base_url: str = "https://auth.developers.deliveroo.com"

    @field_validator("client_secret", "webhook_secret")
    @classmethod
    def _secrets_not_blank(cls, value: SecretStr) -> SecretStr:
        return _check_secret(value)

    @field_validator("api_base_url", "auth_base_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _check_base_url(value)


class DeliverooSyncConfig(PlatformModel):
    """Per-menu settings on Deliveroo (what the payload needs that the canonical menu lacks)."""

    menu_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None
    """The upload's ``name``; defaults to the menu name in the market's primary language."""
    price_adjustment_percent: Annotated[Decimal, Field(ge=-100, le=1000)] = Decimal(0)
    """Applied to item and option prices (not to explicit Deliveroo override prices)."""
    language_map: dict[str, str] = Field(default_factory=dict)
    """Canonical language code -> Deliveroo language code (e.g. ``{"en-GB": "en"}``)."""
    tax_rate: Annotated[Decimal, Field(ge=0, le=100)] | None = None
    """Forces one tax rate (percent) on every item, instead of the menu's rates."""
    mealtime_id: DeliverooId = "all-day"
    mealtime_name: dict[str, str] | None = None
    mealtime_description: dict[str, str] | None = None
    cover_image_url: str | None = None
    """Mealtime cover image when the menu has none (Deliveroo requires one)."""
    modifier_type: ModifierType | None = None
    """Sent as every modifier's ``type`` when set."""

    @field_validator("cover_image_url")
    @classmethod
    def _cover(cls, value: str | None) -> str | None:
        return None if value is None else _check_base_url(value)


# Vendor payload models (private): the v1 upload body, field names exactly as Deliveroo's.


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Image(_Vendor):
    url: str


class _TimePeriod(_Vendor):
    start: str
    end: str


class _ScheduleDay(_Vendor):
    day_of_week: int
    time_periods: list[_TimePeriod]


class _Mealtime(_Vendor):
    id: str
    name: dict[str, str]
    description: dict[str, str]
    image: _Image
    category_ids: list[str]
    schedule: list[_ScheduleDay]


class _Category(_Vendor):
    id: str
    name: dict[str, str]
    description: dict[str, str] | None = None
    item_ids: list[str]


class _PriceInfo(_Vendor):
    price: int


class _Item(_Vendor):
    id: str
    type: Literal["ITEM", "CHOICE"]
    name: dict[str, str]
    description: dict[str, str] | None = None
    plu: str
    tax_rate: str
    price_info: _PriceInfo
    image: _Image | None = None
    modifier_ids: list[str] | None = None
    contains_alcohol: bool | None = None
    allergies: list[str] | None = None


class _Modifier(_Vendor):
    id: str
    name: dict[str, str]
    type: str | None = None
    min_selection: int
    max_selection: int
    repeatable: bool
    item_ids: list[str]


class _Menu(_Vendor):
    mealtimes: list[_Mealtime]
    categories: list[_Category]
    items: list[_Item]
    modifiers: list[_Modifier]


class _UploadBody(_Vendor):
    name: str
    menu: _Menu
    site_ids: list[str]


class _TokenAnswer(BaseModel):
    access_token: Annotated[str, StringConstraints(min_length=1)]
    expires_in: Annotated[int, Field(gt=0)] = 300


class _UploadResult(BaseModel):
    http_status: int
    brand_id: str
    menu_id: str
    site_ids: list[str] = Field(default_factory=list)
    errors: dict[str, Any] | None = None


# ---- the pure translation --------------------------------------------------------------------


def price_minor_units(amount: Decimal, currency_decimals: int) -> int:
    """Major units -> Deliveroo's integer minor units (half up), per ``PRICES_USE_ISO_MINOR_UNITS``."""
    decimals = currency_decimals if PRICES_USE_ISO_MINOR_UNITS else 2
    scaled = (amount * Decimal(10) ** decimals).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(0, int(scaled))


def format_tax_rate(rate: Decimal) -> str:
    """``Decimal("5.00")`` -> ``"5"``, ``Decimal("12.5")`` -> ``"12.5"`` (Deliveroo's strings)."""
    text = format(rate.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def mealtime_schedule(rules: Sequence[ScheduleRule]) -> list[dict[str, Any]]:
    """Canonical schedule -> Deliveroo days (0 = Monday). A range past midnight is split at
    23:59 / 00:00 into the next day; no rules means every day, all day."""
    periods: dict[int, set[tuple[str, str]]] = {}
    if not rules:
        return [
            {"day_of_week": day, "time_periods": [{"start": WHOLE_DAY[0], "end": WHOLE_DAY[1]}]}
            for day in range(7)
        ]
    for rule in rules:
        for day in rule.days:
            index = day.iso_index
            for time_range in rule.ranges:
                start, end = _hhmm(time_range.start), _hhmm(time_range.end)
                if not time_range.crosses_midnight:
                    periods.setdefault(index, set()).add((start, end))
                    continue
                periods.setdefault(index, set()).add((start, WHOLE_DAY[1]))
                if end != "00:00":
                    periods.setdefault((index + 1) % 7, set()).add((WHOLE_DAY[0], end))
    return [
        {
            "day_of_week": day,
            "time_periods": [{"start": s, "end": e} for s, e in sorted(periods[day])],
        }
        for day in sorted(periods)
    ]


class _Translator:
    """Everything ``build_payload`` and ``validate_menu`` share: effective texts, prices, tax and
    visibility on Deliveroo for one menu and one sync configuration."""

    def __init__(self, menu: CanonicalMenu, config: DeliverooConfig, sync: DeliverooSyncConfig):
        self.menu = menu
        self.config = config
        self.sync = sync
        self.languages = MARKET_LANGUAGES[config.market]
        self.decimals = menu.minor_units

    def text(self, value: Mapping[str, str] | None) -> dict[str, str]:
        """Localized text keyed by the market's languages (in market order), others dropped."""
        if not value:
            return {}
        mapped: dict[str, str] = {}
        for lang, text in value.items():
            target = self.sync.language_map.get(lang) or lang.split("-")[0].lower()
            if target in self.languages:
                mapped.setdefault(target, text.strip())
        return {lang: mapped[lang] for lang in self.languages if lang in mapped}

    @staticmethod
    def override(entity: Item | ModifierOption) -> PlatformOverride | None:
        return entity.platform_overrides.get(KIND)

    def is_visible(self, entity: Item | ModifierOption) -> bool:
        override = self.override(entity)
        return not (override is not None and override.is_visible is False)

    def name_of(self, entity: Item | ModifierOption) -> tuple[Mapping[str, str], str]:
        override = self.override(entity)
        if override is not None and override.name is not None:
            return override.name, f"platformOverrides.{KIND}.name"
        return entity.name, "name"

    def description_of(self, item: Item) -> tuple[Mapping[str, str] | None, str]:
        override = self.override(item)
        if override is not None and override.description is not None:
            return override.description, f"platformOverrides.{KIND}.description"
        return item.description, "description"

    def tax_rate_of(self, item: Item | None) -> Decimal:
        if self.sync.tax_rate is not None:
            return self.sync.tax_rate
        if item is not None and item.tax_rate is not None:
            return item.tax_rate
        return self.menu.tax_rate

    def price_of(self, entity: Item | ModifierOption, tax_rate: Decimal) -> int:
        """Deliveroo shows what the customer pays, so tax-exclusive prices get the tax added [I]."""
        override = self.override(entity)
        if override is not None and override.price is not None:
            amount = override.price
        else:
            amount = entity.price * (1 + self.sync.price_adjustment_percent / 100)
        if not self.menu.prices_include_tax:
            amount = amount * (1 + tax_rate / 100)
        return price_minor_units(amount, self.decimals)

    # -- visibility --

    def visible_items(self) -> list[Item]:
        in_category = {i for c in self.menu.categories for i in c.item_ids}
        return [i for i in _ordered(self.menu.items) if i.id in in_category and self.is_visible(i)]

    def visible_options(self, group: ModifierGroup) -> list[str]:
        return [
            option.id
            for option in (self.menu.option(o) for o in group.option_ids)
            if option is not None and self.is_visible(option)
        ]

    def reachable(self) -> tuple[list[Item], list[ModifierGroup], list[ModifierOption]]:
        """Visible items, then the groups and options reachable from them, in canonical order
        (so unused groups and options are not sent)."""
        items = self.visible_items()
        group_ids: set[str] = set()
        option_ids: set[str] = set()
        pending = [g for item in items for g in item.modifier_group_ids]
        while pending:
            group_id = pending.pop()
            group = self.menu.group(group_id)
            if group is None or group_id in group_ids or not self.visible_options(group):
                continue
            group_ids.add(group_id)
            for option_id in self.visible_options(group):
                option_ids.add(option_id)
                option = self.menu.option(option_id)
                if option is not None:
                    pending.extend(option.modifier_group_ids)
        groups = [g for g in _ordered(self.menu.modifier_groups) if g.id in group_ids]
        options = [o for o in _ordered(self.menu.modifier_options) if o.id in option_ids]
        return items, groups, options

    def categories(self, visible: set[str]) -> list[tuple[Category, list[str]]]:
        """Categories with their visible items, parents followed by their sub-categories
        (Deliveroo's categories are flat); empty ones left out."""
        top = [c for c in _ordered(self.menu.categories) if c.parent_id is None]
        ordered: list[Category] = []
        for category in top:
            ordered.append(category)
            ordered.extend(c for c in _ordered(self.menu.categories) if c.parent_id == category.id)
        result: list[tuple[Category, list[str]]] = []
        for category in ordered:
            item_ids = list(dict.fromkeys(i for i in category.item_ids if i in visible))
            if item_ids:
                result.append((category, item_ids))
        return result

    def group_ids(self, refs: Sequence[str], sent: set[str]) -> list[str] | None:
        ids = [g for g in refs if g in sent]
        return ids or None

    def build(self) -> dict[str, Any]:
        items, groups, options = self.reachable()
        sent_groups = {g.id for g in groups}
        visible = {i.id for i in items}
        vendor_items: list[_Item] = []
        for item in items:
            tax = self.tax_rate_of(item)
            name, _ = self.name_of(item)
            description, _ = self.description_of(item)
            vendor_items.append(
                _Item(
                    id=item.id,
                    type="ITEM",
                    name=self.text(name),
                    description=self.text(description) or None,
                    plu=item.sku or item.id,
                    tax_rate=format_tax_rate(tax),
                    price_info=_PriceInfo(price=self.price_of(item, tax)),
                    image=_Image(url=str(item.image.url)) if item.image else None,
                    modifier_ids=self.group_ids(item.modifier_group_ids, sent_groups),
                    contains_alcohol=True if item.contains_alcohol else None,
                    allergies=list(item.allergens) or None,
                )
            )
        default_tax = self.tax_rate_of(None)
        for option in options:
            name, _ = self.name_of(option)
            vendor_items.append(
                _Item(
                    id=option.id,
                    type="CHOICE",
                    name=self.text(name),
                    plu=option.sku or option.id,
                    tax_rate=format_tax_rate(default_tax),
                    price_info=_PriceInfo(price=self.price_of(option, default_tax)),
                    modifier_ids=self.group_ids(option.modifier_group_ids, sent_groups),
                )
            )
        modifiers = [
            _Modifier(
                id=group.id,
                name=self.text(group.name),
                type=self.sync.modifier_type,
                min_selection=group.min_selections,
                max_selection=group.max_selections,
                repeatable=group.allow_repeats,
                item_ids=self.visible_options(group),
            )
            for group in groups
        ]
        categories = [
            _Category(
                id=category.id,
                name=self.text(category.name),
                description=self.text(category.description) or None,
                item_ids=item_ids,
            )
            for category, item_ids in self.categories(visible)
        ]
        mealtime = _Mealtime(
            id=self.sync.mealtime_id,
            name=self.text(self.mealtime_name()),
            description=self.text(self.mealtime_description()),
            image=_Image(url=self.cover_url() or ""),
            category_ids=[c.id for c in categories],
            schedule=[
                _ScheduleDay.model_validate(d) for d in mealtime_schedule(self.menu.schedule)
            ],
        )
        body = _UploadBody(
            name=self.menu_name(),
            menu=_Menu(
                mealtimes=[mealtime],
                categories=categories,
                items=vendor_items,
                modifiers=modifiers,
            ),
            site_ids=[self.config.site_id],
        )
        return body.model_dump(mode="json", exclude_none=True)

    def mealtime_name(self) -> Mapping[str, str]:
        return self.sync.mealtime_name or self.menu.name

    def mealtime_description(self) -> Mapping[str, str]:
        return self.sync.mealtime_description or self.menu.description or self.menu.name

    def cover_url(self) -> str | None:
        if self.menu.image is not None:
            return str(self.menu.image.url)
        return self.sync.cover_image_url

    def menu_name(self) -> str:
        if self.sync.menu_name:
            return self.sync.menu_name
        texts = self.text(self.menu.name)
        return next(iter(texts.values()), None) or next(iter(self.menu.name.values()))


_Entity = TypeVar("_Entity", Category, Item, ModifierGroup, ModifierOption)


def _ordered(entities: Sequence[_Entity]) -> list[_Entity]:
    """By ``sort_order``, then document order (stable), so the payload is deterministic."""
    return sorted(entities, key=lambda e: e.sort_order)


# ---- validation (pure) -----------------------------------------------------------------------


def _length_issues(
    texts: Mapping[str, str],
    path: str,
    bounds: tuple[int, int],
    what: str,
    code: str,
) -> Iterator[PlatformIssue]:
    low, high = bounds
    for lang, text in texts.items():
        length = len(text)
        if length < low or length > high:
            yield PlatformIssue(
                path=f"{path}.{lang}",
                message=f"{what} must be {low} to {high} characters on Deliveroo (it has {length})",
                code=code,
            )


def _validate(tr: _Translator) -> Iterator[PlatformIssue]:
    menu = tr.menu
    for issue in check_menu(menu):
        yield PlatformIssue(path=issue.path, message=issue.message, code=issue.code)

    languages = ", ".join(tr.languages)

    def language_issues(value: Mapping[str, str] | None, path: str) -> Iterator[PlatformIssue]:
        if not value:
            return
        texts = tr.text(value)
        if not texts:
            yield PlatformIssue(
                path=path,
                message=f"no text in a language Deliveroo accepts in {tr.config.market} "
                f"({languages}); add one or map a language in languageMap",
                code="unsupported_language",
            )
            return
        for lang in tr.languages:
            if lang not in texts:
                yield PlatformIssue(
                    path=f"{path}.{lang}",
                    message=f"no {lang!r} text; Deliveroo customers in {tr.config.market} "
                    "will see another language",
                    code="missing_translation",
                    severity="warning",
                )

    items, groups, options = tr.reachable()
    if not items:
        yield PlatformIssue(
            path="items",
            message="no item is visible on Deliveroo (Deliveroo rejects a menu without "
            "mealtimes: 'mealtimes: cannot be blank')",
            code="empty_menu",
        )
    total = len(items) + len(options)
    if total > MAX_MENU_ITEMS:
        yield PlatformIssue(
            path="items",
            message=f"the menu sends {total} items and choices to Deliveroo; at most "
            f"{MAX_MENU_ITEMS} are accepted in one upload",
            code="too_many_items",
        )

    # Mealtime: cover image, name, description.
    if tr.cover_url() is None:
        yield PlatformIssue(
            path="image",
            message="Deliveroo requires a cover image for the mealtime: set the menu image "
            "or coverImageUrl in the Deliveroo sync configuration",
            code="missing_cover_image",
        )
    name_path = "syncConfig.mealtimeName" if tr.sync.mealtime_name else "name"
    yield from language_issues(tr.mealtime_name(), name_path)
    if tr.sync.mealtime_description:
        description_path = "syncConfig.mealtimeDescription"
    else:
        description_path = "description" if menu.description else "name"
    yield from language_issues(tr.mealtime_description(), description_path)
    yield from _length_issues(
        tr.text(tr.mealtime_description()),
        description_path,
        (1, DESCRIPTION_MAX_LENGTH),
        "the menu (mealtime) description",
        "description_length",
    )

    # Categories.
    category_index = {c.id: index for index, c in enumerate(menu.categories)}
    sent_categories = tr.categories({i.id for i in items})
    if len(sent_categories) > MAX_CATEGORIES:
        yield PlatformIssue(
            path="categories",
            message=f"{len(sent_categories)} categories; Deliveroo accepts at most "
            f"{MAX_CATEGORIES}",
            code="too_many_categories",
        )
    for category, _ in sent_categories:
        path = f"categories[{category_index[category.id]}]"
        yield from language_issues(category.name, f"{path}.name")
        yield from _length_issues(
            tr.text(category.name),
            f"{path}.name",
            CATEGORY_NAME_LENGTH,
            "a category name",
            "name_length",
        )
        if category.description:
            yield from language_issues(category.description, f"{path}.description")
            yield from _length_issues(
                tr.text(category.description),
                f"{path}.description",
                CATEGORY_DESCRIPTION_LENGTH,
                "a category description",
                "description_length",
            )

    # Items (products).
    item_index = {item.id: index for index, item in enumerate(menu.items)}
    allowed_taxes = MARKET_TAX_RATES.get(tr.config.market)
    for item in items:
        path = f"items[{item_index[item.id]}]"
        name, name_field = tr.name_of(item)
        yield from language_issues(name, f"{path}.{name_field}")
        yield from _length_issues(
            tr.text(name), f"{path}.{name_field}", ITEM_NAME_LENGTH, "an item name", "name_length"
        )
        description, description_field = tr.description_of(item)
        if description:
            yield from language_issues(description, f"{path}.{description_field}")
            yield from _length_issues(
                tr.text(description),
                f"{path}.{description_field}",
                (0, DESCRIPTION_MAX_LENGTH),
                "an item description",
                "description_length",
            )
        if allowed_taxes is not None and item.tax_rate is not None and tr.sync.tax_rate is None:
            rate = format_tax_rate(item.tax_rate)
            if rate not in allowed_taxes:
                yield _tax_issue(f"{path}.taxRate", rate, tr.config.market, allowed_taxes)
        if item.schedule:
            yield PlatformIssue(
                path=f"{path}.schedule",
                message="Deliveroo has no per-item schedule in a v1 menu; the item is offered "
                "whenever the menu is",
                code="item_schedule_ignored",
                severity="warning",
            )

    # The default rate (menu or sync configuration) applies to choices and items without one.
    uses_default = bool(options) or any(i.tax_rate is None for i in items)
    if allowed_taxes is not None and (uses_default or tr.sync.tax_rate is not None):
        rate = format_tax_rate(tr.tax_rate_of(None))
        if rate not in allowed_taxes:
            path = "syncConfig.taxRate" if tr.sync.tax_rate is not None else "taxRate"
            yield _tax_issue(path, rate, tr.config.market, allowed_taxes)

    # Modifier groups and their options (choices are items on Deliveroo: same name rules).
    group_index = {g.id: index for index, g in enumerate(menu.modifier_groups)}
    for group in groups:
        path = f"modifierGroups[{group_index[group.id]}]"
        yield from language_issues(group.name, f"{path}.name")
        visible = tr.visible_options(group)
        if not group.allow_repeats and group.min_selections > len(visible):
            yield PlatformIssue(
                path=f"{path}.minSelections",
                message=f"minSelections ({group.min_selections}) exceeds the {len(visible)} "
                "options visible on Deliveroo",
                code="min_exceeds_visible_options",
            )
    sent_groups = {g.id for g in groups}
    for index, group in enumerate(menu.modifier_groups):
        if group.id in sent_groups or group.min_selections == 0:
            continue
        if not tr.visible_options(group) and any(group.id in i.modifier_group_ids for i in items):
            yield PlatformIssue(
                path=f"modifierGroups[{index}].optionIds",
                message="every option of this required group is hidden on Deliveroo; the "
                "group would be dropped and its items sold without the choice",
                code="required_group_hidden",
            )
    option_index = {o.id: index for index, o in enumerate(menu.modifier_options)}
    for option in options:
        path = f"modifierOptions[{option_index[option.id]}]"
        name, name_field = tr.name_of(option)
        yield from language_issues(name, f"{path}.{name_field}")
        yield from _length_issues(
            tr.text(name), f"{path}.{name_field}", ITEM_NAME_LENGTH, "an option name", "name_length"
        )


def _tax_issue(path: str, rate: str, market: str, allowed: frozenset[str]) -> PlatformIssue:
    accepted = ", ".join(sorted(allowed, key=Decimal))
    return PlatformIssue(
        path=path,
        message=f"tax rate {rate}% is not accepted by Deliveroo in {market} (accepted: {accepted})",
        code="tax_rate_not_allowed",
    )


# ---- HTTP answers -> platform errors ---------------------------------------------------------


def _json(response: httpx2.Response) -> Any:
    if not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return _UNPARSEABLE


_UNPARSEABLE = object()


def _platform_code_message(body: Any) -> tuple[str | None, str | None]:
    """The platform's own code and message, from Site-API or OAuth error bodies."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return (str(code) if code else None), (str(message) if message else None)
    if isinstance(error, str):
        description = body.get("error_description") or body.get("message")
        return error, str(description) if description else None
    code = body.get("code")
    message = body.get("message")
    return (str(code) if code else None), (str(message) if message else None)


def _retry_after(response: httpx2.Response, now_ts: float) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - now_ts)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _issues_from_body(body: Any, fallback: str) -> list[dict[str, Any]]:
    """Keep whatever the platform said, as issues (path ``menu`` when it names no field)."""
    code, message = _platform_code_message(body)
    issues: list[dict[str, Any]] = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        for entry in body["errors"]:
            if isinstance(entry, dict):
                issues.append(
                    {
                        "path": str(entry.get("field") or entry.get("path") or "menu"),
                        "message": str(entry.get("message") or entry),
                        "code": str(entry.get("code") or code or "platform_rule"),
                    }
                )
            else:
                issues.append({"path": "menu", "message": str(entry), "code": "platform_rule"})
    if not issues:
        issues.append(
            {"path": "menu", "message": message or fallback, "code": code or "platform_rule"}
        )
    return issues


def raise_for_status(response: httpx2.Response, operation: str, now_ts: float) -> None:
    """Map a non-2xx answer to the error classification of ``platforms/errors.py``."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = _json(response)
    code, message = _platform_code_message(body)
    text = message or response.text[:500] or response.reason_phrase
    details: dict[str, Any] = {"operation": operation}
    if body is _UNPARSEABLE or body is None:
        details["body"] = response.text[:2000]
    else:
        details["body"] = body
    kwargs: dict[str, Any] = {"status_code": status, "platform_code": code, "details": details}
    summary = f"Deliveroo answered {status} to {operation}: {text}"
    if status == 429:
        raise PlatformRateLimited(summary, retry_after=_retry_after(response, now_ts), **kwargs)
    if status >= 500 or code == "bad_gateway":
        raise PlatformUnavailable(summary, retry_after=_retry_after(response, now_ts), **kwargs)
    if status in (401, 403):
        raise PlatformAuthError(summary, **kwargs)
    if status == 404:
        raise PlatformNotFound(summary, **kwargs)
    # 400 validation, 409 (Deliveroo: "not transient", PLATFORMS.md 1.7) and other 4xx.
    raise PlatformRejected(summary, issues=_issues_from_body(body, text), **kwargs)


def _parse_object(response: httpx2.Response, operation: str) -> dict[str, Any]:
    body = _json(response)
    if not isinstance(body, dict):
        raise PlatformContractError(
            f"Deliveroo's answer to {operation} is not a JSON object",
            status_code=response.status_code,
            details={"operation": operation, "body": response.text[:2000]},
        )
    return body


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Header lookup ignoring case (Deliveroo asks receivers to handle any case)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _external_ref(brand_id: str, menu_id: str) -> str:
    return f"{brand_id}/{menu_id}"


def _upload_issues(errors: Mapping[str, Any] | None) -> tuple[PlatformIssue, ...]:
    """``errors.processing`` (text or list) and ``errors.images[]`` as issues."""
    if not errors:
        return ()
    issues: list[PlatformIssue] = []
    processing = errors.get("processing")
    entries = processing if isinstance(processing, list) else [processing]
    for entry in entries:
        if entry:
            issues.append(PlatformIssue(path="menu", message=str(entry), code="processing"))
    images = errors.get("images")
    for image in images if isinstance(images, list) else []:
        if isinstance(image, dict):
            url = str(image.get("url") or "")
            issues.append(
                PlatformIssue(
                    path=f"image:{url}" if url else "image",
                    message=str(image.get("message") or "image rejected"),
                    code="image",
                )
            )
    for key, value in errors.items():
        if key not in ("processing", "images") and value:
            issues.append(PlatformIssue(path="menu", message=f"{key}: {value}", code=str(key)))
    return tuple(issues)


# ---- the adapter -----------------------------------------------------------------------------


class DeliverooAdapter:
    """Deliveroo over the Menu API v1 (full uploads), the v2 site-addressed item
    unavailabilities, the Site API status and the ``menu.upload_result`` webhook.

    Ordering rule for the runner: a push is ``accepted`` (async) and its result comes only by
    webhook; availability writes for that site must wait until the push result is known, or they
    may miss the new items (PLATFORMS.md 1.5). ``PushReceipt.message`` says so on every accepted
    push; the runner serialises jobs per ``store_key`` and keeps the store busy until the result.
    Items the canonical menu marks ``isAvailable: false`` cannot be expressed in the upload
    body: they are sent, and the runner marks them unavailable with ``set_item_availability``
    once the upload result has arrived.
    """

    kind: ClassVar[str] = KIND
    display_name: ClassVar[str] = "Deliveroo"
    Config: ClassVar[type[PlatformModel]] = DeliverooConfig
    SyncConfig: ClassVar[type[PlatformModel]] = DeliverooSyncConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.MENU_PUSH,
            Capability.PUSH_RESULT_WEBHOOK,
            Capability.PUSH_STATUS_POLL,
            Capability.ITEM_AVAILABILITY,
            Capability.STORE_STATUS,
            Capability.TEST_CONNECTION,
        }
    )
    limits: ClassVar[PlatformLimits] = PlatformLimits(
        rules=(
            LimitRule(
                name="deliveroo_budget",
                requests=50,
                per_seconds=60,
                scope="platform",
                operations=frozenset(),
                source="DESIGN.md section 5 (whole platform)",
            ),
            LimitRule(
                name="deliveroo_menu_upload_per_site",
                requests=1,
                per_seconds=60,
                scope="store",
                operations=frozenset({"push_menu"}),
                source="PLATFORMS.md 1.6: Upload Menu, 1 request / minute / site",
            ),
            LimitRule(
                name="deliveroo_unavailability_replace_per_site",
                requests=1,
                per_seconds=60,
                scope="store",
                operations=frozenset({"item_availability_replace"}),
                source="PLATFORMS.md 1.6: replace-all unavailabilities, 1 / minute / site",
            ),
            LimitRule(
                name="deliveroo_unavailability_update_per_site",
                requests=1,
                per_seconds=0.1,
                scope="store",
                operations=frozenset({"item_availability"}),
                source="PLATFORMS.md 1.6: update some unavailabilities, 1 / 100 ms / site",
            ),
        ),
        max_items_per_push=MAX_MENU_ITEMS,
        max_items_per_availability_call=AVAILABILITY_BATCH_SIZE,
    )
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(
        max_retries=4, base_delay=4.0, max_delay=240.0, multiplier=2.0
    )
    secret_fields: ClassVar[frozenset[str]] = frozenset({"client_secret", "webhook_secret"})

    def __init__(self, config: Any, context: AdapterContext) -> None:
        self.config: DeliverooConfig = (
            config
            if isinstance(config, DeliverooConfig)
            else DeliverooConfig.model_validate(config)
        )
        self.context = context
        self._token_key = context.tokens.key_for(
            KIND,
            self.config.auth_base_url,
            self.config.client_id,
            self.config.client_secret.get_secret_value(),
        )

    @classmethod
    def store_key(cls, config: Any) -> str:
        """``{brand_id}:{site_id}``: Deliveroo limits uploads and availability per site."""
        parsed = (
            config
            if isinstance(config, DeliverooConfig)
            else DeliverooConfig.model_validate(config)
        )
        return f"{parsed.brand_id}:{parsed.site_id}"

    # ---- pure ----

    def _sync_config(self, sync_config: Any) -> DeliverooSyncConfig:
        if isinstance(sync_config, DeliverooSyncConfig):
            return sync_config
        return DeliverooSyncConfig.model_validate(sync_config or {})

    def build_payload(
        self, menu: CanonicalMenu, sync_config: Any, item_ids: list[str] | None = None
    ) -> MenuPayload:
        """The v1 upload body ``{name, menu: {mealtimes, categories, items, modifiers},
        site_ids}``. Deliveroo has no partial upload, so ``item_ids`` still gives a full push."""
        del item_ids  # no partial form on Deliveroo: always the whole menu
        translator = _Translator(menu, self.config, self._sync_config(sync_config))
        body = translator.build()
        products = sum(1 for item in body["menu"]["items"] if item["type"] == "ITEM")
        sent = {item["id"] for item in body["menu"]["items"]}
        # An upload cannot mark anything unavailable: the engine does it once the upload is live.
        follow_up = tuple(
            AvailabilityChange(item_id=item.id, is_available=False, kind="item")
            for item in menu.items
            if not item.is_available and item.id in sent
        ) + tuple(
            AvailabilityChange(item_id=option.id, is_available=False, kind="option")
            for option in menu.modifier_options
            if not option.is_available and option.id in sent
        )
        return MenuPayload(
            body=body, items_total=products, is_partial=False, follow_up_availability=follow_up
        )

    def validate_menu(self, menu: CanonicalMenu, sync_config: Any) -> list[PlatformIssue]:
        """Every rule of PLATFORMS.md 1.3-1.4 the menu breaks, with a path into the canonical
        menu (warnings for what Deliveroo accepts but shows differently)."""
        translator = _Translator(menu, self.config, self._sync_config(sync_config))
        return list(_validate(translator))

    # ---- HTTP ----

    def _url(self, *segments: str, base: str | None = None) -> str:
        return (
            (base or self.config.api_base_url)
            + "/"
            + "/".join(quote(segment, safe="") for segment in segments)
        )

    def _now_ts(self) -> float:
        return self.context.clock.now().timestamp()

    async def _send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        try:
            return await self.context.http.request(
                operation,
                method,
                url,
                json_body=json_body,
                data=data,
                headers=headers,
                timeout=timeout,
            )
        except httpx2.TimeoutException as exc:
            raise PlatformUnavailable(
                f"Deliveroo did not answer {operation} in time: {exc}",
                details={"operation": operation, "error": type(exc).__name__},
            ) from exc
        except httpx2.HTTPError as exc:
            raise PlatformUnavailable(
                f"Could not reach Deliveroo for {operation}: {exc}",
                details={"operation": operation, "error": type(exc).__name__},
            ) from exc

    async def _fetch_token(self, timeout: float | None) -> AccessToken:
        credentials = f"{self.config.client_id}:{self.config.client_secret.get_secret_value()}"
        response = await self._send(
            "token",
            "POST",
            self._url("oauth2", "token", base=self.config.auth_base_url),
            headers={
                "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
                "Accept": "application/json",
            },
            data={"grant_type": "client_credentials"},
            timeout=timeout,
        )
        if response.status_code in (400, 401, 403):
            code, message = _platform_code_message(_json(response))
            raise PlatformAuthError(
                f"Deliveroo refused the client credentials: {message or code or response.status_code}",
                status_code=response.status_code,
                platform_code=code,
                details={"operation": "token"},
            )
        raise_for_status(response, "token", self._now_ts())
        try:
            answer = _TokenAnswer.model_validate(_parse_object(response, "token"))
        except ValueError as exc:
            raise PlatformContractError(
                "Deliveroo's token answer has no usable access_token/expires_in",
                status_code=response.status_code,
                details={"operation": "token"},
            ) from exc
        expires_at = self.context.clock.now() + timedelta(seconds=answer.expires_in)
        return AccessToken(value=answer.access_token, expires_at=expires_at)

    async def _token(self, timeout: float | None = None) -> AccessToken:
        async def fetch() -> AccessToken:
            return await self._fetch_token(timeout)

        return await self.context.tokens.get(self._token_key, fetch)

    async def _call(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        """An authorised API call: a 401 gets one token refresh and one retry, then
        ``PlatformAuthError``; other failures are classified by ``raise_for_status``."""
        response: httpx2.Response | None = None
        for attempt in range(2):
            token = await self._token(timeout)
            response = await self._send(
                operation,
                method,
                url,
                headers={"Authorization": f"Bearer {token.value}", "Accept": "application/json"},
                json_body=json_body,
                timeout=timeout,
            )
            if response.status_code != 401:
                break
            self.context.tokens.invalidate(self._token_key, token.value)
            if attempt == 1:
                code, message = _platform_code_message(_json(response))
                raise PlatformAuthError(
                    f"Deliveroo rejected a fresh access token for {operation}: "
                    f"{message or code or 'unauthorized'}",
                    status_code=401,
                    platform_code=code,
                    details={"operation": operation},
                )
        assert response is not None
        raise_for_status(response, operation, self._now_ts())
        return response

    async def push_menu(self, payload: MenuPayload) -> PushReceipt:
        """Upload the whole menu (``PUT /menu/v1/brands/{brand}/menus/{menu}``).

        ``unchanged`` when Deliveroo answers ``MATCH_EXISTING_MENU``; otherwise ``accepted`` with
        ``external_ref = "{brand_id}/{menu_id}"``, the pair the ``menu.upload_result`` webhook
        carries. Item availability for this site must wait for that result.

        Raises ``PlatformRejected`` (400 and other 4xx, with Deliveroo's code and message kept),
        ``PlatformRateLimited`` (429, one upload per minute per site), ``PlatformUnavailable``
        (5xx, ``bad_gateway``, timeouts, connection errors), ``PlatformAuthError`` (401 after one
        token refresh, 403), ``PlatformNotFound`` (404: unknown brand or site),
        ``PlatformContractError`` (an answer that is not JSON).
        """
        config = self.config
        response = await self._call(
            "push_menu",
            "PUT",
            self._url("menu", "v1", "brands", config.brand_id, "menus", config.menu_id),
            json_body=payload.body,
        )
        body = _json(response)
        if body is _UNPARSEABLE or (body is not None and not isinstance(body, dict)):
            raise PlatformContractError(
                "Deliveroo's answer to the menu upload is not a JSON object",
                status_code=response.status_code,
                details={"operation": "push_menu", "body": response.text[:2000]},
            )
        external_ref = _external_ref(config.brand_id, config.menu_id)
        if isinstance(body, dict) and body.get("result") == MATCH_EXISTING_MENU:
            return PushReceipt(
                outcome="unchanged",
                external_ref=external_ref,
                message="Deliveroo already has exactly this menu (MATCH_EXISTING_MENU)",
            )
        return PushReceipt(
            outcome="accepted",
            external_ref=external_ref,
            message="Deliveroo is processing the menu; the menu.upload_result webhook gives the "
            "verdict. Hold item availability writes for this site until then.",
            poll_after_seconds=POLL_AFTER_SECONDS,
        )

    async def get_push_result(
        self, external_ref: str, payload: MenuPayload | None = None
    ) -> PushResult:
        """Best-effort poll: Deliveroo's v1 upload has no status endpoint (the verdict comes by
        webhook). This reads the live menu (``GET /menu/v1/brands/{brand}/menus/{menu}``) and
        answers ``completed`` when it equals ``payload`` (what was pushed), ``pending``
        otherwise (a failed upload leaves the previous menu live, so only the webhook can
        report a failure).

        Raises ``PlatformAuthError``, ``PlatformRateLimited``, ``PlatformUnavailable``,
        ``PlatformContractError`` (malformed reference or answer); a 404 (menu not live yet) is
        ``pending``.
        """
        brand_id, separator, menu_id = external_ref.partition("/")
        if not separator or not brand_id or not menu_id:
            raise PlatformContractError(
                f"{external_ref!r} is not a Deliveroo push reference (brand_id/menu_id)"
            )
        try:
            response = await self._call(
                "push_status",
                "GET",
                self._url("menu", "v1", "brands", brand_id, "menus", menu_id),
            )
        except PlatformNotFound:
            return PushResult(
                state="pending", external_ref=external_ref, message="menu not live yet"
            )
        live = _parse_object(response, "push_status")
        pushed = payload.body if payload is not None else None
        if pushed is not None and live.get("menu") == pushed.get("menu"):
            return PushResult(
                state="completed",
                external_ref=external_ref,
                message="the live menu is the one pushed",
            )
        return PushResult(
            state="pending",
            external_ref=external_ref,
            message="waiting for Deliveroo's menu.upload_result webhook",
        )

    # ---- webhooks ----

    @classmethod
    def parse_webhook(cls, headers: Mapping[str, str], body: bytes) -> WebhookMessage:
        """Parse a ``menu.upload_result`` webhook: event id = ``X-Deliveroo-Sequence-Guid``,
        ``external_ref = "{brand_id}/{menu_id}"``, result completed on ``http_status`` 2xx,
        failed otherwise with ``errors.processing`` / ``errors.images[]`` as issues.

        Raises ``PlatformContractError`` (no sequence guid, not JSON, wrong shape)."""
        guid = _header(headers, "X-Deliveroo-Sequence-Guid")
        if not guid:
            raise PlatformContractError("Deliveroo webhook without X-Deliveroo-Sequence-Guid")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise PlatformContractError("Deliveroo webhook body is not JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("event"), str):
            raise PlatformContractError("Deliveroo webhook body has no 'event'")
        event = document["event"]
        if event != UPLOAD_RESULT_EVENT:
            return WebhookMessage(event_id=guid, event_type=event, external_ref=None)
        inner = document.get("body")
        raw = inner.get("menu_upload_result") if isinstance(inner, dict) else None
        try:
            result = _UploadResult.model_validate(raw)
        except ValueError as exc:
            raise PlatformContractError(
                "Deliveroo menu.upload_result webhook has no usable body.menu_upload_result",
                details={"body": body[:2000].decode("utf-8", errors="replace")},
            ) from exc
        external_ref = _external_ref(result.brand_id, result.menu_id)
        succeeded = 200 <= result.http_status < 300
        issues = _upload_issues(result.errors)
        details: dict[str, Any] = {
            "httpStatus": result.http_status,
            "siteIds": result.site_ids,
        }
        if result.errors:
            details["errors"] = result.errors
        store_ref = f"{result.brand_id}:{result.site_ids[0]}" if len(result.site_ids) == 1 else None
        return WebhookMessage(
            event_id=guid,
            event_type=event,
            external_ref=external_ref,
            store_ref=store_ref,
            result=PushResult(
                state="completed" if succeeded else "failed",
                external_ref=external_ref,
                issues=() if succeeded else issues,
                message=None
                if succeeded
                else (issues[0].message if issues else f"upload failed ({result.http_status})"),
                details=details,
            ),
        )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        """``X-Deliveroo-Hmac-Sha256 == hex(HMAC_SHA256(webhook_secret, guid + " " + body))``
        over the raw bytes, compared in constant time; header names in any case. Raises
        nothing."""
        guid = _header(headers, "X-Deliveroo-Sequence-Guid")
        signature = _header(headers, "X-Deliveroo-Hmac-Sha256")
        if not guid or not signature:
            return False
        expected = hmac.new(
            self.config.webhook_secret.get_secret_value().encode(),
            guid.encode() + b" " + body,
            hashlib.sha256,
        ).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())

    @classmethod
    def webhook_reply(cls, message: WebhookMessage | None, *, accepted: bool) -> WebhookReply:
        """Any 2xx stops Deliveroo's redelivery; any other status makes it retry for up to 30
        minutes, which is what we want when we could not process the event."""
        del message
        if accepted:
            return WebhookReply(status_code=200, body={"status": "ok"})
        return WebhookReply(status_code=503, body={"status": "retry"})

    # ---- availability and store status ----

    async def set_item_availability(self, changes: list[AvailabilityChange]) -> OperationResult:
        """Partial update ``POST /menu/v2/brands/{brand}/sites/{site}/menu/item_unavailabilities``
        ``{item_unavailabilities: [{item_id, status}]}`` in batches of
        ``AVAILABILITY_BATCH_SIZE``; items and options alike (options are CHOICE items).
        ``unavailable`` lasts until Deliveroo's next morning stock reset; ``until`` is not
        supported (no ``AVAILABILITY_UNTIL``). Call only once the last upload's result is known.

        Raises ``PlatformNotFound`` (an unknown id fails the whole batch), ``PlatformRejected``,
        ``PlatformRateLimited``, ``PlatformUnavailable``, ``PlatformAuthError``; batches already
        sent stay applied (the call is idempotent, so a retry repeats them harmlessly).
        """
        latest: dict[str, AvailabilityChange] = {}
        for change in changes:
            latest[change.item_id] = change
        entries = [
            {
                "item_id": item_id,
                "status": "available" if change.is_available else "unavailable",
            }
            for item_id, change in sorted(latest.items())
        ]
        url = self._url(
            "menu",
            "v2",
            "brands",
            self.config.brand_id,
            "sites",
            self.config.site_id,
            "menu",
            "item_unavailabilities",
        )
        processed = 0
        for start in range(0, len(entries), AVAILABILITY_BATCH_SIZE):
            batch = entries[start : start + AVAILABILITY_BATCH_SIZE]
            await self._call(
                "item_availability", "POST", url, json_body={"item_unavailabilities": batch}
            )
            processed += len(batch)
        ignored_until = sum(1 for c in latest.values() if c.until is not None)
        message = (
            f"{processed} items updated; 'unavailable' lasts until Deliveroo's morning stock reset"
        )
        if ignored_until:
            message += (
                f" ({ignored_until} end times ignored: Deliveroo has no timed unavailability)"
            )
        return OperationResult(succeeded=True, message=message, items_processed=processed)

    async def set_store_status(self, change: StoreStatusChange) -> OperationResult:
        """``PUT /site/v1/brands/{brand}/sites/{site}/status`` with ``OPEN`` or ``CLOSED``.
        Deliveroo has no timed pause: ``paused`` without ``until`` closes the site, with
        ``until`` it is refused (no ``STORE_PAUSE`` capability).

        Raises ``PlatformRejected`` (400, e.g. ``Unable to open restaurant, reason:
        OPENING_HOURS`` / ``VACATION_MODE`` / ``CLOSED_PERIOD``, the reason kept as the issue
        code), ``PlatformNotFound``, ``PlatformRateLimited``, ``PlatformUnavailable``,
        ``PlatformAuthError``, ``PlatformContractError``.
        """
        if change.state == "paused" and change.until is not None:
            raise PlatformRejected(
                "Deliveroo has no timed pause; close the site and reopen it later",
                issues=[
                    {
                        "path": "until",
                        "message": "Deliveroo cannot pause a site until a given time",
                        "code": "pause_unsupported",
                    }
                ],
            )
        status = "OPEN" if change.state == "open" else "CLOSED"
        url = self._url(
            "site", "v1", "brands", self.config.brand_id, "sites", self.config.site_id, "status"
        )
        try:
            await self._call("store_status", "PUT", url, json_body={"status": status})
        except PlatformRejected as exc:
            said = str(exc.issues[0]["message"]) if exc.issues else exc.message
            reason = _REASON.search(said)
            if reason is not None:
                exc.issues[:] = [{"path": "status", "message": said, "code": reason.group(1)}]
                exc.details["reason"] = reason.group(1)
            raise
        return OperationResult(succeeded=True, message=f"site status set to {status}")

    async def test_connection(self) -> ConnectionCheck:
        """A token request and a read of the site's status, each with a short timeout. Raises
        nothing: failures come back as ``ok=False`` with Deliveroo's code and message."""
        url = self._url(
            "site", "v1", "brands", self.config.brand_id, "sites", self.config.site_id, "status"
        )
        try:
            response = await self._call(
                "test_connection", "GET", url, timeout=TEST_CONNECTION_TIMEOUT
            )
            status = _parse_object(response, "test_connection").get("status")
        except PlatformError as exc:
            return ConnectionCheck(
                ok=False,
                message=exc.message,
                details={"code": exc.code, **exc.details},
            )
        return ConnectionCheck(
            ok=True,
            message=f"Connected to Deliveroo brand {self.config.brand_id}, site "
            f"{self.config.site_id} (status {status})",
            details={"siteStatus": status},
        )
