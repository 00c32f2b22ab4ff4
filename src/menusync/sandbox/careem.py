"""Careem (Careem Food / Careem NOW POS API v2.1.0) simulator.

Behaviour follows PLATFORMS.md section 3 and the simulator brief in section 8.4:

- The identity host's ``POST /token`` takes **multipart/form-data** (``client_id``,
  ``client_secret``, ``grant_type=client_credentials``, ``scope=pos``) and returns a JWT valid 24 h
  (``expires_in: 86399``); a new token does not revoke old ones. Bad credentials: 401
  ``{"error": "invalid_client", "error_description": "Bad client credentials"}``.
- The API lives under ``/pos/api/v1``. Every call needs ``Authorization: Bearer`` and a
  ``User-Agent``; catalog calls take the branch from the ``Branch-Id`` header. Errors use
  ``{message, code, error_type, errors}`` with codes such as ``VALIDATION_ERROR`` and
  ``NOT_FOUND_ERROR``.
- ``PUT /catalogs`` answers 200 ``{request_id, created_at, url, message}`` and processes later;
  the result is both pollable (``GET /catalogs/status/{id}``: PENDING -> COMPLETED / FAILED with a
  ``reason``) and pushed as a ``CATALOG_REQUEST_STATUS_UPDATED`` webhook carrying the static
  ``x-careem-api-key`` header (no HMAC), retried up to 5 attempts and then lost.
- Synchronous refusals: 400 for an unmapped branch ("branch_id is not mapped"), more than 8,500
  items, an all-empty diff, blank names ("Name cannot be blank!"), ``currency_id`` outside 1..14 and
  ``name_localized`` keys other than ``en``/``ar``; 409 while a catalog job runs for the branch;
  429 beyond one sync per branch per 2 minutes or 50 syncs per minute overall.
- Asynchronous failures: unresolved references and the group rules (``multi_select`` false:
  0 <= min <= max <= #options; true: min > 1 and max = min; no nested groups when multi-select).
- ``diff: false`` replaces the catalog (missing entities are deleted); ``diff: true`` merges, and
  ``"deleted": true`` removes an entity.
- ``PATCH /catalogs/{id}/items`` takes at most 40 items per call. An item whose group has fewer
  active options than its ``min`` shows as unavailable.
- Branches start UNMAPPED in strict mode until Careem ops map them (an admin call here); timed
  pauses (``visibility/status/expiries``) revert on the clock. Changes reach the SuperApp after a
  configurable read lag (about 5 minutes in reality; 0 by default here).

Inferred [I]: the ``*_ERROR`` codes for 401/409/429, ``error_type`` values, 400 for the deprecated
``DELETE /catalogs``, and that a float price is accepted outside strict mode (the unit of catalog
prices is not published).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import ClassVar

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

TOKEN_LIFETIME = timedelta(seconds=86399)
API = "/pos/api/v1"
MAX_ITEMS = 8500
MAX_AVAILABILITY_ITEMS = 40
KINDS = ("categories", "sub_categories", "items", "groups", "options")
LANGUAGES = frozenset({"en", "ar"})
CURRENCIES = range(1, 15)
GROUP_MAX_MESSAGE = (
    "validation error, customization group max must be between group min and number of group "
    "options when multiSelect is false"
)
GROUP_MIN_MESSAGE = (
    "validation error, customization group min must be between 0 and number of group options "
    "when multiSelect is false"
)
GROUP_MULTI_MESSAGE = (
    "validation error, customization group min must be greater than 1 and max must equal min "
    "when multiSelect is true"
)
GROUP_NESTED_MESSAGE = (
    "validation error, customization group with nested groups cannot be multiSelect"
)


class CareemLimits(Limits):
    """Careem's published budgets (PLATFORMS.md 3.4)."""

    catalog_syncs_per_2_minutes: int | None = Field(default=1, ge=1)
    """1 catalog sync per branch every 2 minutes (per store)."""
    catalog_syncs_per_minute: int | None = Field(default=50, ge=1)
    """50 catalog syncs per minute across all branches."""
    token_requests_per_minute: int | None = Field(default=None, ge=1)
    """Token-endpoint throttling ("might lead to rate-limiting"); no number published."""


@dataclass
class Brand:
    id: str
    name: str


@dataclass
class CatalogState:
    """A branch's catalog as Careem stores it: one map per entity kind, keyed by id."""

    catalog: dict[str, object] = field(default_factory=dict)
    entities: dict[str, dict[str, dict[str, object]]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def document(self) -> dict[str, object]:
        return {
            "catalog": self.catalog,
            **{kind: list(self.entities[kind].values()) for kind in KINDS},
        }

    def copy(self) -> CatalogState:
        return CatalogState(
            dict(self.catalog),
            {kind: {k: dict(v) for k, v in self.entities[kind].items()} for kind in KINDS},
        )


@dataclass
class Branch:
    id: str
    name: str
    brand_id: str
    state: str = "MAPPED"
    pos_active: bool = False
    status_id: int = 1
    expiry: dict[str, object] | None = None
    operational_hours: list[dict[str, object]] = field(default_factory=list)
    catalog: CatalogState | None = None
    published: list[tuple[datetime, dict[str, object]]] = field(default_factory=list)
    item_status: dict[str, str] = field(default_factory=dict)
    running_request: int | None = None
    last_import: dict[str, object] | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "brand_id": self.brand_id,
            "state": self.state,
            "active": self.pos_active,
            "status_id": self.status_id,
        }


@dataclass
class CatalogRequest:
    id: int
    branch_id: str
    brand_id: str
    catalog_id: str
    created_at: datetime
    status: str = "PENDING"
    reason: str | None = None
    warnings: list[dict[str, object]] = field(default_factory=list)


class StoreRegistration(CamelModel):
    store_id: str
    brand_id: str = "brand-1"
    name: str | None = None
    mapped: bool | None = None


class WebhookConfig(CamelModel):
    url: str | None = None
    api_key: str | None = None


def _validation(field_name: str, message: str, status: int = 400) -> SandboxError:
    return SandboxError(
        status,
        "VALIDATION_ERROR",
        message,
        errors=[{"field": field_name, "errors": [{"message": message}]}],
    )


class CareemSimulator(Simulator):
    platform: ClassVar[str] = "careem"
    limits_type: ClassVar[type[Limits]] = CareemLimits

    def __init__(
        self, settings: SandboxSettings, http_client: httpx2.AsyncClient | None = None
    ) -> None:
        super().__init__(settings, http_client)
        self.reset_platform()

    def reset_platform(self) -> None:
        self.brands: dict[str, Brand] = {}
        self.branches: dict[str, Branch] = {}
        self.requests: dict[int, CatalogRequest] = {}
        self.next_request_id = 9_294_432
        self.webhook_url: str | None = self.settings.careem_webhook_url
        self.webhook_api_key: str = self.settings.careem_webhook_api_key

    # ----- envelope -------------------------------------------------------------------------

    def error_code_for(self, status: int) -> str:
        return {
            400: "VALIDATION_ERROR",
            401: "UNAUTHORIZED_ERROR",
            403: "FORBIDDEN_ERROR",
            404: "NOT_FOUND_ERROR",
            409: "CONFLICT_ERROR",
            429: "RATE_LIMIT_ERROR",
        }.get(status, "INTERNAL_SERVER_ERROR")

    def render_error(self, error: SandboxError, path: str) -> JSONResponse:
        if path == "/token":
            return JSONResponse(
                {"error": error.code, "error_description": error.message}, error.status
            )
        return JSONResponse(
            {
                "message": error.message,
                "code": error.code,
                "error_type": "CLIENT_ERROR" if error.status < 500 else "SERVER_ERROR",
                "errors": error.errors,
            },
            error.status,
        )

    # ----- stores ---------------------------------------------------------------------------

    def store_ids(self) -> list[str]:
        return sorted(self.branches)

    def new_branch(self, branch_id: str, brand_id: str, name: str, *, mapped: bool) -> Branch:
        self.brands.setdefault(brand_id, Brand(brand_id, brand_id))
        branch = Branch(branch_id, name, brand_id, "MAPPED" if mapped else "UNMAPPED")
        self.branches[branch_id] = branch
        return branch

    def branch(self, branch_id: str, brand_id: str | None = None) -> Branch:
        branch = self.branches.get(branch_id)
        if branch is None:
            if self.settings.strict:
                raise SandboxError(404, "NOT_FOUND_ERROR", f"branch {branch_id} not found")
            branch = self.new_branch(
                branch_id, brand_id or f"brand-{branch_id}", branch_id, mapped=True
            )
        self.expire(branch)
        return branch

    def expire(self, branch: Branch) -> None:
        """A timed pause ends on the clock: the branch is Active (1) again."""
        if branch.expiry is not None:
            end = datetime.fromisoformat(str(branch.expiry["end_date"]).replace("Z", "+00:00"))
            if self.now() >= end:
                branch.status_id, branch.expiry = 1, None

    def visible_catalog(self, branch: Branch) -> dict[str, object] | None:
        now = self.now()
        visible = [doc for at, doc in branch.published if at <= now]
        return visible[-1] if visible else None

    def availability(self, branch: Branch) -> dict[str, object]:
        document = self.visible_catalog(branch)
        items = {
            as_str(as_dict(i).get("id")) or "": as_dict(i)
            for i in as_list(as_dict(document).get("items"))
        }
        groups = {
            as_str(as_dict(g).get("id")) or "": as_dict(g)
            for g in as_list(as_dict(document).get("groups"))
        }
        options = {
            as_str(as_dict(o).get("id")) or "": as_dict(o)
            for o in as_list(as_dict(document).get("options"))
        }
        statuses: dict[str, str] = {}
        unavailable: list[str] = []
        for item_id, item in items.items():
            status = branch.item_status.get(
                item_id, "active" if item.get("active", True) is not False else "inactive"
            )
            statuses[item_id] = status
            short_group = False
            for group_id in str_list(item.get("groups")) or []:
                group = groups.get(group_id, {})
                active_options = [
                    o
                    for o in str_list(group.get("options")) or []
                    if options.get(o, {}).get("active", True) is not False
                ]
                if len(active_options) < (as_int(group.get("min")) or 0):
                    short_group = True
            if status == "inactive" or short_group:
                unavailable.append(item_id)
        return {"items": statuses, "unavailableItems": sorted(unavailable)}

    def store_view(self, store_id: str) -> dict[str, object] | None:
        branch = self.branches.get(store_id)
        if branch is None:
            return None
        self.expire(branch)
        return {
            "id": branch.id,
            "brandId": branch.brand_id,
            "state": branch.state,
            "menu": self.visible_catalog(branch),
            "availability": self.availability(branch),
            "status": {
                "status_id": branch.status_id,
                "posIntegrationActive": branch.pos_active,
                "expiry": branch.expiry,
            },
            "operationalHours": branch.operational_hours,
            "lastImport": branch.last_import,
        }

    # ----- catalog processing ---------------------------------------------------------------

    async def process(self, request: CatalogRequest, body: dict[str, object]) -> None:
        try:
            await asyncio.sleep(self.settings.processing_delay_seconds)
            branch = self.branches[request.branch_id]
            merged = merge_catalog(branch.catalog, body)
            reasons = validate_catalog(merged)
            if not reasons and self.roll(self.faults.async_fail_rate):
                reasons = ["internal error while processing the catalog"]
            now = self.now()
            if reasons:
                request.status, request.reason = "FAILED", "; ".join(reasons)
            else:
                request.status, request.warnings = "COMPLETED", catalog_warnings(merged)
                branch.catalog = merged
                visible_at = now + timedelta(seconds=self.settings.careem_read_lag_seconds)
                branch.published.append((visible_at, merged.document()))
            branch.running_request = None
            branch.last_import = {
                "request_id": request.id,
                "catalog_id": request.catalog_id,
                "status": request.status,
                "reason": request.reason,
                "warnings": request.warnings,
                "finished_at": iso(now),
            }
        finally:
            owner = self.branches.get(request.branch_id)
            if owner is not None and owner.running_request == request.id:
                owner.running_request = None
        if self.webhook_url:
            self.deliver(self.status_webhook(self.webhook_url, request))

    def status_webhook(self, url: str, request: CatalogRequest) -> Delivery:
        event_id = str(uuid.uuid4())
        details: dict[str, object] = {
            "status": request.status,
            "catalog_id": request.catalog_id,
            "request_id": request.id,
            "vendor_brand_id": request.brand_id,
            "vendor_branch_id": request.branch_id,
            "warnings": request.warnings,
        }
        if request.reason:
            details["reason"] = request.reason
        body = {
            "event_id": event_id,
            "event_type": "CATALOG_REQUEST_STATUS_UPDATED",
            "details": details,
            "occurred_at": iso(self.now().replace(microsecond=0)),
        }
        api_key = self.webhook_api_key

        def headers(_raw: bytes, bad: bool) -> dict[str, str]:
            return {"x-careem-api-key": api_key + "-wrong" if bad else api_key}

        return Delivery(
            url=url,
            event_id=event_id,
            body=canonical(body).encode(),
            sign=headers,
            retry_delays=list(self.settings.careem_webhook_retry_delays),
            is_retryable=lambda status: not 200 <= status < 300,
            kind="CATALOG_REQUEST_STATUS_UPDATED",
        )


# ----- validation and merging ---------------------------------------------------------------


def check_request(body: dict[str, object], *, strict: bool) -> None:
    """The synchronous checks of ``PUT /catalogs``; raises the 400 Careem answers."""
    diff = body.get("diff", False)
    if not isinstance(diff, bool):
        raise _validation("diff", "diff must be a boolean")
    catalog = body.get("catalog")
    if catalog is None and not diff:
        raise _validation("catalog", "catalog is required")
    if catalog is not None:
        header = as_dict(catalog)
        if not isinstance(catalog, dict) or header.get("id") in (None, ""):
            raise _validation("catalog.id", "catalog id is required")
        _check_name(header, "catalog", required=True)
        currency = header.get("currency_id")
        if not is_int(currency) or as_int(currency) not in CURRENCIES:
            raise _validation("catalog.currency_id", "currency_id must be between 1 and 14")
    for kind in KINDS:
        value = body.get(kind, [])
        if not isinstance(value, list):
            raise _validation(kind, f"{kind} must be an array")
    if diff and catalog is None and not any(as_list(body.get(kind)) for kind in KINDS):
        raise _validation("diff", "a diff request must change at least one entity")
    if len(as_list(body.get("items"))) > MAX_ITEMS:
        raise _validation("items", f"a catalog may hold at most {MAX_ITEMS} items")
    for kind in KINDS:
        for index, raw in enumerate(as_list(body.get(kind))):
            entity = as_dict(raw)
            where = f"{kind}[{index}]"
            if not isinstance(raw, dict) or entity.get("id") in (None, ""):
                raise _validation(f"{where}.id", "id is required")
            if entity.get("deleted") is True:
                continue
            _check_name(entity, where, required=not diff)
            for key in ("name_localized", "description_localized"):
                if key in entity:
                    localized = entity.get(key)
                    if not isinstance(localized, dict) or set(as_dict(localized)) - LANGUAGES:
                        raise _validation(
                            f"{where}.{key}", "We only support Arabic and English (en, ar)"
                        )
            if kind in ("items", "options") and "price" in entity:
                price = entity.get("price")
                ok = isinstance(price, int | float) and not isinstance(price, bool) and price >= 0
                if not ok or (strict and not is_int(price)):
                    raise _validation(f"{where}.price", "price must be a non-negative number")


def _check_name(entity: dict[str, object], where: str, *, required: bool) -> None:
    if "name" not in entity and not required:
        return
    name = entity.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _validation(f"{where}.name", "Name cannot be blank!")


def merge_catalog(current: CatalogState | None, body: dict[str, object]) -> CatalogState:
    """``diff: false`` replaces everything; ``diff: true`` upserts and honours ``deleted``."""
    diff = body.get("diff") is True
    state = current.copy() if diff and current is not None else CatalogState()
    if isinstance(body.get("catalog"), dict):
        header = as_dict(body.get("catalog"))
        state.catalog = {**state.catalog, **header} if diff else header
    for kind in KINDS:
        for raw in as_list(body.get(kind)):
            entity = as_dict(raw)
            entity_id = str(entity.get("id"))
            if entity.get("deleted") is True:
                state.entities[kind].pop(entity_id, None)
            elif diff and entity_id in state.entities[kind]:
                state.entities[kind][entity_id] = {**state.entities[kind][entity_id], **entity}
            else:
                state.entities[kind][entity_id] = entity
    return state


def validate_catalog(state: CatalogState) -> list[str]:
    """The asynchronous rules; each failure becomes part of the request's ``reason``."""
    reasons: list[str] = []
    entities = state.entities
    if not state.catalog:
        reasons.append("catalog is required")

    def resolve(owner: str, refs: object, kind: str) -> None:
        for ref in str_list([str(r) for r in as_list(refs)]) or []:
            if ref not in entities[kind]:
                reasons.append(f"{owner} references unknown {kind[:-1].replace('_', ' ')} {ref}")

    resolve("catalog", state.catalog.get("category_ids"), "categories")
    priorities: dict[int, str] = {}
    for category_id, category in entities["categories"].items():
        resolve(f"category {category_id}", category.get("items"), "items")
        resolve(f"category {category_id}", category.get("sub_categories"), "sub_categories")
        priority = as_int(category.get("priority"))
        if priority is not None:
            if priority in priorities:
                reasons.append(
                    f"categories {priorities[priority]} and {category_id} share priority {priority}"
                )
            priorities[priority] = category_id
    for sub_id, sub in entities["sub_categories"].items():
        resolve(f"sub category {sub_id}", sub.get("items"), "items")
    for item_id, item in entities["items"].items():
        resolve(f"item {item_id}", item.get("groups"), "groups")
        for required in ("name", "active", "price"):
            if required not in item:
                reasons.append(f"item {item_id}: {required} is required")
    for option_id, option in entities["options"].items():
        resolve(f"option {option_id}", option.get("groups"), "groups")
    for group_id, group in entities["groups"].items():
        options = [str(o) for o in as_list(group.get("options"))]
        resolve(f"group {group_id}", options, "options")
        count = len(options)
        minimum, maximum = as_int(group.get("min")), as_int(group.get("max"))
        if minimum is None or maximum is None:
            reasons.append(f"group {group_id}: min and max are required")
            continue
        nested = any(as_list(entities["options"].get(o, {}).get("groups")) for o in options)
        if group.get("multi_select") is True:
            if nested:
                reasons.append(f"group {group_id}: {GROUP_NESTED_MESSAGE}")
            if not (minimum > 1 and maximum == minimum):
                reasons.append(f"group {group_id}: {GROUP_MULTI_MESSAGE}")
        else:
            if not 0 <= minimum <= count:
                reasons.append(f"group {group_id}: {GROUP_MIN_MESSAGE}")
            if not minimum <= maximum <= count:
                reasons.append(f"group {group_id}: {GROUP_MAX_MESSAGE}")
    return reasons


def catalog_warnings(state: CatalogState) -> list[dict[str, object]]:
    """Careem's low-severity warning: mandatory groups ranked after optional ones."""
    warnings: list[dict[str, object]] = []
    groups = state.entities["groups"]
    for item_id, item in state.entities["items"].items():
        ranked = [
            (as_int(groups[g].get("priority")) or 1, as_int(groups[g].get("min")) or 0)
            for g in (str(x) for x in as_list(item.get("groups")))
            if g in groups
        ]
        optional = [p for p, minimum in ranked if minimum == 0]
        mandatory = [p for p, minimum in ranked if minimum > 0]
        if optional and mandatory and max(mandatory) > min(optional):
            warnings.append(
                {
                    "entity_name": item.get("name"),
                    "entity_id": item_id,
                    "entity_type": "PRODUCT",
                    "level": "item",
                    "severity": "LOW",
                    "description": "Mandatory option groups are ranked after optional groups",
                }
            )
    return warnings


def _hhmm(value: object) -> str | None:
    text = as_str(value)
    if text is None or len(text) != 5 or text[2] != ":":
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
    """The Careem simulator as an ASGI app (identity ``/token`` plus ``/pos/api/v1``)."""
    sim = CareemSimulator(settings or SandboxSettings(), http_client)
    return build_platform_app(sim, _router(sim), "Careem sandbox")


def _router(sim: CareemSimulator) -> APIRouter:
    router = APIRouter()

    def authorize(request: Request) -> None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not sim.tokens.is_valid(token, sim.now()):
            raise SandboxError(401, "UNAUTHORIZED_ERROR", "Unauthorized")
        if not request.headers.get("user-agent", "").strip():
            raise _validation("User-Agent", "User-Agent header is required")

    def header(request: Request, name: str) -> str:
        value = request.headers.get(name, "").strip()
        if not value:
            raise _validation(name, f"{name} header is required")
        return value

    async def body_of(request: Request) -> dict[str, object]:
        body = parse_json(await request.body())
        if body is INVALID or not isinstance(body, dict):
            raise _validation("body", "Request body must be a JSON object")
        return as_dict(body)

    @router.post("/token")
    async def issue_token(request: Request) -> JSONResponse:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise SandboxError(400, "invalid_request", "Content-Type must be multipart/form-data")
        if not sim.within_budget("token_requests_per_minute", timedelta(minutes=1)):
            raise SandboxError(429, "too_many_requests", "Too many token requests")
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            raise SandboxError(
                400, "unsupported_grant_type", "grant_type must be client_credentials"
            )
        if form.get("scope") != "pos":
            raise SandboxError(400, "invalid_scope", "scope must be pos")
        client_id, secret = as_str(form.get("client_id")), as_str(form.get("client_secret"))
        if not credentials_ok(sim.settings, client_id, secret):
            raise SandboxError(401, "invalid_client", "Bad client credentials")
        token = sim.tokens.issue(client_id or "", TOKEN_LIFETIME, sim.now(), scope="pos")
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": 86399, "scope": "pos"}
        )

    # ----- catalogs -----

    @router.put(API + "/catalogs")
    async def put_catalog(request: Request) -> JSONResponse:
        authorize(request)
        branch_id = header(request, "Branch-Id")
        brand_id = request.headers.get("Brand-Id")
        branch = sim.branch(branch_id, brand_id)
        if branch.state != "MAPPED":
            raise _validation("branch_id", "branch_id is not mapped")
        body = await body_of(request)
        check_request(body, strict=sim.settings.strict)
        if branch.running_request is not None:
            raise SandboxError(
                409, "CONFLICT_ERROR", "A catalog upload is already running for this branch"
            )
        if not sim.within_budgets(
            [
                ("catalog_syncs_per_2_minutes", timedelta(minutes=2), branch.id, ""),
                ("catalog_syncs_per_minute", timedelta(minutes=1), None, ""),
            ]
        ):
            raise SandboxError(429, "RATE_LIMIT_ERROR", "Too many catalog syncs, try again later")
        header_id = as_dict(body.get("catalog")).get("id")
        catalog_id = str(
            header_id
            if header_id is not None
            else (branch.catalog.catalog.get("id") if branch.catalog else branch.id)
        )
        request_id = sim.next_request_id
        sim.next_request_id += 1
        job = CatalogRequest(request_id, branch.id, branch.brand_id, catalog_id, sim.now())
        sim.requests[request_id] = job
        branch.running_request = request_id
        sim.spawn(sim.process(job, body))
        return JSONResponse(
            {
                "request_id": request_id,
                "created_at": iso(job.created_at),
                "url": f"/catalogs/status/{request_id}",
                "message": "Catalog request accepted",
            }
        )

    @router.get(API + "/catalogs/status/{request_id}")
    async def catalog_status(request_id: str, request: Request) -> JSONResponse:
        authorize(request)
        job = sim.requests.get(int(request_id)) if request_id.isdigit() else None
        if job is None:
            raise SandboxError(404, "NOT_FOUND_ERROR", f"catalog request {request_id} not found")
        return JSONResponse(
            {"catalog_id": job.catalog_id, "status": job.status, "reason": job.reason}
        )

    @router.patch(API + "/catalogs/{catalog_id}/items")
    async def patch_items(catalog_id: str, request: Request) -> Response:
        authorize(request)
        body = await body_of(request)
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise _validation("items", "items must be a non-empty array")
        if len(items) > MAX_AVAILABILITY_ITEMS:
            raise _validation("items", f"at most {MAX_AVAILABILITY_ITEMS} items per request")
        branch = next(
            (
                b
                for b in sim.branches.values()
                if b.catalog is not None and str(b.catalog.catalog.get("id")) == catalog_id
            ),
            None,
        )
        if branch is None or branch.catalog is None:
            raise SandboxError(404, "NOT_FOUND_ERROR", f"catalog {catalog_id} not found")
        updates: list[tuple[str, str]] = []
        for index, raw in enumerate(items):
            entry = as_dict(raw)
            item_id, status = str(entry.get("id", "")), entry.get("status")
            if status not in ("active", "inactive"):
                raise _validation(f"items[{index}].status", "status must be active or inactive")
            if item_id not in branch.catalog.entities["items"]:
                raise SandboxError(404, "NOT_FOUND_ERROR", f"item {item_id} not found")
            updates.append((item_id, str(status)))
        for item_id, status in updates:
            branch.item_status[item_id] = status
        return Response(status_code=204)

    @router.delete(API + "/catalogs")
    async def reset_catalog(request: Request) -> JSONResponse:
        authorize(request)
        branch = sim.branches.get(request.headers.get("Branch-Id", ""))
        if branch is not None and branch.running_request is not None:
            raise SandboxError(403, "FORBIDDEN_ERROR", "Catalog reset is forbidden during a push")
        raise SandboxError(400, "API_DEPRECATED_ERROR", "This API is deprecated since 24 Apr 2024")

    # ----- brands and branches -----

    @router.get(API + "/brands")
    async def list_brands(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"data": [{"id": b.id, "name": b.name} for b in sim.brands.values()]})

    async def save_brand(brand_id: str | None, request: Request, status: int) -> JSONResponse:
        body = await body_of(request)
        brand_id = brand_id or as_str(body.get("id"))
        name = body.get("name")
        if not brand_id:
            raise _validation("id", "id is required")
        if not isinstance(name, str) or not name.strip():
            raise _validation("name", "Name cannot be blank!")
        if any(b.name == name and b.id != brand_id for b in sim.brands.values()):
            raise SandboxError(409, "CONFLICT_ERROR", f"brand name {name} already exists")
        sim.brands[brand_id] = Brand(brand_id, name)
        return JSONResponse({"id": brand_id, "name": name}, status)

    @router.post(API + "/brands")
    async def create_brand(request: Request) -> JSONResponse:
        authorize(request)
        return await save_brand(None, request, 201)

    @router.get(API + "/brands/{brand_id}")
    async def get_brand(brand_id: str, request: Request) -> JSONResponse:
        authorize(request)
        brand = sim.brands.get(brand_id)
        if brand is None:
            raise SandboxError(404, "NOT_FOUND_ERROR", f"brand {brand_id} not found")
        return JSONResponse({"id": brand.id, "name": brand.name})

    @router.put(API + "/brands/{brand_id}")
    async def put_brand(brand_id: str, request: Request) -> JSONResponse:
        authorize(request)
        return await save_brand(brand_id, request, 200)

    @router.delete(API + "/brands/{brand_id}")
    async def delete_brand(brand_id: str, request: Request) -> Response:
        authorize(request)
        if sim.brands.pop(brand_id, None) is None:
            raise SandboxError(404, "NOT_FOUND_ERROR", f"brand {brand_id} not found")
        return Response(status_code=204)

    @router.get(API + "/branches")
    async def list_branches(request: Request) -> JSONResponse:
        authorize(request)
        try:
            size = int(request.query_params.get("page_size", "20"))
            number = int(request.query_params.get("page_number", "1"))
        except ValueError:
            raise _validation("page_size", "page_size and page_number must be numbers") from None
        if not 1 <= size <= 20 or number < 1:
            raise _validation("page_size", "page_size must be between 1 and 20")
        branches = list(sim.branches.values())
        page = branches[(number - 1) * size : number * size]
        return JSONResponse(
            {
                "data": [b.as_json() for b in page],
                "pagination": {"page_number": number, "page_size": size, "total": len(branches)},
            }
        )

    def existing_branch(branch_id: str) -> Branch:
        branch = sim.branches.get(branch_id)
        if branch is None:
            raise SandboxError(404, "NOT_FOUND_ERROR", f"branch {branch_id} not found")
        sim.expire(branch)
        return branch

    @router.put(API + "/branches/{branch_id}")
    async def put_branch(branch_id: str, request: Request) -> JSONResponse:
        authorize(request)
        body = await body_of(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _validation("name", "Name cannot be blank!")
        if any(b.name == name and b.id != branch_id for b in sim.branches.values()):
            raise SandboxError(409, "CONFLICT_ERROR", f"branch name {name} already exists")
        brand_id = as_str(body.get("brand_id")) or request.headers.get("Brand-Id") or "brand-1"
        branch = sim.branches.get(branch_id)
        if branch is None:
            branch = sim.new_branch(branch_id, brand_id, name, mapped=not sim.settings.strict)
            return JSONResponse(branch.as_json(), 201)
        branch.name, branch.brand_id = name, brand_id
        return JSONResponse(branch.as_json())

    @router.get(API + "/branches/{branch_id}")
    async def get_branch(branch_id: str, request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse(existing_branch(branch_id).as_json())

    @router.delete(API + "/branches/{branch_id}")
    async def delete_branch(branch_id: str, request: Request) -> Response:
        authorize(request)
        existing_branch(branch_id)
        del sim.branches[branch_id]
        return Response(status_code=204)

    @router.patch(API + "/branches/{branch_id}/status")
    async def toggle_integration(branch_id: str, request: Request) -> JSONResponse:
        authorize(request)
        branch = existing_branch(branch_id)
        active = (await body_of(request)).get("active")
        if not isinstance(active, bool):
            raise _validation("active", "active must be a boolean")
        branch.pos_active = active
        return JSONResponse(branch.as_json())

    def mapped_branch(branch_id: str) -> Branch:
        branch = sim.branches.get(branch_id)
        if branch is None and not sim.settings.strict:
            branch = sim.branch(branch_id)
        if branch is None or branch.state != "MAPPED":
            raise SandboxError(404, "NOT_FOUND_ERROR", f"branch {branch_id} is not mapped")
        sim.expire(branch)
        return branch

    @router.post(API + "/branches/{branch_id}/visibility/status")
    async def set_visibility(branch_id: str, request: Request) -> Response:
        authorize(request)
        branch = mapped_branch(branch_id)
        status_id = (await body_of(request)).get("status_id")
        if status_id not in (1, 2) or isinstance(status_id, bool):
            raise _validation("status_id", "status_id must be 1 (Active) or 2 (Inactive)")
        branch.status_id, branch.expiry = int(str(status_id)), None
        return Response(status_code=204)

    @router.post(API + "/branches/{branch_id}/visibility/status/expiries")
    async def pause_branch(branch_id: str, request: Request) -> JSONResponse:
        authorize(request)
        branch = mapped_branch(branch_id)
        body = await body_of(request)
        minutes = as_int(body.get("till_time"))
        if body.get("status_id") != 2 or isinstance(body.get("status_id"), bool):
            raise _validation("status_id", "status_id must be 2 (Inactive)")
        if minutes is None or minutes <= 0:
            raise _validation("till_time", "till_time must be a positive number of minutes")
        now = sim.now()
        branch.status_id = 2
        branch.expiry = {
            "branch_id": branch.id,
            "status_id": 2,
            "start_date": iso(now),
            "end_date": iso(now + timedelta(minutes=minutes)),
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        return JSONResponse(branch.expiry, 201)

    @router.put(API + "/operational-hours")
    async def put_hours(request: Request) -> JSONResponse:
        authorize(request)
        header(request, "Brand-Id")
        branch = sim.branch(header(request, "Branch-Id"), request.headers.get("Brand-Id"))
        days = (await body_of(request)).get("operational_hours")
        if not isinstance(days, list):
            raise _validation("operational_hours", "operational_hours must be an array")
        for index, raw in enumerate(days):
            day = as_dict(raw)
            if as_int(day.get("day_of_week")) not in range(1, 8):
                raise _validation(
                    f"operational_hours[{index}].day_of_week", "day_of_week must be 1..7"
                )
            for s_index, raw_shift in enumerate(as_list(day.get("shifts"))):
                shift = as_dict(raw_shift)
                start, end = _hhmm(shift.get("start_time")), _hhmm(shift.get("end_time"))
                where = f"operational_hours[{index}].shifts[{s_index}]"
                if start is None or end is None:
                    raise _validation(where, "start_time and end_time must be HH:MM")
                if end == "00:00":
                    raise _validation(f"{where}.end_time", "end_time cannot be 00:00")
                if end <= start:
                    raise _validation(where, "a shift past midnight must be split across two days")
        branch.operational_hours = [as_dict(d) for d in days]
        return JSONResponse({"operational_hours": branch.operational_hours}, 201)

    @router.get(API + "/operational-hours")
    async def get_hours(request: Request) -> JSONResponse:
        authorize(request)
        branch = existing_branch(header(request, "Branch-Id"))
        return JSONResponse({"operational_hours": branch.operational_hours})

    # ----- control: platform-specific -----

    @router.post("/__sandbox/stores", include_in_schema=False)
    async def register_store(request: Request) -> JSONResponse:
        try:
            registration = StoreRegistration.model_validate(await json_body(request))
        except ValueError as exc:
            return control_error(422, "invalid_store", str(exc))
        mapped = registration.mapped if registration.mapped is not None else not sim.settings.strict
        branch = sim.new_branch(
            registration.store_id,
            registration.brand_id,
            registration.name or registration.store_id,
            mapped=mapped,
        )
        return JSONResponse(sim.store_view(branch.id), status_code=201)

    @router.post("/__sandbox/stores/{branch_id}/map", include_in_schema=False)
    async def map_branch(branch_id: str) -> JSONResponse:
        """Careem ops map the branch to an outlet (UNMAPPED -> MAPPED)."""
        branch = sim.branches.get(branch_id)
        if branch is None:
            return control_error(404, "store_not_found", f"unknown store {branch_id}")
        branch.state = "MAPPED"
        return JSONResponse(sim.store_view(branch_id))

    @router.delete("/__sandbox/stores/{branch_id}/map", include_in_schema=False)
    async def unmap_branch(branch_id: str) -> JSONResponse:
        branch = sim.branches.get(branch_id)
        if branch is None:
            return control_error(404, "store_not_found", f"unknown store {branch_id}")
        branch.state = "UNMAPPED"
        return JSONResponse(sim.store_view(branch_id))

    @router.put("/__sandbox/webhook", include_in_schema=False)
    async def configure_webhook(request: Request) -> JSONResponse:
        try:
            config = WebhookConfig.model_validate(await json_body(request))
        except ValueError as exc:
            return control_error(422, "invalid_webhook", str(exc))
        if config.url is not None:
            sim.webhook_url = config.url
        if config.api_key is not None:
            sim.webhook_api_key = config.api_key
        return JSONResponse({"url": sim.webhook_url})

    return router
