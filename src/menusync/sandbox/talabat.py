"""Delivery Hero POS Integration Middleware simulator (Talabat, HungerStation, foodpanda, ...).

Behaviour follows PLATFORMS.md section 2 and the simulator brief in section 8.3:

- ``POST /v2/login`` is a form (``username``, ``password``, ``grant_type=client_credentials``) and
  returns a JWT that lives 1800 seconds. Errors use the shared ``Error {code, message}`` schema,
  except the catalog endpoints, which answer ``{errorCode, message}``.
- ``PUT /v2/chains/{chainCode}/catalog`` only checks the envelope synchronously (JSON, non-empty
  ``vendors``, ``catalog.items``, known chain and vendors) and answers **202** ``{status:
  "submitted", catalogImportId}``. The catalog is validated later; progress is POSTed to
  ``callbackUrl`` with ``Authorization: Bearer <JWT HS512 {service: "middleware"}>`` signed with
  the plugin secret: first ``in_progress``, then ``done`` / ``done_with_errors`` / ``failed`` with
  one ``details`` row per POS vendor and platform. A **204** answer from the plugin means "stop
  sending updates"; 429 and 5xx are retried up to 10 times. Every state is also written to the
  ``menu-import-logs`` the POS can poll.
- Catalog rules: one flat ``catalog.items`` map keyed by id; references resolve with the right
  type; products are not nested (a variant's parent is a main product); every product and variant
  is in a category, never in the same category as its variant; at least one category; menu
  products have prices (decimal strings in major units); topping quantities accept both
  ``{minimum, maximum}`` and ``{min, max}``. Talabat mode: at most two topping levels, and a
  level-1 topping is a mandatory single choice (min = max = 1), even with one option. Pandora mode:
  schedule periods may not cross midnight.
- Item availability (``PUT`` or ``POST``, both seen) answers 204 when every platform applied it,
  200 ``Partial Success`` otherwise; ``willBeAvailable`` / ``atTimeStamp`` are honoured on the clock.
- Store availability: one row per platform with ``changeable`` and the allowed states, reasons and
  minutes; a PUT outside those lists, or on a row that is not changeable, is refused. A GET may
  answer 204 ("not ready, retry") when that fault is armed.
- No rate limit is published: a global ``requestsPerMinute`` budget is configurable, off by default.

Inferred [I]: ``NEXT_BUSINESS_DAY`` means the next UTC midnight; unknown item ids in availability
calls are ignored; a PUT on a non-changeable vendor answers 403 ``FORBIDDEN``; legacy XML import
endpoints answer 410.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import ClassVar

import httpx2
import jwt
from fastapi import APIRouter, FastAPI, Request
from jwt.warnings import InsecureKeyLengthWarning
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
    as_decimal,
    as_dict,
    as_int,
    as_str,
    canonical,
    parse_json,
    str_list,
)

TOKEN_LIFETIME = timedelta(seconds=1800)
LOG_WINDOW = timedelta(days=30)
ENTITY_TYPES = frozenset({"Menu", "Category", "Product", "Topping", "Image", "ScheduleEntry"})
WEEK_DAYS = frozenset(
    {"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"}
)
AVAILABILITY_STATES = ["OPEN", "CLOSED", "CLOSED_TODAY", "CLOSED_UNTIL"]
CLOSING_REASONS = [
    "TOO_BUSY_NO_DRIVERS",
    "TOO_BUSY_KITCHEN",
    "UPDATES_IN_MENU",
    "TECHNICAL_PROBLEM",
    "CLOSED",
    "OTHER",
]
CLOSING_MINUTES = [15, 30, 45, 60, 90, 120]
PLATFORM_KINDS: dict[str, tuple[str, str]] = {
    "TB": ("TB", "TALABAT"),
    "HS": ("HS", "HUNGERSTATION"),
    "FP": ("FP", "FOODPANDA"),
    "YS": ("YS", "YEMEKSEPETI"),
    "PY": ("PY", "PEDIDOSYA"),
    "FO": ("FO", "FOODORA"),
}
CATALOG_CODES = {400: "BAD_REQUEST", 401: "AUTHENTICATION_ERROR", 404: "NOT_FOUND"}


class TalabatLimits(Limits):
    """No budget is published for the middleware; ``requestsPerMinute`` is off by default."""


@dataclass
class PlatformVendor:
    platform_vendor_id: str
    global_entity_id: str
    state: str = "OPEN"
    closed_reason: str | None = None
    closed_until: datetime | None = None
    changeable: bool = True
    item_availability: str = "Success"

    @property
    def platform_key(self) -> str:
        return PLATFORM_KINDS.get(self.global_entity_id.split("_")[0], ("DH", "DELIVERY_HERO"))[0]

    @property
    def platform_type(self) -> str:
        prefix = self.global_entity_id.split("_")[0]
        return PLATFORM_KINDS.get(prefix, ("DH", "DELIVERY_HERO"))[1]


@dataclass
class Vendor:
    id: str
    chain_code: str
    platforms: list[PlatformVendor]
    catalog: dict[str, object] | None = None
    unavailable: dict[tuple[str, str], datetime | None] = field(default_factory=dict)
    logs: list[dict[str, object]] = field(default_factory=list)
    last_import: dict[str, object] | None = None
    pending_availability_gets: int = 0
    version: int = 0


@dataclass
class Chain:
    code: str
    username: str | None = None


class StoreRegistration(CamelModel):
    store_id: str
    chain_code: str = "chain-1"
    global_entities: list[str] | None = None
    username: str | None = None


class PlatformSettings(CamelModel):
    item_availability: str = Field(default="Success", pattern="^(Success|Failed|Not Supported)$")


class Closure(CamelModel):
    reason: str = "TOO_MANY_REJECTED_ORDERS"
    global_entity_id: str | None = None


class Pending(CamelModel):
    count: int = Field(default=1, ge=0)


class MenuImportRequest(CamelModel):
    plugin_url: str


def middleware_jwt(secret: str, now: datetime) -> str:
    """The token the middleware puts on every call to a plugin: HS512, ``service: middleware``."""
    claims = {
        "service": "middleware",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    with warnings.catch_warnings():
        # The secret is whatever Delivery Hero issued; PyJWT's key-length advice is not ours.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS512")


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(0), UTC)


class TalabatSimulator(Simulator):
    platform: ClassVar[str] = "talabat"
    limits_type: ClassVar[type[Limits]] = TalabatLimits

    def __init__(
        self, settings: SandboxSettings, http_client: httpx2.AsyncClient | None = None
    ) -> None:
        super().__init__(settings, http_client)
        self.reset_platform()

    def documented_limits(self) -> Limits:
        return TalabatLimits(requests_per_minute=self.settings.talabat_requests_per_minute)

    def reset_platform(self) -> None:
        self.chains: dict[str, Chain] = {}
        self.vendors: dict[str, Vendor] = {}

    # ----- envelope -------------------------------------------------------------------------

    def error_code_for(self, status: int) -> str:
        return {
            400: "INVALID_REQUEST",
            401: "UNAUTHORIZED",
            403: "FORBIDDEN",
            404: "NOT_FOUND",
            409: "CONFLICT",
            410: "DEPRECATED",
            429: "TOO_MANY_REQUESTS",
            500: "INTERNAL_ERROR",
            502: "BAD_GATEWAY",
            503: "SERVICE_UNAVAILABLE",
            504: "GATEWAY_TIMEOUT",
        }.get(status, "ERROR")

    def render_error(self, error: SandboxError, path: str) -> JSONResponse:
        if "/catalog" in path or "/menu-import-logs" in path:
            code = CATALOG_CODES.get(error.status, error.code)
            if error.status >= 500:
                code = "INTERNAL_ERROR"
            return JSONResponse({"errorCode": code, "message": error.message}, error.status)
        return JSONResponse({"code": error.code, "message": error.message}, error.status)

    # ----- stores ---------------------------------------------------------------------------

    def store_ids(self) -> list[str]:
        return sorted(self.vendors)

    def new_vendor(self, vendor_id: str, chain_code: str, entities: list[str]) -> Vendor:
        platforms = [PlatformVendor(f"{gid.lower()}-{vendor_id}", gid) for gid in entities]
        vendor = Vendor(vendor_id, chain_code, platforms)
        self.vendors[vendor_id] = vendor
        return vendor

    def chain(self, chain_code: str, request: Request) -> Chain:
        chain = self.chains.get(chain_code)
        if chain is None:
            if self.settings.strict:
                raise SandboxError(404, "NOT_FOUND", f"Chain {chain_code} not found")
            chain = self.chains[chain_code] = Chain(chain_code)
        token = bearer_token(request.headers.get("authorization")) or ""
        if chain.username is not None and self.tokens.subject(token) != chain.username:
            raise SandboxError(403, "FORBIDDEN", "User not matching")
        return chain

    def vendor(self, chain: Chain, vendor_id: str) -> Vendor:
        vendor = self.vendors.get(vendor_id)
        if vendor is None:
            if self.settings.strict:
                raise SandboxError(404, "NOT_FOUND", f"Vendor {vendor_id} not found")
            vendor = self.new_vendor(vendor_id, chain.code, self.settings.talabat_global_entities)
        elif vendor.chain_code != chain.code:
            raise SandboxError(404, "NOT_FOUND", f"Vendor {vendor_id} not found in {chain.code}")
        return vendor

    def expire(self, vendor: Vendor) -> None:
        """Apply the clock: reopen after CLOSED_UNTIL, make items available again."""
        now = self.now()
        for row in vendor.platforms:
            if row.closed_until is not None and now >= row.closed_until and row.changeable:
                row.state, row.closed_reason, row.closed_until = "OPEN", None, None
        for key, until in list(vendor.unavailable.items()):
            if until is not None and now >= until:
                del vendor.unavailable[key]

    def availability_row(self, row: PlatformVendor) -> dict[str, object]:
        return {
            "availabilityState": row.state,
            "availabilityStates": AVAILABILITY_STATES if row.changeable else [],
            "changeable": row.changeable,
            "closedReason": row.closed_reason,
            "closingMinutes": CLOSING_MINUTES if row.changeable else [],
            "closingReasons": CLOSING_REASONS if row.changeable else [],
            "closedUntil": iso(row.closed_until) if row.closed_until else None,
            "nextOpeningAt": iso(row.closed_until) if row.closed_until else None,
            "checkinAt": None,
            "platformId": row.global_entity_id,
            "platformKey": row.platform_key,
            "platformRestaurantId": row.platform_vendor_id,
            "platformType": row.platform_type,
        }

    def store_view(self, store_id: str) -> dict[str, object] | None:
        vendor = self.vendors.get(store_id)
        if vendor is None:
            return None
        self.expire(vendor)
        return {
            "id": vendor.id,
            "chainCode": vendor.chain_code,
            "menu": vendor.catalog,
            "availability": {
                "unavailable": [
                    {"type": kind, "id": item_id, "until": iso(until) if until else None}
                    for (kind, item_id), until in sorted(vendor.unavailable.items())
                ]
            },
            "status": [self.availability_row(row) for row in vendor.platforms],
            "lastImport": vendor.last_import,
            "platformVendors": [
                {"platformVendorId": r.platform_vendor_id, "globalEntityId": r.global_entity_id}
                for r in vendor.platforms
            ],
        }

    # ----- catalog processing ---------------------------------------------------------------

    def log(self, vendor: Vendor, import_id: str, status: str, message: str) -> None:
        vendor.logs.append(
            {
                "createdAt": iso(self.now()),
                "menuImportId": import_id,
                "message": message,
                "status": status,
                "url": f"/v2/chains/{vendor.chain_code}/vendors/{vendor.id}/menu-import-logs",
                "version": vendor.version,
            }
        )

    def callback(self, url: str, import_id: str, body: Mapping[str, object]) -> Delivery:
        secret = self.settings.talabat_plugin_secret

        def headers(_raw: bytes, bad: bool) -> dict[str, str]:
            key = secret + "-tampered" if bad else secret
            return {"Authorization": f"Bearer {middleware_jwt(key, self.now())}"}

        return Delivery(
            url=url,
            event_id=import_id,
            body=canonical(body).encode(),
            sign=headers,
            retry_delays=list(self.settings.talabat_callback_retry_delays),
            is_retryable=lambda status: status == 429 or status >= 500,
            kind=f"catalog-import:{body.get('status')}",
        )

    async def process_import(
        self,
        import_id: str,
        vendors: list[Vendor],
        rows: dict[str, list[PlatformVendor]],
        catalog: dict[str, object],
        callback_url: str | None,
    ) -> None:
        for vendor in vendors:
            vendor.version += 1
            self.log(vendor, import_id, "in_progress", "Import in progress")
        stopped = False

        def details(status_of: dict[tuple[str, str], str]) -> list[dict[str, object]]:
            return [
                {
                    "status": status_of[(vendor.id, row.platform_vendor_id)],
                    "posVendorId": vendor.id,
                    "platformVendorId": row.platform_vendor_id,
                    "globalEntityId": row.global_entity_id,
                }
                for vendor in vendors
                for row in rows[vendor.id]
            ]

        keys = [(v.id, r.platform_vendor_id) for v in vendors for r in rows[v.id]]
        work: list[asyncio.Future[object]] = [
            asyncio.ensure_future(asyncio.sleep(self.settings.processing_delay_seconds))
        ]
        if callback_url:
            in_progress = {
                "catalogImportId": import_id,
                "status": "in_progress",
                "message": "Import in progress",
                "details": details(dict.fromkeys(keys, "in_progress")),
            }
            work.append(
                asyncio.ensure_future(
                    self.deliver_now(self.callback(callback_url, import_id, in_progress))
                )
            )
        outcomes = await asyncio.gather(*work)
        if callback_url and outcomes[1] == 204:
            stopped = True

        errors = validate_catalog(catalog, self.settings.talabat_rules, strict=self.settings.strict)
        if errors:
            row_status = dict.fromkeys(keys, "failed")
            status, message = "failed", "Catalog validation failed: " + "; ".join(errors)
        else:
            row_status = {
                key: "failed" if self.roll(self.faults.async_fail_rate) else "done" for key in keys
            }
            failed = sum(1 for s in row_status.values() if s == "failed")
            if failed == 0:
                status, message = "done", "Import successful"
            elif failed == len(keys):
                status, message = "failed", "Import failed on every platform"
            else:
                status, message = "done_with_errors", "Import failed on some platforms"
        for vendor in vendors:
            vendor_statuses = [
                row_status[(vendor.id, r.platform_vendor_id)] for r in rows[vendor.id]
            ]
            if "done" in vendor_statuses:
                vendor.catalog = catalog
            vendor_status = (
                "done"
                if all(s == "done" for s in vendor_statuses)
                else "failed"
                if all(s == "failed" for s in vendor_statuses)
                else "done_with_errors"
            )
            self.log(
                vendor,
                import_id,
                vendor_status,
                message if vendor_status != "done" else "Import successful",
            )
            vendor.last_import = {
                "catalogImportId": import_id,
                "status": vendor_status,
                "message": message,
                "errors": errors,
                "finishedAt": iso(self.now()),
            }
        if callback_url and not stopped:
            final = {
                "catalogImportId": import_id,
                "status": status,
                "message": message,
                "details": details(row_status),
            }
            await self.deliver_now(self.callback(callback_url, import_id, final))


# ----- validation ---------------------------------------------------------------------------


def _refs(entity: dict[str, object], key: str) -> list[tuple[str, str, dict[str, object]]]:
    """``{id, type}`` references held in ``entity[key]`` (a map keyed by id)."""
    found: list[tuple[str, str, dict[str, object]]] = []
    for ref_key, raw in as_dict(entity.get(key)).items():
        ref = as_dict(raw)
        found.append((as_str(ref.get("id")) or ref_key, as_str(ref.get("type")) or "", ref))
    return found


def _check_translation(errors: list[str], where: str, value: object, *, required: bool) -> None:
    if value is None and not required:
        return
    texts = as_dict(value)
    if not isinstance(value, dict) or not as_str(texts.get("default", "")):
        errors.append(f"{where}: a translation map with a non-empty 'default' is required")
        return
    for lang, text in texts.items():
        if not isinstance(text, str):
            errors.append(f"{where}.{lang}: must be a string")


def _check_price(errors: list[str], where: str, value: object) -> None:
    amount = as_decimal(value)
    if amount is None or amount < 0 or amount != amount.quantize(Decimal("0.001")):
        errors.append(f'{where}: price must be a decimal amount in major units, e.g. "1.50"')


def _quantity(topping: dict[str, object]) -> tuple[int | None, int | None]:
    quantity = as_dict(topping.get("quantity"))
    minimum = quantity.get("minimum", quantity.get("min"))
    maximum = quantity.get("maximum", quantity.get("max"))
    return as_int(minimum), as_int(maximum)


def validate_catalog(catalog: dict[str, object], rules: str, *, strict: bool) -> list[str]:
    """The rules of PLATFORMS.md 2.4 that the middleware applies after the 202."""
    errors: list[str] = []
    raw_items = as_dict(catalog.get("items"))
    items: dict[str, dict[str, object]] = {}
    for key, raw in raw_items.items():
        entity = as_dict(raw)
        if as_str(entity.get("id")) != key:
            errors.append(f"Item '{key}': id must repeat its key")
        if entity.get("type") not in ENTITY_TYPES:
            errors.append(f"Item '{key}': unknown type {entity.get('type')!r}")
            continue
        items[key] = entity

    def of_type(kind: str) -> dict[str, dict[str, object]]:
        return {k: v for k, v in items.items() if v.get("type") == kind}

    products, categories = of_type("Product"), of_type("Category")
    toppings, menus = of_type("Topping"), of_type("Menu")

    for key, entity in items.items():
        for field_name in ("products", "toppings", "variants", "images", "schedule"):
            for ref_id, ref_type, _ in _refs(entity, field_name):
                target = items.get(ref_id)
                if target is None:
                    errors.append(f"{entity['type']} '{key}': reference to unknown item '{ref_id}'")
                elif ref_type and target.get("type") != ref_type:
                    errors.append(
                        f"{entity['type']} '{key}': '{ref_id}' is a {target.get('type')}, "
                        f"not a {ref_type}"
                    )

    if not categories:
        errors.append("Catalog must contain at least one category")
    if strict and not menus:
        errors.append("Catalog must contain at least one menu")

    category_of: dict[str, set[str]] = {}
    for key, category in categories.items():
        _check_translation(errors, f"Category '{key}'.title", category.get("title"), required=True)
        for ref_id, _, _ in _refs(category, "products"):
            category_of.setdefault(ref_id, set()).add(key)

    for key, product in products.items():
        _check_translation(errors, f"Product '{key}'.title", product.get("title"), required=True)
        _check_translation(
            errors, f"Product '{key}'.description", product.get("description"), required=False
        )
        if "price" in product:
            _check_price(errors, f"Product '{key}'", product.get("price"))
        parent = as_dict(product.get("parent"))
        if parent:
            parent_id = as_str(parent.get("id")) or ""
            parent_entity = products.get(parent_id)
            if parent_entity is None:
                errors.append(f"Product '{key}': parent '{parent_id}' is not a product")
            elif parent_entity.get("parent"):
                errors.append(f"Product '{key}': products cannot be nested")
            elif key in category_of and category_of[key] & category_of.get(parent_id, set()):
                errors.append(
                    f"Product '{parent_id}' and its variant '{key}' cannot be in the same category"
                )
        for variant_id, _, _ in _refs(product, "variants"):
            variant = products.get(variant_id)
            if variant is not None and as_str(as_dict(variant.get("parent")).get("id")) != key:
                errors.append(f"Variant '{variant_id}' of '{key}' must have parent '{key}'")
        if key not in category_of:
            errors.append(
                f"Product '{key}': Product or one or more of its variants does not belong to "
                "a category"
            )

    for key, topping in toppings.items():
        _check_translation(errors, f"Topping '{key}'.title", topping.get("title"), required=True)
        minimum, maximum = _quantity(topping)
        if minimum is None or maximum is None:
            errors.append(f"Topping '{key}': quantity needs minimum and maximum")
        elif minimum < 0 or maximum < 1 or minimum > maximum:
            errors.append(
                f"Topping '{key}': quantity must satisfy 0 <= minimum <= maximum, 1 <= maximum"
            )
        topping_type = topping.get("toppingType")
        if topping_type is not None and topping_type not in (
            "PRODUCT_OPTION",
            "PANDORA_PRODUCT_GROUP",
        ):
            errors.append(f"Topping '{key}': unknown toppingType {topping_type!r}")
        for ref_id, _, ref in _refs(topping, "products"):
            if "price" in ref:
                _check_price(errors, f"Topping '{key}' option '{ref_id}'", ref.get("price"))
        if not _refs(topping, "products"):
            errors.append(f"Topping '{key}': must offer at least one product")

    for key, menu in menus.items():
        _check_translation(errors, f"Menu '{key}'.title", menu.get("title"), required=True)
        if strict and menu.get("menuType") != "DELIVERY":
            errors.append(f"Menu '{key}': menuType must be DELIVERY")
        for ref_id, _, _ in _refs(menu, "products"):
            if ref_id not in products:
                continue
            product = products[ref_id]
            variant_prices = [
                products.get(v_id, {}).get("price") for v_id, _, _ in _refs(product, "variants")
            ]
            if product.get("price") is None and not any(p is not None for p in variant_prices):
                errors.append(f"Product '{ref_id}' on menu '{key}' has no price")

    for key, entry in of_type("ScheduleEntry").items():
        start, end = _hms(entry.get("startTime")), _hms(entry.get("endTime"))
        days = str_list(entry.get("weekDays"))
        if start is None or end is None:
            errors.append(f"ScheduleEntry '{key}': startTime and endTime must be HH:MM:SS")
        elif rules == "pandora" and end <= start:
            errors.append(f"ScheduleEntry '{key}': a period may not cross midnight")
        if not days or any(d not in WEEK_DAYS for d in days):
            errors.append(f"ScheduleEntry '{key}': weekDays must name days, e.g. MONDAY")

    for key, image in of_type("Image").items():
        url = as_str(image.get("url")) or ""
        if not url.startswith(("http://", "https://")):
            errors.append(f"Image '{key}': url must be an http(s) URL")

    if rules == "talabat":
        errors.extend(_talabat_topping_levels(products, toppings))
    return errors


def _talabat_topping_levels(
    products: dict[str, dict[str, object]], toppings: dict[str, dict[str, object]]
) -> list[str]:
    """Talabat: at most two topping levels; level 1 is a mandatory single choice (1/1)."""
    errors: list[str] = []
    options = {ref_id for t in toppings.values() for ref_id, _, _ in _refs(t, "products")}
    roots = [key for key in products if key not in options]
    level_of: dict[str, int] = {}
    frontier = [(t_id, 1) for root in roots for t_id, _, _ in _refs(products[root], "toppings")]
    while frontier:
        topping_id, level = frontier.pop()
        if topping_id not in toppings or level_of.get(topping_id, 0) >= level:
            continue
        level_of[topping_id] = level
        if level > 2:
            continue
        for option_id, _, _ in _refs(toppings[topping_id], "products"):
            for child_id, _, _ in _refs(products.get(option_id, {}), "toppings"):
                frontier.append((child_id, level + 1))
    for topping_id, level in sorted(level_of.items()):
        if level > 2:
            errors.append(f"Topping '{topping_id}': toppings can be nested at most 2 levels")
        elif level == 1 and _quantity(toppings[topping_id]) != (1, 1):
            errors.append(
                f"Topping '{topping_id}': a first-level topping must be a single mandatory "
                "choice (minimum 1, maximum 1)"
            )
    return errors


def _hms(value: object) -> str | None:
    text = as_str(value)
    if text is None or len(text) != 8:
        return None
    try:
        time.fromisoformat(text)
    except ValueError:
        return None
    return text


# ----- the app ------------------------------------------------------------------------------


def create_app(
    settings: SandboxSettings | None = None, *, http_client: httpx2.AsyncClient | None = None
) -> FastAPI:
    """The Delivery Hero middleware simulator as an ASGI app."""
    sim = TalabatSimulator(settings or SandboxSettings(), http_client)
    return build_platform_app(sim, _router(sim), "Delivery Hero middleware sandbox")


def _router(sim: TalabatSimulator) -> APIRouter:
    router = APIRouter()

    def authorize(request: Request, *, catalog: bool = False) -> None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not sim.tokens.is_valid(token, sim.now()):
            code = "AUTHENTICATION_ERROR" if catalog else "UNAUTHORIZED"
            raise SandboxError(401, code, "Invalid or expired token")

    async def body_of(request: Request) -> dict[str, object]:
        body = parse_json(await request.body())
        if body is INVALID or not isinstance(body, dict):
            raise SandboxError(400, "INVALID_REQUEST", "Request body must be a JSON object")
        return as_dict(body)

    @router.post("/v2/login")
    async def login(request: Request) -> JSONResponse:
        form = await request.form()
        username, password = as_str(form.get("username")), as_str(form.get("password"))
        if form.get("grant_type") != "client_credentials":
            raise SandboxError(400, "INVALID_REQUEST", "grant_type must be client_credentials")
        if not credentials_ok(sim.settings, username, password):
            raise SandboxError(401, "UNAUTHORIZED", "Invalid username or password")
        token = sim.tokens.issue(username or "", TOKEN_LIFETIME, sim.now())
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 1800})

    async def submit(request: Request, vendors: list[Vendor], entity: str | None) -> JSONResponse:
        body = await body_of(request)
        catalog = body.get("catalog")
        if not isinstance(catalog, dict) or not isinstance(as_dict(catalog).get("items"), dict):
            raise SandboxError(400, "BAD_REQUEST", "catalog.items is required")
        callback_url = body.get("callbackUrl")
        if callback_url is not None and not (
            isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
        ):
            raise SandboxError(400, "BAD_REQUEST", "callbackUrl must be an http(s) URL")
        rows = {
            v.id: [r for r in v.platforms if entity is None or r.global_entity_id == entity]
            for v in vendors
        }
        import_id = str(uuid.uuid4())
        sim.spawn(
            sim.process_import(import_id, vendors, rows, as_dict(catalog), as_str(callback_url))
        )
        return JSONResponse({"status": "submitted", "catalogImportId": import_id}, 202)

    @router.put("/v2/chains/{chain_code}/catalog")
    async def put_catalog(chain_code: str, request: Request) -> JSONResponse:
        authorize(request, catalog=True)
        chain = sim.chain(chain_code, request)
        body = await body_of(request)
        vendor_ids = str_list(body.get("vendors"))
        if not vendor_ids:
            raise SandboxError(400, "BAD_REQUEST", "vendors must be a non-empty list")
        vendors = [sim.vendor(chain, v) for v in dict.fromkeys(vendor_ids)]
        return await submit(request, vendors, None)

    @router.put("/v2/chains/{chain_code}/global-entity/{global_entity_id}/catalog")
    async def put_entity_catalog(
        chain_code: str, global_entity_id: str, request: Request
    ) -> JSONResponse:
        authorize(request, catalog=True)
        chain = sim.chain(chain_code, request)
        body = await body_of(request)
        platform_ids = str_list(body.get("platformVendors"))
        if not platform_ids:
            raise SandboxError(400, "BAD_REQUEST", "platformVendors must be a non-empty list")
        vendors: list[Vendor] = []
        for platform_id in dict.fromkeys(platform_ids):
            owner = next(
                (
                    v
                    for v in sim.vendors.values()
                    if any(
                        r.platform_vendor_id == platform_id
                        and r.global_entity_id == global_entity_id
                        for r in v.platforms
                    )
                ),
                None,
            )
            if owner is None:
                if sim.settings.strict:
                    raise SandboxError(404, "NOT_FOUND", f"Platform vendor {platform_id} not found")
                owner = sim.new_vendor(platform_id, chain.code, [])
                owner.platforms.append(PlatformVendor(platform_id, global_entity_id))
            vendors.append(owner)
        return await submit(request, vendors, global_entity_id)

    @router.get("/v2/chains/{chain_code}/vendors/{vendor_id}/menu-import-logs")
    async def import_logs(chain_code: str, vendor_id: str, request: Request) -> JSONResponse:
        authorize(request, catalog=True)
        vendor = sim.vendor(sim.chain(chain_code, request), vendor_id)
        params = request.query_params
        try:
            limit = int(params.get("limit", "1"))
            to = datetime.fromisoformat(params["to"]) if "to" in params else sim.now()
            start = datetime.fromisoformat(params["from"]) if "from" in params else to - LOG_WINDOW
        except ValueError:
            raise SandboxError(400, "BAD_REQUEST", "invalid limit, from or to") from None
        if not 1 <= limit <= 100:
            raise SandboxError(400, "BAD_REQUEST", "limit must be between 1 and 100")
        if start.tzinfo is None or to.tzinfo is None:
            raise SandboxError(400, "BAD_REQUEST", "from and to need a timezone")
        if to - start > LOG_WINDOW or start > to:
            raise SandboxError(400, "BAD_REQUEST", "the window between from and to is 30 days")
        sort = params.get("sort", "desc")
        if sort not in ("asc", "desc"):
            raise SandboxError(400, "BAD_REQUEST", "sort must be asc or desc")
        entries = [
            entry
            for entry in vendor.logs
            if start <= datetime.fromisoformat(str(entry["createdAt"]).replace("Z", "+00:00")) <= to
        ]
        if sort == "desc":
            entries = entries[::-1]
        return JSONResponse({"menuImportLogs": {vendor.id: entries[:limit]}})

    async def item_availability(chain_code: str, vendor_id: str, request: Request) -> Response:
        authorize(request, catalog=True)
        vendor = sim.vendor(sim.chain(chain_code, request), vendor_id)
        body = await body_of(request)
        items = str_list(body.get("items"))
        kind, is_available = body.get("type"), body.get("isAvailable")
        will_be, at = body.get("willBeAvailable"), body.get("atTimeStamp")
        if not items:
            raise SandboxError(400, "BAD_REQUEST", "items must be a non-empty list of ids")
        if kind not in ("ITEM", "TOPPING"):
            raise SandboxError(400, "BAD_REQUEST", "type must be ITEM or TOPPING")
        if not isinstance(is_available, bool):
            raise SandboxError(400, "BAD_REQUEST", "isAvailable must be a boolean")
        until: datetime | None = None
        if will_be is not None:
            if is_available:
                raise SandboxError(400, "BAD_REQUEST", "willBeAvailable needs isAvailable false")
            if will_be == "NEXT_BUSINESS_DAY":
                if at is not None:
                    raise SandboxError(400, "BAD_REQUEST", "atTimeStamp needs AT_TIMESTAMP")
                until = _next_midnight(sim.now())
            elif will_be == "AT_TIMESTAMP":
                try:
                    until = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
                except ValueError:
                    raise SandboxError(400, "BAD_REQUEST", "atTimeStamp must be ISO 8601") from None
                if until.tzinfo is None or until <= sim.now():
                    raise SandboxError(400, "BAD_REQUEST", "atTimeStamp must be in the future")
            else:
                raise SandboxError(
                    400, "BAD_REQUEST", "willBeAvailable must be NEXT_BUSINESS_DAY or AT_TIMESTAMP"
                )
        elif at is not None:
            raise SandboxError(400, "BAD_REQUEST", "atTimeStamp needs willBeAvailable AT_TIMESTAMP")
        entity = as_str(body.get("globalEntityId"))
        rows = [r for r in vendor.platforms if entity is None or r.global_entity_id == entity]
        if not rows:
            raise SandboxError(400, "BAD_REQUEST", f"globalEntityId {entity} is not served")
        known = set(as_dict(as_dict(vendor.catalog).get("items")))
        for item_id in items:
            if item_id not in known:
                continue
            if is_available:
                vendor.unavailable.pop((str(kind), item_id), None)
            else:
                vendor.unavailable[(str(kind), item_id)] = until
        outcome = [(r, r.item_availability) for r in rows]
        if all(status == "Success" for _, status in outcome):
            return Response(status_code=204)
        succeeded = sum(1 for _, status in outcome if status == "Success")
        return JSONResponse(
            {
                "status": "Partial Success" if succeeded else "Failed",
                "details": [
                    {
                        "platformVendorId": r.platform_vendor_id,
                        "globalEntityId": r.global_entity_id,
                        "status": status,
                    }
                    for r, status in outcome
                ],
            }
        )

    availability_path = "/v2/chains/{chain_code}/vendors/{vendor_id}/catalog/items/availability"
    router.add_api_route(availability_path, item_availability, methods=["PUT", "POST"])

    @router.get("/v2/chains/{chain_code}/vendors/{vendor_id}/catalog/items/unavailable")
    async def unavailable_items(chain_code: str, vendor_id: str, request: Request) -> JSONResponse:
        authorize(request, catalog=True)
        vendor = sim.vendor(sim.chain(chain_code, request), vendor_id)
        sim.expire(vendor)
        catalog_items = as_dict(as_dict(vendor.catalog).get("items"))

        def named(kind: str) -> list[dict[str, object]]:
            return [
                {
                    "id": item_id,
                    "name": as_dict(as_dict(catalog_items.get(item_id)).get("title")).get(
                        "default"
                    ),
                }
                for (k, item_id) in sorted(vendor.unavailable)
                if k == kind
            ]

        return JSONResponse(
            [
                {
                    "platformVendorId": r.platform_vendor_id,
                    "globalEntityId": r.global_entity_id,
                    "status": "Success",
                    "unavailableItems": [{"items": named("ITEM"), "toppings": named("TOPPING")}],
                }
                for r in vendor.platforms
            ]
        )

    @router.get("/v2/chains/{chain_code}/vendors/{vendor_id}/platform-vendors")
    async def platform_vendors(chain_code: str, vendor_id: str, request: Request) -> JSONResponse:
        authorize(request)
        vendor = sim.vendor(sim.chain(chain_code, request), vendor_id)
        return JSONResponse(
            [
                {
                    "platformVendorId": r.platform_vendor_id,
                    "globalEntityId": r.global_entity_id,
                    "posVendorId": vendor.id,
                }
                for r in vendor.platforms
            ]
        )

    remote = "/v2/chains/{chain_code}/remoteVendors/{vendor_id}"

    @router.get(remote + "/availability")
    async def get_store_availability(chain_code: str, vendor_id: str, request: Request) -> Response:
        authorize(request)
        vendor = sim.vendor(sim.chain(chain_code, request), vendor_id)
        if vendor.pending_availability_gets > 0:
            vendor.pending_availability_gets -= 1
            return Response(status_code=204)
        sim.expire(vendor)
        return JSONResponse([sim.availability_row(row) for row in vendor.platforms])

    @router.put(remote + "/availability")
    async def put_store_availability(
        chain_code: str, vendor_id: str, request: Request
    ) -> JSONResponse:
        authorize(request)
        vendor = sim.vendor(sim.chain(chain_code, request), vendor_id)
        sim.expire(vendor)
        body = await body_of(request)
        key, restaurant = body.get("platformKey"), body.get("platformRestaurantId")
        row = next(
            (
                r
                for r in vendor.platforms
                if r.platform_key == key and r.platform_vendor_id == restaurant
            ),
            None,
        )
        if row is None:
            raise SandboxError(404, "NOT_FOUND", "No platform vendor with that key and id")
        if not row.changeable:
            raise SandboxError(
                403, "FORBIDDEN", "The availability of this vendor is not changeable"
            )
        state = body.get("availabilityState")
        if state not in AVAILABILITY_STATES:
            raise SandboxError(
                400, "INVALID_REQUEST", f"availabilityState {state!r} is not allowed"
            )
        if state == "OPEN":
            row.state, row.closed_reason, row.closed_until = "OPEN", None, None
            return JSONResponse(sim.availability_row(row))
        reason = body.get("closedReason")
        if reason not in CLOSING_REASONS:
            raise SandboxError(400, "INVALID_REQUEST", f"closedReason {reason!r} is not allowed")
        until: datetime | None = None
        if state == "CLOSED_UNTIL":
            minutes = as_int(body.get("closingMinutes"))
            if minutes not in CLOSING_MINUTES:
                raise SandboxError(
                    400, "INVALID_REQUEST", f"closingMinutes must be one of {CLOSING_MINUTES}"
                )
            until = sim.now() + timedelta(minutes=minutes or 0)
        elif state == "CLOSED_TODAY":
            until = _next_midnight(sim.now())
        row.state, row.closed_reason, row.closed_until = str(state), str(reason), until
        return JSONResponse(sim.availability_row(row))

    @router.put(remote + "/posReachabilityStatus")
    async def pos_reachability(chain_code: str, vendor_id: str, request: Request) -> Response:
        authorize(request)
        sim.vendor(sim.chain(chain_code, request), vendor_id)
        return Response(status_code=202)

    async def legacy_import(request: Request) -> JSONResponse:
        authorize(request)
        raise SandboxError(
            410, "DEPRECATED", "The XML menu import is deprecated; new integrations are not allowed"
        )

    router.add_api_route(remote + "/menuImport", legacy_import, methods=["POST"])
    router.add_api_route("/v2/menu/{vendor_code}/{menu_import_id}", legacy_import, methods=["POST"])

    # ----- control: platform-specific -----

    @router.post("/__sandbox/stores", include_in_schema=False)
    async def register_store(request: Request) -> JSONResponse:
        try:
            registration = StoreRegistration.model_validate(await json_body(request))
        except ValueError as exc:
            return control_error(422, "invalid_store", str(exc))
        chain = sim.chains.setdefault(registration.chain_code, Chain(registration.chain_code))
        if registration.username is not None:
            chain.username = registration.username
        entities = registration.global_entities or sim.settings.talabat_global_entities
        vendor = sim.new_vendor(registration.store_id, chain.code, entities)
        return JSONResponse(sim.store_view(vendor.id), status_code=201)

    def known_vendor(vendor_id: str) -> Vendor:
        vendor = sim.vendors.get(vendor_id)
        if vendor is None:
            raise SandboxError(404, "store_not_found", f"unknown store {vendor_id}")
        return vendor

    @router.post("/__sandbox/stores/{vendor_id}/platform-closure", include_in_schema=False)
    async def close_by_platform(vendor_id: str, request: Request) -> JSONResponse:
        """The platform closes the vendor itself: not changeable until reopened here."""
        vendor = known_vendor(vendor_id)
        closure = Closure.model_validate(await json_body(request))
        for row in vendor.platforms:
            if closure.global_entity_id in (None, row.global_entity_id):
                row.state, row.closed_reason, row.changeable = "CLOSED", closure.reason, False
                row.closed_until = None
        return JSONResponse(sim.store_view(vendor_id))

    @router.delete("/__sandbox/stores/{vendor_id}/platform-closure", include_in_schema=False)
    async def reopen_by_platform(vendor_id: str) -> JSONResponse:
        vendor = known_vendor(vendor_id)
        for row in vendor.platforms:
            if not row.changeable:
                row.state, row.closed_reason, row.changeable = "OPEN", None, True
        return JSONResponse(sim.store_view(vendor_id))

    @router.put("/__sandbox/stores/{vendor_id}/availability-pending", include_in_schema=False)
    async def arm_pending(vendor_id: str, request: Request) -> JSONResponse:
        """The next ``count`` availability GETs answer 204 (acknowledged, not ready)."""
        vendor = known_vendor(vendor_id)
        vendor.pending_availability_gets = Pending.model_validate(await json_body(request)).count
        return JSONResponse({"pending": vendor.pending_availability_gets})

    @router.put("/__sandbox/stores/{vendor_id}/platforms/{entity_id}", include_in_schema=False)
    async def set_platform(vendor_id: str, entity_id: str, request: Request) -> JSONResponse:
        """How one platform answers item-availability calls (Success/Failed/Not Supported)."""
        vendor = known_vendor(vendor_id)
        config = PlatformSettings.model_validate(await json_body(request))
        rows = [r for r in vendor.platforms if r.global_entity_id == entity_id]
        if not rows:
            raise SandboxError(404, "store_not_found", f"{vendor_id} is not on {entity_id}")
        for row in rows:
            row.item_availability = config.item_availability
        return JSONResponse(sim.store_view(vendor_id))

    @router.post("/__sandbox/stores/{vendor_id}/menu-import-request", include_in_schema=False)
    async def request_menu_import(vendor_id: str, request: Request) -> JSONResponse:
        """The platform asks the plugin for a menu: ``GET {plugin}/menuimport/{remoteId}``."""
        vendor = known_vendor(vendor_id)
        trigger = MenuImportRequest.model_validate(await json_body(request))
        menu_import_id = str(uuid.uuid4())
        url = f"{trigger.plugin_url.rstrip('/')}/menuimport/{vendor.id}"
        token = middleware_jwt(sim.settings.talabat_plugin_secret, sim.now())
        try:
            response = await sim.http_client().get(
                url,
                params={"vendorCode": vendor.id, "menuImportId": menu_import_id},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx2.HTTPError as exc:
            return JSONResponse({"menuImportId": menu_import_id, "error": str(exc)}, 502)
        return JSONResponse({"menuImportId": menu_import_id, "pluginStatus": response.status_code})

    return router
