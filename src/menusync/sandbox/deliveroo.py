"""Deliveroo simulator: Menu API v1 (and v3), Site API, menu-event webhooks.

Behaviour follows PLATFORMS.md section 1 and the simulator brief in section 8.2:

- ``POST /oauth2/token`` takes ``grant_type=client_credentials`` with the client credentials in an
  ``Authorization: Basic`` header (current docs) *or* in the form body (older v2.0 page). Tokens
  live 300 seconds; there is no refresh token. Errors are OAuth style: ``{"error":
  "invalid_client"}``.
- ``PUT /menu/v1/brands/{brand}/menus/{menu}`` is asynchronous. The HTTP answer only checks the
  envelope (``name``, ``menu``, ``site_ids``) and the rate limit (one upload per minute per site);
  the menu itself is validated later and the verdict arrives as a ``menu.upload_result`` webhook
  (``http_status`` 200 / 400 / 500, ``errors.processing``). An upload identical to the live menu
  answers ``{"result": "MATCH_EXISTING_MENU"}`` and starts nothing.
- Webhooks carry ``X-Deliveroo-Sequence-Guid``, ``X-Deliveroo-Hmac-Sha256`` = hex
  HMAC-SHA256(webhook secret, guid + " " + raw body), ``X-Deliveroo-Payload-Type: webhook_menu``
  and ``X-Deliveroo-Webhook-Version: 1``; any non-2xx answer is retried for up to 30 minutes.
- Item availability: ``unavailable`` is cleared by the daily morning stock reset, ``hidden``
  survives it. The replace-all PUT ignores unknown ids and is limited to one call per minute per
  site; the partial POST fails entirely (404) on an unknown id. Ids are only known once the menu
  that holds them is live, so a write made before the upload result does not reach new items.
- Site status: opening outside opening hours, during a day off, or in a closed period (three
  auto-rejections within 15 minutes) answers 400 ``Unable to open restaurant, reason: ...``.
- Errors use the Site API envelope ``{"error": {"code": "bad_request", "message": "..."}}``.

Inferred (PLATFORMS.md marks them [I]): the 429 code ``too_many_requests``; that days off map to
``VACATION_MODE``; that the closed period lasts an hour; the exact v3 answer shapes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

import httpx2
from fastapi import APIRouter, FastAPI, Request
from pydantic import Field
from starlette.responses import JSONResponse, Response

from menusync.sandbox.control import build_platform_app, control_error, json_body
from menusync.sandbox.runtime import (
    CamelModel,
    Delivery,
    Limits,
    SandboxError,
    Simulator,
    bearer_token,
    credentials_ok,
    iso,
)
from menusync.sandbox.settings import SandboxSettings
from menusync.sandbox.shapes import (
    INVALID,
    as_dict,
    as_int,
    as_list,
    as_str,
    canonical,
    is_int,
    parse_json,
    str_list,
)

TOKEN_LIFETIME = timedelta(seconds=300)
MINUTE = timedelta(minutes=1)

# Languages and tax rates per market, as Odoo's Deliveroo provider sends them [V-impl].
MARKET_LANGUAGES: dict[str, frozenset[str]] = {
    "AE": frozenset({"en", "ar"}),
    "KW": frozenset({"ar", "en"}),
    "QA": frozenset({"ar", "en"}),
    "GB": frozenset({"en"}),
    "IE": frozenset({"en"}),
    "FR": frozenset({"fr", "en"}),
    "BE": frozenset({"fr", "nl", "en"}),
    "IT": frozenset({"it", "en"}),
    "HK": frozenset({"zh", "en"}),
    "SG": frozenset({"zh", "en"}),
}
MARKET_TAX_RATES: dict[str, frozenset[str]] = {
    "AE": frozenset({"0", "5"}),
    "KW": frozenset({"0"}),
    "QA": frozenset({"0"}),
    "GB": frozenset({"0", "5", "12.5", "20"}),
    "IE": frozenset({"0", "9", "13.5", "23"}),
    "FR": frozenset({"0", "2.1", "5.5", "10", "20"}),
}
MARKET_ZONES: dict[str, str] = {
    "AE": "Asia/Dubai",
    "KW": "Asia/Kuwait",
    "QA": "Asia/Qatar",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "BE": "Europe/Brussels",
    "IT": "Europe/Rome",
    "HK": "Asia/Hong_Kong",
    "SG": "Asia/Singapore",
}
MODIFIER_TYPES = frozenset(
    {
        "up-sell-existing-items",
        "remove-ingredient",
        "add-ingredient",
        "cooking-instruction",
        "size-modification",
        "product-variation",
        "gift-wrap",
        "bundle-item",
        "add-separate-condiment",
    }
)
ITEM_TYPES = frozenset({"ITEM", "CHOICE", "BUNDLE"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SITE_STATUSES = frozenset({"OPEN", "CLOSED", "READY_TO_OPEN"})
MAX_CATEGORIES = 100
CLOSED_PERIOD = timedelta(hours=1)
AUTO_REJECTION_WINDOW = timedelta(minutes=15)
V3_UPLOAD_URL_LIFETIME = timedelta(minutes=60)


class DeliverooLimits(Limits):
    """Deliveroo's published budgets (PLATFORMS.md 1.6)."""

    menu_uploads_per_minute: int | None = Field(default=1, ge=1)
    """Upload Menu: 1 request / minute / site."""
    unavailability_replaces_per_minute: int | None = Field(default=1, ge=1)
    """Replace-all unavailabilities (v1 and v2 PUT): 1 request / minute / site."""
    unavailability_updates_per_100ms: int | None = Field(default=1, ge=1)
    """Update some unavailabilities (POST): 1 request / 100 ms / site [2nd]."""


@dataclass
class Brand:
    id: str
    name: str
    market: str


@dataclass
class Site:
    id: str
    brand_id: str
    name: str
    status: str = "OPEN"
    opening_hours: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    days_off: dict[str, dict[str, str]] = field(default_factory=dict)
    workload_mode: str = "QUIET"
    workload_times: dict[str, object] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)
    hidden: set[str] = field(default_factory=set)
    reset_checked_at: datetime | None = None
    auto_rejections: deque[datetime] = field(default_factory=deque)
    closed_period_until: datetime | None = None
    live_menu_id: str | None = None
    last_import: dict[str, object] | None = None


@dataclass
class Menu:
    brand_id: str
    menu_id: str
    document: dict[str, object]
    uploaded_at: datetime


@dataclass
class V3Upload:
    brand_id: str
    menu_id: str
    version: str
    expires_at: datetime
    document: dict[str, object] | None = None


@dataclass
class V3Job:
    id: str
    brand_id: str
    menu_id: str
    status: str = "pending"
    error: str | None = None


class WebhookConfig(CamelModel):
    url: str | None = None
    secret: str | None = None


class StoreRegistration(CamelModel):
    store_id: str
    brand_id: str = "brand-1"
    market: str | None = None
    name: str | None = None


def sign(secret: str, guid: str, body: bytes) -> str:
    """Deliveroo's menu webhook signature: hex HMAC-SHA256 over ``guid + " " + body``."""
    return hmac.new(secret.encode(), guid.encode() + b" " + body, hashlib.sha256).hexdigest()


class DeliverooSimulator(Simulator):
    platform: ClassVar[str] = "deliveroo"
    limits_type: ClassVar[type[Limits]] = DeliverooLimits

    def __init__(
        self, settings: SandboxSettings, http_client: httpx2.AsyncClient | None = None
    ) -> None:
        super().__init__(settings, http_client)
        self.reset_platform()

    def reset_platform(self) -> None:
        self.brands: dict[str, Brand] = {}
        self.sites: dict[str, Site] = {}
        self.menus: dict[tuple[str, str], Menu] = {}
        self.webhook_url: str | None = self.settings.deliveroo_webhook_url
        self.webhook_secret: str = self.settings.deliveroo_webhook_secret
        self.sequence = 0
        self.v3_uploads: dict[str, V3Upload] = {}
        self.v3_jobs: dict[str, V3Job] = {}

    # ----- envelope -------------------------------------------------------------------------

    def error_code_for(self, status: int) -> str:
        return {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            409: "conflict",
            429: "too_many_requests",
            500: "internal_server_error",
            502: "bad_gateway",
            503: "service_unavailable",
            504: "gateway_timeout",
        }.get(status, "error")

    def render_error(self, error: SandboxError, path: str) -> JSONResponse:
        if path.startswith("/oauth2"):
            return JSONResponse({"error": error.code}, status_code=error.status)
        return JSONResponse(
            {"error": {"code": error.code, "message": error.message}}, status_code=error.status
        )

    # ----- stores ---------------------------------------------------------------------------

    def store_ids(self) -> list[str]:
        return sorted(self.sites)

    def brand(self, brand_id: str) -> Brand:
        brand = self.brands.get(brand_id)
        if brand is None:
            if self.settings.strict:
                raise SandboxError(404, "not_found", f"brand {brand_id} not found")
            brand = Brand(brand_id, brand_id, self.settings.deliveroo_market)
            self.brands[brand_id] = brand
        return brand

    def site(self, brand_id: str, site_id: str) -> Site:
        brand = self.brand(brand_id)
        site = self.sites.get(site_id)
        if site is None:
            if self.settings.strict:
                raise SandboxError(404, "not_found", f"site {site_id} not found")
            site = Site(site_id, brand.id, site_id, reset_checked_at=self.now())
            self.sites[site_id] = site
        elif site.brand_id != brand.id:
            raise SandboxError(404, "not_found", f"site {site_id} not found for brand {brand_id}")
        return site

    def register(self, registration: StoreRegistration) -> Site:
        market = registration.market or self.settings.deliveroo_market
        brand = self.brands.setdefault(
            registration.brand_id, Brand(registration.brand_id, registration.brand_id, market)
        )
        if registration.market:
            brand.market = registration.market
        site = Site(
            registration.store_id,
            brand.id,
            registration.name or registration.store_id,
            reset_checked_at=self.now(),
        )
        self.sites[site.id] = site
        return site

    def live_menu(self, site: Site) -> Menu | None:
        if site.live_menu_id is None:
            return None
        return self.menus.get((site.brand_id, site.live_menu_id))

    def live_item_ids(self, site: Site) -> set[str]:
        menu = self.live_menu(site)
        if menu is None:
            return set()
        items = as_list(as_dict(menu.document.get("menu")).get("items"))
        return {i for i in (as_str(as_dict(item).get("id")) for item in items) if i}

    def apply_morning_reset(self, site: Site) -> None:
        """Clear ``unavailable`` (not ``hidden``) if a morning reset passed since the last look."""
        now = self.now()
        reset_at = datetime.combine(now.date(), self.settings.deliveroo_stock_reset_at, UTC)
        if reset_at > now:
            reset_at -= timedelta(days=1)
        if site.reset_checked_at is not None and site.reset_checked_at < reset_at:
            site.unavailable.clear()
        site.reset_checked_at = now

    def local_now(self, site: Site) -> datetime:
        market = self.brands[site.brand_id].market if site.brand_id in self.brands else "AE"
        return self.now().astimezone(ZoneInfo(MARKET_ZONES.get(market, "UTC")))

    def store_view(self, store_id: str) -> dict[str, object] | None:
        site = self.sites.get(store_id)
        if site is None:
            return None
        self.apply_morning_reset(site)
        menu = self.live_menu(site)
        return {
            "id": site.id,
            "brandId": site.brand_id,
            "menuId": site.live_menu_id,
            "menu": menu.document if menu else None,
            "availability": {
                "unavailable_ids": sorted(site.unavailable),
                "hidden_ids": sorted(site.hidden),
            },
            "status": site.status,
            "workloadMode": site.workload_mode,
            "openingHours": site.opening_hours,
            "lastImport": site.last_import,
        }

    # ----- menu processing ------------------------------------------------------------------

    def next_guid(self) -> str:
        """Sequence GUIDs are monotonic: the counter sits in the high bits."""
        self.sequence += 1
        return str(uuid.UUID(int=(self.sequence << 64) | uuid.uuid4().int >> 64))

    async def process_upload(
        self, brand_id: str, menu_id: str, document: dict[str, object]
    ) -> None:
        await asyncio.sleep(self.settings.processing_delay_seconds)
        market = self.brands[brand_id].market if brand_id in self.brands else "AE"
        site_ids = str_list(document.get("site_ids")) or []
        errors = validate_menu(document, market, strict=self.settings.strict)
        if not errors and self.roll(self.faults.async_fail_rate):
            http_status, processing = 500, "Internal error while processing the menu"
        elif errors:
            http_status, processing = 400, "; ".join(errors)
        else:
            http_status, processing = 200, ""
        now = self.now()
        if http_status == 200:
            self.menus[(brand_id, menu_id)] = Menu(brand_id, menu_id, document, now)
        result: dict[str, object] = {
            "http_status": http_status,
            "brand_id": brand_id,
            "menu_id": menu_id,
            "site_ids": site_ids,
        }
        if processing:
            result["errors"] = {"processing": processing, "images": []}
        for site_id in site_ids:
            site = self.sites.get(site_id)
            if site is None:
                continue
            if http_status == 200:
                site.live_menu_id = menu_id
            site.last_import = {**result, "finished_at": iso(now), "messages": errors}
        if self.webhook_url:
            body = canonical(
                {"event": "menu.upload_result", "body": {"menu_upload_result": result}}
            )
            self.deliver(self.menu_webhook(self.webhook_url, body.encode()))

    def menu_webhook(self, url: str, body: bytes) -> Delivery:
        guid = self.next_guid()
        secret = self.webhook_secret

        def headers(raw: bytes, bad: bool) -> dict[str, str]:
            key = secret + "-tampered" if bad else secret
            return {
                "X-Deliveroo-Sequence-Guid": guid,
                "X-Deliveroo-Hmac-Sha256": sign(key, guid, raw),
                "X-Deliveroo-Payload-Type": "webhook_menu",
                "X-Deliveroo-Webhook-Version": "1",
            }

        return Delivery(
            url=url,
            event_id=guid,
            body=body,
            sign=headers,
            retry_delays=list(self.settings.deliveroo_webhook_retry_delays),
            is_retryable=lambda status: not 200 <= status < 300,
            kind="menu.upload_result",
        )

    async def process_v3_job(self, job: V3Job, document: dict[str, object]) -> None:
        job.status = "running"
        await asyncio.sleep(self.settings.processing_delay_seconds)
        market = self.brands[job.brand_id].market if job.brand_id in self.brands else "AE"
        errors = validate_menu(document, market, strict=self.settings.strict)
        if not errors and self.roll(self.faults.async_fail_rate):
            errors = ["Internal error while publishing the menu"]
        if errors:
            job.status, job.error = "failed", "; ".join(errors)
            return
        self.menus[(job.brand_id, job.menu_id)] = Menu(
            job.brand_id, job.menu_id, document, self.now()
        )
        for site_id in str_list(document.get("site_ids")) or []:
            site = self.sites.get(site_id)
            if site is not None:
                site.live_menu_id = job.menu_id
                site.last_import = {
                    "http_status": 200,
                    "brand_id": job.brand_id,
                    "menu_id": job.menu_id,
                    "site_ids": [site_id],
                    "finished_at": iso(self.now()),
                    "messages": [],
                }
        job.status = "completed"


# ----- validation ---------------------------------------------------------------------------


def _texts(value: object) -> dict[str, object] | None:
    return value if isinstance(value, dict) else None


def check_text(
    errors: list[str],
    where: str,
    value: object,
    languages: frozenset[str],
    *,
    required: bool,
    min_len: int = 0,
    max_len: int | None = None,
) -> None:
    """A translated text: an object keyed by the market's language codes."""
    if value is None:
        if required:
            errors.append(f"{where}: cannot be blank")
        return
    texts = _texts(value)
    if texts is None:
        errors.append(f"{where}: must be an object keyed by language code")
        return
    if required and not any(isinstance(v, str) and v.strip() for v in texts.values()):
        errors.append(f"{where}: cannot be blank")
        return
    for lang, text in texts.items():
        if lang not in languages:
            errors.append(f"{where}.{lang}: language not supported in this market")
            continue
        if not isinstance(text, str):
            errors.append(f"{where}.{lang}: must be a string")
            continue
        length = len(text)
        if length < min_len or (max_len is not None and length > max_len):
            bound = f"between {min_len} and {max_len}" if min_len else f"at most {max_len}"
            errors.append(f"{where}.{lang}: must be {bound} characters")


def _overlaps(periods: list[tuple[str, str]]) -> bool:
    ordered = sorted(periods)
    return any(ordered[i][1] > ordered[i + 1][0] for i in range(len(ordered) - 1))


def _hhmm(value: object) -> str | None:
    text = as_str(value)
    if text is None or len(text) != 5 or text[2] != ":":
        return None
    try:
        time.fromisoformat(text)
    except ValueError:
        return None
    return text


def validate_menu(document: dict[str, object], market: str, *, strict: bool) -> list[str]:
    """Every rule of PLATFORMS.md 1.3-1.4 that Deliveroo applies while processing an upload."""
    errors: list[str] = []
    languages = MARKET_LANGUAGES.get(market, frozenset(MARKET_LANGUAGES["AE"] | {"en"}))
    menu = as_dict(document.get("menu"))
    mealtimes = as_list(menu.get("mealtimes"))
    categories = as_list(menu.get("categories"))
    items = as_list(menu.get("items"))
    modifiers = as_list(menu.get("modifiers"))
    if not mealtimes:
        errors.append("mealtimes: cannot be blank")
    if len(categories) > MAX_CATEGORIES:
        errors.append(f"categories: at most {MAX_CATEGORIES} categories are allowed")

    def ids_of(entities: list[object], kind: str) -> dict[str, dict[str, object]]:
        found: dict[str, dict[str, object]] = {}
        for index, raw in enumerate(entities):
            entity = as_dict(raw)
            entity_id = as_str(entity.get("id"))
            if not entity_id:
                errors.append(f"{kind}[{index}].id: cannot be blank")
            elif entity_id in found:
                errors.append(f"{kind}[{index}].id: duplicate id {entity_id}")
            else:
                found[entity_id] = entity
        return found

    category_ids = ids_of(categories, "categories")
    item_ids = ids_of(items, "items")
    modifier_ids = ids_of(modifiers, "modifiers")

    for index, raw in enumerate(mealtimes):
        where = f"mealtimes[{index}]"
        mealtime = as_dict(raw)
        check_text(errors, f"{where}.name", mealtime.get("name"), languages, required=True)
        check_text(
            errors,
            f"{where}.description",
            mealtime.get("description"),
            languages,
            required=strict,
            max_len=500,
        )
        if not as_str(as_dict(mealtime.get("image")).get("url")):
            errors.append(f"{where}.image: cannot be blank")
        refs = str_list(mealtime.get("category_ids"))
        if not refs:
            errors.append(f"{where}.category_ids: cannot be blank")
        for ref in refs or []:
            if ref not in category_ids:
                errors.append(f"{where}.category_ids: unknown category {ref}")
        by_day: dict[int, list[tuple[str, str]]] = {}
        for s_index, raw_entry in enumerate(as_list(mealtime.get("schedule"))):
            entry = as_dict(raw_entry)
            day = as_int(entry.get("day_of_week"))
            if day is None or not 0 <= day <= 6:
                errors.append(f"{where}.schedule[{s_index}].day_of_week: must be 0 (Monday)..6")
                continue
            for raw_period in as_list(entry.get("time_periods")):
                period = as_dict(raw_period)
                start, end = _hhmm(period.get("start")), _hhmm(period.get("end"))
                if start is None or end is None or start >= end:
                    errors.append(f"{where}.schedule[{s_index}].time_periods: invalid period")
                    continue
                by_day.setdefault(day, []).append((start, end))
        for day, periods in sorted(by_day.items()):
            if _overlaps(periods):
                errors.append(f"{where}.schedule: overlapping time periods on day {day}")

    for index, (category_id, category) in enumerate(category_ids.items()):
        where = f"categories[{index}]"
        check_text(
            errors,
            f"{where}.name",
            category.get("name"),
            languages,
            required=True,
            min_len=3,
            max_len=120,
        )
        check_text(
            errors,
            f"{where}.description",
            category.get("description"),
            languages,
            required=False,
            min_len=3,
            max_len=255,
        )
        refs = str_list(category.get("item_ids"))
        if not refs:
            errors.append(f"{where}.item_ids: category {category_id} has no items")
        for ref in refs or []:
            item = item_ids.get(ref)
            if item is None:
                errors.append(f"{where}.item_ids: unknown item {ref}")
            elif item.get("type") == "CHOICE":
                errors.append(f"{where}.item_ids: {ref} is a CHOICE and cannot be in a category")

    for index, (item_id, item) in enumerate(item_ids.items()):
        where = f"items[{index}]"
        item_type = item.get("type")
        if item_type not in ITEM_TYPES:
            errors.append(f"{where}.type: must be one of ITEM, CHOICE, BUNDLE")
        check_text(
            errors,
            f"{where}.name",
            item.get("name"),
            languages,
            required=True,
            min_len=2,
            max_len=120,
        )
        check_text(
            errors,
            f"{where}.description",
            item.get("description"),
            languages,
            required=False,
            max_len=500,
        )
        tax_rate = item.get("tax_rate")
        if not isinstance(tax_rate, str) or not tax_rate.strip():
            errors.append(f"{where}.tax_rate: cannot be blank")
        elif market in MARKET_TAX_RATES and tax_rate.strip() not in MARKET_TAX_RATES[market]:
            errors.append(f"{where}.tax_rate: {tax_rate} is not a valid tax rate for {market}")
        if strict and not as_str(item.get("plu")):
            errors.append(f"{where}.plu: cannot be blank")
        price_info = as_dict(item.get("price_info"))
        price = price_info.get("price")
        if not is_int(price) or as_int(price) is None or (as_int(price) or 0) < 0:
            errors.append(
                f"{where}.price_info.price: must be a non-negative integer in minor units"
            )
        for o_index, raw_override in enumerate(as_list(price_info.get("overrides"))):
            override = as_dict(raw_override)
            o_price = as_int(override.get("price"))
            if o_price is None or o_price < 0:
                errors.append(
                    f"{where}.price_info.overrides[{o_index}].price: must be a non-negative "
                    "integer in minor units"
                )
            if as_str(override.get("id")) not in modifier_ids:
                errors.append(f"{where}.price_info.overrides[{o_index}].id: unknown modifier")
        for ref in str_list(item.get("modifier_ids")) or []:
            if ref not in modifier_ids:
                errors.append(f"{where}.modifier_ids: unknown modifier {ref}")
            elif item_type == "BUNDLE" and modifier_ids[ref].get("type") != "bundle-item":
                errors.append(f"{where}.modifier_ids: bundle modifiers must be of type bundle-item")
        if item_type == "BUNDLE" and _depth(item_id, item_ids, modifier_ids, set()) > 3:
            errors.append(f"{where}: a bundle may have at most 3 nested layers")

    for index, (modifier_id, modifier) in enumerate(modifier_ids.items()):
        where = f"modifiers[{index}]"
        check_text(errors, f"{where}.name", modifier.get("name"), languages, required=True)
        modifier_type = modifier.get("type")
        if modifier_type is not None and modifier_type not in MODIFIER_TYPES:
            errors.append(f"{where}.type: unknown modifier type {modifier_type}")
        min_sel, max_sel = (
            as_int(modifier.get("min_selection")),
            as_int(modifier.get("max_selection")),
        )
        if min_sel is None or min_sel < 0:
            errors.append(f"{where}.min_selection: must be a non-negative integer")
        if max_sel is None or max_sel < 1:
            errors.append(f"{where}.max_selection: must be greater than or equal to 1")
        if min_sel is not None and max_sel is not None and min_sel > max_sel:
            errors.append(f"{where}.min_selection: must be less than or equal to max_selection")
        if modifier_type == "bundle-item" and min_sel != max_sel:
            errors.append(f"{where}: bundle sections need min_selection = max_selection")
        refs = str_list(modifier.get("item_ids"))
        if not refs:
            errors.append(f"{where}.item_ids: modifier {modifier_id} has no options")
        for ref in refs or []:
            option = item_ids.get(ref)
            if option is None:
                errors.append(f"{where}.item_ids: unknown item {ref}")
            elif option.get("type") != "CHOICE" and modifier_type not in (
                "up-sell-existing-items",
                "bundle-item",
            ):
                errors.append(f"{where}.item_ids: option {ref} must be a CHOICE item")
    return errors


def _depth(
    item_id: str,
    items: dict[str, dict[str, object]],
    modifiers: dict[str, dict[str, object]],
    seen: set[str],
) -> int:
    """Nesting depth of modifier layers below ``item_id`` (cycles count as too deep)."""
    if item_id in seen:
        return 99
    seen = seen | {item_id}
    deepest = 0
    for modifier_id in str_list(items.get(item_id, {}).get("modifier_ids")) or []:
        for option in str_list(modifiers.get(modifier_id, {}).get("item_ids")) or []:
            deepest = max(deepest, 1 + _depth(option, items, modifiers, seen))
        deepest = max(deepest, 1)
    return deepest


# ----- the app ------------------------------------------------------------------------------


def create_app(
    settings: SandboxSettings | None = None, *, http_client: httpx2.AsyncClient | None = None
) -> FastAPI:
    """The Deliveroo simulator as an ASGI app (paths relative to its mount prefix)."""
    sim = DeliverooSimulator(settings or SandboxSettings(), http_client)
    return build_platform_app(sim, _router(sim), "Deliveroo sandbox")


def _router(sim: DeliverooSimulator) -> APIRouter:
    router = APIRouter()

    def authorize(request: Request) -> None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not sim.tokens.is_valid(token, sim.now()):
            raise SandboxError(401, "unauthorized", "Invalid or expired access token")

    async def body_of(request: Request) -> dict[str, object]:
        body = parse_json(await request.body())
        if body is INVALID or not isinstance(body, dict):
            raise SandboxError(400, "bad_request", "Request body must be a JSON object")
        return as_dict(body)

    # ----- auth -----

    @router.post("/oauth2/token")
    async def issue_token(request: Request) -> JSONResponse:
        form = await request.form()
        client_id = as_str(form.get("client_id"))
        client_secret = as_str(form.get("client_secret"))
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise SandboxError(401, "invalid_client", "Malformed Basic credentials") from None
            client_id, _, client_secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            raise SandboxError(
                400, "unsupported_grant_type", "grant_type must be client_credentials"
            )
        if not credentials_ok(sim.settings, client_id, client_secret):
            raise SandboxError(401, "invalid_client", "Bad client credentials")
        token = sim.tokens.issue(client_id or "", TOKEN_LIFETIME, sim.now())
        return JSONResponse({"access_token": token, "expires_in": 300, "token_type": "Bearer"})

    # ----- discovery -----

    @router.get("/site/v1/brands")
    async def list_brands(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse(
            {
                "brands": [
                    {"id": b.id, "name": b.name, "market": b.market} for b in sim.brands.values()
                ]
            }
        )

    @router.get("/site/v1/brands/{brand_id}/sites")
    async def list_sites(brand_id: str, request: Request) -> JSONResponse:
        authorize(request)
        brand = sim.brand(brand_id)
        sites = [s for s in sim.sites.values() if s.brand_id == brand.id]
        return JSONResponse(
            {"sites": [{"id": s.id, "name": s.name, "brand_id": s.brand_id} for s in sites]}
        )

    @router.get("/site/v1/restaurant_locations/{site_id}")
    async def restaurant_location(site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        site = sim.sites.get(site_id)
        if site is None:
            raise SandboxError(404, "not_found", f"site {site_id} not found")
        return JSONResponse({"id": site.id, "brand_id": [site.brand_id]})

    # ----- menu v1 -----

    @router.put("/menu/v1/brands/{brand_id}/menus/{menu_id}")
    async def upload_menu(brand_id: str, menu_id: str, request: Request) -> JSONResponse:
        authorize(request)
        body = await body_of(request)
        if not isinstance(body.get("name"), str) or not as_str(body.get("name")):
            raise SandboxError(400, "bad_request", "name: cannot be blank")
        if not isinstance(body.get("menu"), dict):
            raise SandboxError(400, "bad_request", "menu: must be an object")
        site_ids = str_list(body.get("site_ids"))
        if not site_ids:
            raise SandboxError(400, "bad_request", "site_ids: cannot be blank")
        sites = [sim.site(brand_id, site_id) for site_id in site_ids]
        if not sim.within_budgets(
            [("menu_uploads_per_minute", MINUTE, site.id, "") for site in sites]
        ):
            raise SandboxError(
                429, "too_many_requests", "Only one menu upload per minute per site is allowed"
            )
        current = sim.menus.get((brand_id, menu_id))
        if current is not None and canonical(current.document) == canonical(body):
            return JSONResponse({"result": "MATCH_EXISTING_MENU"})
        sim.spawn(sim.process_upload(brand_id, menu_id, body))
        return JSONResponse({})

    @router.get("/menu/v1/brands/{brand_id}/menus")
    async def list_menus(brand_id: str, request: Request) -> JSONResponse:
        authorize(request)
        sim.brand(brand_id)
        menus = [m for (b, _), m in sim.menus.items() if b == brand_id]
        return JSONResponse(
            {
                "menus": [
                    {
                        "id": m.menu_id,
                        "name": m.document.get("name"),
                        "site_ids": m.document.get("site_ids"),
                        "updated_at": iso(m.uploaded_at),
                    }
                    for m in menus
                ]
            }
        )

    @router.get("/menu/v1/brands/{brand_id}/menus/{menu_id}")
    async def get_menu(brand_id: str, menu_id: str, request: Request) -> JSONResponse:
        authorize(request)
        menu = sim.menus.get((brand_id, menu_id))
        if menu is None:
            raise SandboxError(404, "not_found", f"menu {menu_id} not found")
        return JSONResponse({"id": menu_id, **menu.document})

    # ----- availability -----

    def availability_of(site: Site) -> JSONResponse:
        sim.apply_morning_reset(site)
        return JSONResponse(
            {"unavailable_ids": sorted(site.unavailable), "hidden_ids": sorted(site.hidden)}
        )

    async def replace_unavailabilities(site: Site, request: Request) -> JSONResponse:
        body = await body_of(request)
        unavailable = str_list(body.get("unavailable_ids", []))
        hidden = str_list(body.get("hidden_ids", []))
        if unavailable is None or hidden is None:
            raise SandboxError(400, "bad_request", "unavailable_ids and hidden_ids must be arrays")
        if not sim.within_budget("unavailability_replaces_per_minute", MINUTE, store_id=site.id):
            raise SandboxError(
                429, "too_many_requests", "Only one replace-all per minute per site is allowed"
            )
        sim.apply_morning_reset(site)
        known = sim.live_item_ids(site)
        site.unavailable = {i for i in unavailable if i in known}
        site.hidden = {i for i in hidden if i in known} - site.unavailable
        return availability_of(site)

    async def update_unavailabilities(site: Site, request: Request) -> JSONResponse:
        body = await body_of(request)
        updates = body.get("item_unavailabilities")
        if not isinstance(updates, list) or not updates:
            raise SandboxError(400, "bad_request", "item_unavailabilities: cannot be blank")
        if not sim.within_budget(
            "unavailability_updates_per_100ms", timedelta(milliseconds=100), store_id=site.id
        ):
            raise SandboxError(429, "too_many_requests", "Too many availability updates")
        sim.apply_morning_reset(site)
        known = sim.live_item_ids(site)
        parsed: list[tuple[str, str]] = []
        for raw in updates:
            entry = as_dict(raw)
            item_id, status = as_str(entry.get("item_id")), entry.get("status")
            if not item_id or status not in ("available", "unavailable", "hidden"):
                raise SandboxError(
                    400,
                    "bad_request",
                    "each update needs item_id and status available/unavailable/hidden",
                )
            if item_id not in known:
                raise SandboxError(404, "not_found", f"item {item_id} not found")
            parsed.append((item_id, str(status)))
        for item_id, status in parsed:
            site.unavailable.discard(item_id)
            site.hidden.discard(item_id)
            if status == "unavailable":
                site.unavailable.add(item_id)
            elif status == "hidden":
                site.hidden.add(item_id)
        return availability_of(site)

    def menu_site(brand_id: str, menu_id: str, site_id: str) -> Site:
        site = sim.site(brand_id, site_id)
        if site.live_menu_id is not None and site.live_menu_id != menu_id:
            raise SandboxError(404, "not_found", f"menu {menu_id} is not live on site {site_id}")
        return site

    v1_unavail = "/menu/v1/brands/{brand_id}/menus/{menu_id}/item_unavailabilities/{site_id}"
    v2_unavail = "/menu/v2/brands/{brand_id}/sites/{site_id}/menu/item_unavailabilities"

    @router.get(v1_unavail)
    async def get_unavailabilities_v1(
        brand_id: str, menu_id: str, site_id: str, request: Request
    ) -> JSONResponse:
        authorize(request)
        return availability_of(menu_site(brand_id, menu_id, site_id))

    @router.put(v1_unavail)
    async def put_unavailabilities_v1(
        brand_id: str, menu_id: str, site_id: str, request: Request
    ) -> JSONResponse:
        authorize(request)
        return await replace_unavailabilities(menu_site(brand_id, menu_id, site_id), request)

    @router.post(v1_unavail)
    async def post_unavailabilities_v1(
        brand_id: str, menu_id: str, site_id: str, request: Request
    ) -> JSONResponse:
        authorize(request)
        return await update_unavailabilities(menu_site(brand_id, menu_id, site_id), request)

    @router.get(v2_unavail)
    async def get_unavailabilities_v2(
        brand_id: str, site_id: str, request: Request
    ) -> JSONResponse:
        authorize(request)
        return availability_of(sim.site(brand_id, site_id))

    @router.put(v2_unavail)
    async def put_unavailabilities_v2(
        brand_id: str, site_id: str, request: Request
    ) -> JSONResponse:
        authorize(request)
        return await replace_unavailabilities(sim.site(brand_id, site_id), request)

    @router.post(v2_unavail)
    async def post_unavailabilities_v2(
        brand_id: str, site_id: str, request: Request
    ) -> JSONResponse:
        authorize(request)
        return await update_unavailabilities(sim.site(brand_id, site_id), request)

    # ----- webhook registration -----

    @router.get("/menu/v1/integrator/webhooks/menu-events")
    async def get_menu_webhook(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"webhook_url": sim.webhook_url})

    @router.put("/menu/v1/integrator/webhooks/menu-events")
    async def put_menu_webhook(request: Request) -> JSONResponse:
        authorize(request)
        url = as_str((await body_of(request)).get("webhook_url"))
        if not url or not url.startswith(("http://", "https://")):
            raise SandboxError(400, "bad_request", "webhook_url must be an http(s) URL")
        sim.webhook_url = url
        return JSONResponse({"webhook_url": url})

    # ----- site API -----

    site_path = "/site/v1/brands/{brand_id}/sites/{site_id}"

    @router.get(site_path + "/status")
    async def get_status(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"status": sim.site(brand_id, site_id).status})

    @router.put(site_path + "/status")
    async def put_status(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        site = sim.site(brand_id, site_id)
        status = (await body_of(request)).get("status")
        if status not in SITE_STATUSES:
            raise SandboxError(400, "bad_request", "status must be OPEN, CLOSED or READY_TO_OPEN")
        if status == "OPEN":
            reason = _cannot_open(sim, site)
            if reason:
                raise SandboxError(
                    400, "bad_request", f"Unable to open restaurant, reason: {reason}"
                )
        site.status = str(status)
        return JSONResponse({"status": site.status})

    @router.get(site_path + "/opening_hours")
    async def get_opening_hours(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"opening_hours": sim.site(brand_id, site_id).opening_hours})

    @router.post(site_path + "/opening_hours")
    async def set_opening_hours(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        site = sim.site(brand_id, site_id)
        hours = as_dict((await body_of(request)).get("opening_hours"))
        parsed: dict[str, list[dict[str, str]]] = {}
        for day, raw_periods in hours.items():
            if day not in WEEKDAYS:
                raise SandboxError(400, "bad_request", f"unknown day {day}")
            periods: list[tuple[str, str]] = []
            for raw in as_list(raw_periods):
                period = as_dict(raw)
                start = _hhmm(period.get("local_start_time"))
                end = _hhmm(period.get("local_end_time"))
                if start is None or end is None or start >= end:
                    raise SandboxError(400, "bad_request", f"invalid opening period on {day}")
                periods.append((start, end))
            if _overlaps(periods):
                raise SandboxError(400, "bad_request", f"overlapping opening periods on {day}")
            parsed[day] = [{"local_start_time": s, "local_end_time": e} for s, e in sorted(periods)]
        site.opening_hours = parsed
        return JSONResponse({"opening_hours": parsed})

    @router.get(site_path + "/days_off")
    async def list_days_off(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        site = sim.site(brand_id, site_id)
        try:
            size = min(100, max(1, int(request.query_params.get("page_size", "20"))))
            number = max(1, int(request.query_params.get("page_number", "1")))
        except ValueError:
            raise SandboxError(400, "bad_request", "invalid paging parameters") from None
        days = list(site.days_off.values())
        return JSONResponse(
            {
                "days_off": days[(number - 1) * size : number * size],
                "page_size": size,
                "page_number": number,
                "total": len(days),
            }
        )

    @router.post(site_path + "/days_off")
    async def add_day_off(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        site = sim.site(brand_id, site_id)
        body = await body_of(request)
        try:
            start = datetime.fromisoformat(str(body.get("start_date")))
            end = datetime.fromisoformat(str(body.get("end_date")))
        except ValueError:
            raise SandboxError(400, "bad_request", "invalid date format") from None
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise SandboxError(400, "bad_request", "invalid date format")
        day_off = {
            "id": uuid.uuid4().hex,
            "start_date": iso(start.astimezone(UTC)),
            "end_date": iso(end.astimezone(UTC)),
        }
        site.days_off[day_off["id"]] = day_off
        return JSONResponse(day_off, status_code=201)

    @router.delete(site_path + "/days_off/{day_off_id}")
    async def delete_day_off(
        brand_id: str, site_id: str, day_off_id: str, request: Request
    ) -> Response:
        authorize(request)
        site = sim.site(brand_id, site_id)
        if site.days_off.pop(day_off_id, None) is None:
            raise SandboxError(404, "not_found", f"day off {day_off_id} not found")
        return Response(status_code=204)

    @router.get(site_path + "/workload/mode")
    async def get_workload_mode(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"mode": sim.site(brand_id, site_id).workload_mode})

    @router.put(site_path + "/workload/mode")
    async def put_workload_mode(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        site = sim.site(brand_id, site_id)
        mode = (await body_of(request)).get("mode")
        if mode not in ("BUSY", "QUIET"):
            raise SandboxError(400, "bad_request", "mode must be BUSY or QUIET")
        site.workload_mode = str(mode)
        return JSONResponse({"mode": site.workload_mode})

    @router.get(site_path + "/workload/times")
    async def get_workload_times(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse(sim.site(brand_id, site_id).workload_times)

    @router.put(site_path + "/workload/times")
    async def put_workload_times(brand_id: str, site_id: str, request: Request) -> JSONResponse:
        authorize(request)
        site = sim.site(brand_id, site_id)
        body = await body_of(request)
        for key, value in body.items():
            minutes = as_int(value)
            if minutes is None or minutes < 0:
                raise SandboxError(400, "bad_request", f"{key}: must be a number of minutes")
        site.workload_times = body
        return JSONResponse(body)

    # ----- menu v3 (large menus) -----

    @router.put("/menu/v3/brands/{brand_id}/menus/{menu_id}")
    async def start_v3_upload(brand_id: str, menu_id: str, request: Request) -> JSONResponse:
        authorize(request)
        sim.brand(brand_id)
        upload_id = uuid.uuid4().hex
        version = uuid.uuid4().hex[:12]
        sim.v3_uploads[upload_id] = V3Upload(
            brand_id, menu_id, version, sim.now() + V3_UPLOAD_URL_LIFETIME
        )
        base = str(request.base_url).rstrip("/") + request.scope.get("root_path", "")
        return JSONResponse(
            {"id": menu_id, "upload_url": f"{base}/__s3/{upload_id}", "version": version}
        )

    @router.put("/__s3/{upload_id}")
    async def s3_put(upload_id: str, request: Request) -> Response:
        upload = sim.v3_uploads.get(upload_id)
        if upload is None or upload.document is not None or sim.now() >= upload.expires_at:
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                status_code=403,
                media_type="application/xml",
            )
        upload.document = await body_of(request)
        return Response(status_code=200)

    @router.post("/menu/v3/brands/{brand_id}/jobs")
    async def start_v3_job(brand_id: str, request: Request) -> JSONResponse:
        authorize(request)
        body = await body_of(request)
        params = as_dict(body.get("params"))
        menu_id = as_str(params.get("menu_id"))
        if body.get("action") != "publish_menu_to_live" or not menu_id:
            raise SandboxError(
                400, "bad_request", "action publish_menu_to_live with params.menu_id"
            )
        version = as_str(params.get("version"))
        candidates = [
            u
            for u in sim.v3_uploads.values()
            if u.brand_id == brand_id
            and u.menu_id == menu_id
            and u.document is not None
            and (version is None or u.version == version)
        ]
        if not candidates:
            raise SandboxError(404, "not_found", f"no uploaded version of menu {menu_id}")
        document = candidates[-1].document or {}
        for site_id in str_list(document.get("site_ids")) or []:
            sim.site(brand_id, site_id)
        job = V3Job(uuid.uuid4().hex, brand_id, menu_id)
        sim.v3_jobs[job.id] = job
        sim.spawn(sim.process_v3_job(job, document))
        return JSONResponse({"id": job.id, "status": job.status}, status_code=202)

    @router.get("/menu/v3/brands/{brand_id}/jobs/{job_id}")
    async def get_v3_job(brand_id: str, job_id: str, request: Request) -> JSONResponse:
        authorize(request)
        job = sim.v3_jobs.get(job_id)
        if job is None or job.brand_id != brand_id:
            raise SandboxError(404, "not_found", f"job {job_id} not found")
        return JSONResponse({"id": job.id, "status": job.status, "error": job.error})

    # ----- control: platform-specific -----

    @router.post("/__sandbox/stores", include_in_schema=False)
    async def register_store(request: Request) -> JSONResponse:
        try:
            registration = StoreRegistration.model_validate(await json_body(request))
        except ValueError as exc:
            return control_error(422, "invalid_store", str(exc))
        site = sim.register(registration)
        return JSONResponse(sim.store_view(site.id), status_code=201)

    @router.put("/__sandbox/webhook", include_in_schema=False)
    async def configure_webhook(request: Request) -> JSONResponse:
        try:
            config = WebhookConfig.model_validate(await json_body(request))
        except ValueError as exc:
            return control_error(422, "invalid_webhook", str(exc))
        if config.url is not None:
            sim.webhook_url = config.url
        if config.secret is not None:
            sim.webhook_secret = config.secret
        return JSONResponse({"url": sim.webhook_url})

    @router.post("/__sandbox/stores/{site_id}/auto-rejections", include_in_schema=False)
    async def auto_reject(site_id: str) -> JSONResponse:
        """An order auto-rejected; three within 15 minutes close the site (CLOSED_PERIOD)."""
        site = sim.sites.get(site_id)
        if site is None:
            return control_error(404, "store_not_found", f"unknown store {site_id}")
        now = sim.now()
        site.auto_rejections.append(now)
        while site.auto_rejections and site.auto_rejections[0] <= now - AUTO_REJECTION_WINDOW:
            site.auto_rejections.popleft()
        if len(site.auto_rejections) >= 3:
            site.status = "CLOSED"
            site.closed_period_until = now + CLOSED_PERIOD
        return JSONResponse(
            {
                "status": site.status,
                "recentAutoRejections": len(site.auto_rejections),
                "closedPeriodUntil": iso(site.closed_period_until)
                if site.closed_period_until
                else None,
            }
        )

    return router


def _cannot_open(sim: DeliverooSimulator, site: Site) -> str | None:
    now = sim.now()
    if site.closed_period_until is not None and now < site.closed_period_until:
        return "CLOSED_PERIOD"
    for day_off in site.days_off.values():
        start = datetime.fromisoformat(day_off["start_date"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(day_off["end_date"].replace("Z", "+00:00"))
        if start <= now < end:
            return "VACATION_MODE"
    if site.opening_hours:
        local = sim.local_now(site)
        current = local.strftime("%H:%M")
        periods = site.opening_hours.get(WEEKDAYS[local.weekday()], [])
        if not any(p["local_start_time"] <= current < p["local_end_time"] for p in periods):
            return "OPENING_HOURS"
    return None
