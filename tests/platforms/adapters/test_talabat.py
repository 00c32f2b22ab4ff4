"""The Talabat (Delivery Hero middleware) adapter: payload, validation, HTTP behaviour, callbacks.

HTTP runs through ``httpx2.MockTransport`` scripted as the middleware (``FakeMiddleware``), and,
in the ``e2e`` tests at the end, through the sandbox's Delivery Hero simulator over ASGI.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from pydantic import ValidationError

from menusync.core.clock import FrozenClock
from menusync.core.http import CallLog, PlatformHttp
from menusync.menus.canonical import CanonicalMenu
from menusync.menus.samples import generate_menu, sample_menu
from menusync.platforms.adapters.talabat import (
    MAX_CATALOG_PRODUCTS,
    PRODUCTION_BASE_URL,
    TalabatAdapter,
    TalabatConfig,
)
from menusync.platforms.base import (
    AdapterContext,
    AvailabilityChange,
    Capability,
    PlatformAdapter,
    StoreStatusChange,
)
from menusync.platforms.errors import (
    PlatformAuthError,
    PlatformContractError,
    PlatformNotFound,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from menusync.platforms.tokens import TokenCache
from menusync.sandbox.app import create_sandbox_app, shutdown_sandbox
from menusync.sandbox.settings import SandboxSettings

GOLDEN = Path(__file__).parent / "golden" / "talabat_sample.json"
UPDATE_GOLDEN = os.environ.get("MENUSYNC_UPDATE_GOLDEN") == "1"

BASE = "https://middleware.test"
CALLBACK = "https://menusync.example/api/v1/platform-sync/webhook/talabat"
PLUGIN_SECRET = "plugin-secret-" + "x" * 64  # HS512 wants a key of 64 bytes or more
CATALOG = "/v2/chains/chain-1/catalog"
VENDOR = "/v2/chains/chain-1/vendors/vendor-1"
LOGS = f"{VENDOR}/menu-import-logs"
AVAILABILITY = f"{VENDOR}/catalog/items/availability"
STORE = "/v2/chains/chain-1/remoteVendors/vendor-1/availability"

CONFIG: dict[str, Any] = {
    "username": "pos-user",
    "password": "pos-password",
    "pluginSecret": PLUGIN_SECRET,
    "chainCode": "chain-1",
    "posVendorId": "vendor-1",
    "globalEntityId": "TB_AE",
    "baseUrl": BASE,
}

_protocol_check: type[PlatformAdapter] = TalabatAdapter


# ---- helpers -------------------------------------------------------------------------------------

Answer = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]


class FakeMiddleware:
    """The Delivery Hero middleware, scripted per (method, path); the last answer repeats."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.logins = 0
        self.answers: dict[tuple[str, str], list[Answer]] = {}

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)] = list(answers)

    def calls(self, method: str, path: str) -> list[httpx2.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        queue = self.answers.get((request.method, request.url.path))
        if queue:
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, httpx2.Response):
                return answer
            return answer(request)
        if request.url.path == "/v2/login":
            self.logins += 1
            return httpx2.Response(
                200,
                json={
                    "access_token": f"token-{self.logins}",
                    "expires_in": 1800,
                    "token_type": "bearer",
                },
            )
        return httpx2.Response(404, json={"code": "NOT_FOUND", "message": "no route"})


def make_adapter(
    fake: FakeMiddleware, clock: FrozenClock | None = None, **overrides: Any
) -> TalabatAdapter:
    clock = clock or FrozenClock()
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(fake.handler))
    context = AdapterContext(
        http=PlatformHttp(client, CallLog(), clock),
        tokens=TokenCache(clock),
        clock=clock,
        callback_url=CALLBACK,
    )
    return TalabatAdapter({**CONFIG, **overrides}, context)


def offline_adapter(**overrides: Any) -> TalabatAdapter:
    return make_adapter(FakeMiddleware(), **overrides)


def cafe() -> dict[str, Any]:
    """A small bilingual menu document, mutated by tests."""
    return {
        "name": {"en": "Cafe", "ar": "مقهى"},
        "currency": "AED",
        "categories": [
            {"id": "coffee", "name": {"en": "Coffee", "ar": "قهوة"}, "itemIds": ["latte", "mocha"]}
        ],
        "items": [
            {
                "id": "latte",
                "name": {"en": "Latte", "ar": "لاتيه"},
                "price": "18.00",
                "modifierGroupIds": ["size"],
            },
            {"id": "mocha", "name": {"en": "Mocha"}, "price": "20.5"},
        ],
        "modifierGroups": [
            {
                "id": "size",
                "name": {"en": "Size", "ar": "الحجم"},
                "minSelections": 1,
                "maxSelections": 1,
                "optionIds": ["grande", "venti"],
            }
        ],
        "modifierOptions": [
            {"id": "grande", "name": {"en": "Grande"}, "price": "0"},
            {"id": "venti", "name": {"en": "Venti"}, "price": "3"},
        ],
    }


def menu_of(document: dict[str, Any]) -> CanonicalMenu:
    return CanonicalMenu.model_validate(document)


def catalog_items(adapter: TalabatAdapter, document: dict[str, Any], **sync: Any) -> Any:
    return adapter.build_payload(menu_of(document), sync).body["catalog"]["items"]


def paths(issues: list[Any]) -> list[str]:
    return [issue.path for issue in issues]


def callback_token(secret: str = PLUGIN_SECRET, **claims: Any) -> str:
    return jwt.encode({"service": "middleware", **claims}, secret, algorithm="HS512")


def callback_body(status: str = "done", **extra: Any) -> bytes:
    body = {
        "catalogImportId": "import-1",
        "status": status,
        "message": "Import successful" if status == "done" else status,
        "details": [
            {
                "status": status,
                "posVendorId": "vendor-1",
                "platformVendorId": "tb-1",
                "globalEntityId": "TB_AE",
            }
        ],
        **extra,
    }
    return json.dumps(body).encode()


def request_json(request: httpx2.Request) -> Any:
    return json.loads(request.content)


# ---- configuration -------------------------------------------------------------------------------


def test_config_defaults_to_the_middle_east_production_host() -> None:
    config = TalabatConfig.model_validate({k: v for k, v in CONFIG.items() if k != "baseUrl"})

    assert config.api_base == PRODUCTION_BASE_URL
    assert config.vendor_currency == "AED"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "   "),
        ("pluginSecret", ""),
        ("username", ""),
        ("chainCode", "chain/1"),
        ("posVendorId", ""),
        ("globalEntityId", "talabat-uae"),
        ("baseUrl", "not a url"),
    ],
)
def test_config_rejects_bad_credentials_and_ids(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        TalabatConfig.model_validate({**CONFIG, field: value})


def test_config_needs_a_currency_for_an_unknown_global_entity() -> None:
    with pytest.raises(ValidationError, match="currency is required"):
        TalabatConfig.model_validate({**CONFIG, "globalEntityId": "FP_TW"})

    config = TalabatConfig.model_validate({**CONFIG, "globalEntityId": "FP_TW", "currency": "USD"})
    assert config.vendor_currency == "USD"


def test_config_keeps_credentials_secret() -> None:
    config = TalabatConfig.model_validate(CONFIG)

    assert "pos-password" not in repr(config)
    assert PLUGIN_SECRET not in config.model_dump_json()
    assert TalabatAdapter.secret_fields == {"password", "plugin_secret"}


def test_store_key_is_chain_and_vendor() -> None:
    assert TalabatAdapter.store_key(CONFIG) == "chain-1/vendor-1"


def test_declares_full_push_only_and_the_design_budget() -> None:
    assert Capability.PARTIAL_MENU_PUSH not in TalabatAdapter.capabilities
    assert {Capability.PUSH_STATUS_POLL, Capability.PUSH_RESULT_WEBHOOK} <= (
        TalabatAdapter.capabilities
    )
    (rule,) = TalabatAdapter.limits.rules
    assert (rule.requests, rule.per_seconds, rule.scope) == (40, 60, "platform")
    policy = TalabatAdapter.retry_policy
    assert (policy.max_retries, policy.base_delay, policy.max_delay, policy.multiplier) == (
        3,
        3.0,
        180.0,
        2.5,
    )


# ---- payload -------------------------------------------------------------------------------------


def test_golden_payload_for_the_sample_menu() -> None:
    payload = offline_adapter().build_payload(sample_menu(), None)
    text = json.dumps(payload.body, indent=2, ensure_ascii=False) + "\n"

    if UPDATE_GOLDEN:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    assert payload.items_total == 60
    assert not payload.is_partial


def test_sample_payload_is_a_consistent_catalog() -> None:
    body = offline_adapter().build_payload(sample_menu(), None).body
    items = body["catalog"]["items"]

    assert body["vendors"] == ["vendor-1"]
    assert body["callbackUrl"] == CALLBACK
    assert all(key == entry["id"] for key, entry in items.items())
    referenced = [
        ref
        for entry in items.values()
        for field in ("products", "toppings", "images", "schedule")
        for ref in (entry.get(field) or {}).values()
    ]
    assert all(items[ref["id"]]["type"] == ref["type"] for ref in referenced)
    categorised = {
        product_id
        for entry in items.values()
        if entry["type"] == "Category"
        for product_id in entry["products"]
    }
    products = {key for key, entry in items.items() if entry["type"] == "Product"}
    assert products == categorised  # every product and option product is in a category
    assert all("default" in entry["title"] for entry in items.values() if "title" in entry)


def test_payload_is_deterministic() -> None:
    adapter = offline_adapter()

    first = json.dumps(adapter.build_payload(sample_menu(), None).body)
    second = json.dumps(adapter.build_payload(sample_menu(), {}).body)

    assert first == second


def test_prices_are_decimal_strings_in_major_units() -> None:
    items = catalog_items(offline_adapter(), cafe())

    assert items["latte"]["price"] == "18.00"
    assert items["mocha"]["price"] == "20.50"
    assert items["size"]["products"]["venti"]["price"] == "3.00"


def test_three_decimal_currencies_keep_three_decimals() -> None:
    document = cafe() | {"currency": "KWD"}
    document["items"][0]["price"] = "1.250"

    items = catalog_items(offline_adapter(globalEntityId="TB_KW"), document)

    assert items["latte"]["price"] == "1.250"
    assert items["size"]["products"]["grande"]["price"] == "0.000"


def test_tax_is_added_when_menu_prices_exclude_it_then_the_adjustment() -> None:
    document = cafe() | {"pricesIncludeTax": False, "taxRate": "5"}

    items = catalog_items(offline_adapter(), document, priceAdjustmentPercent="10")

    assert items["latte"]["price"] == "20.79"  # 18.00 * 1.05 * 1.10 = 20.79
    assert items["size"]["products"]["venti"]["price"] == "3.47"  # 3 * 1.05 * 1.1 = 3.465


def test_talabat_override_sets_price_and_name() -> None:
    document = cafe()
    document["items"][0]["platformOverrides"] = {
        "talabat": {"price": "17.00", "name": {"en": "Cafe Latte"}},
        "careem": {"price": "99.00"},
    }

    items = catalog_items(offline_adapter(), document, priceAdjustmentPercent="10")

    assert items["latte"]["price"] == "17.00"
    assert items["latte"]["title"] == {"default": "Cafe Latte", "en": "Cafe Latte"}


def test_titles_have_a_default_and_the_configured_languages() -> None:
    items = catalog_items(
        offline_adapter(), cafe(), defaultLanguage="ar", languageKeys={"ar": "ar_AE"}
    )

    assert items["latte"]["title"] == {"default": "لاتيه", "en": "Latte", "ar_AE": "لاتيه"}
    assert items["mocha"]["title"] == {"default": "Mocha", "en": "Mocha"}  # falls back


def test_hidden_item_is_left_out_and_unavailable_item_is_inactive() -> None:
    document = cafe()
    document["items"][0]["platformOverrides"] = {"talabat": {"isVisible": False}}
    document["items"][1]["isAvailable"] = False

    items = catalog_items(offline_adapter(), document)

    assert "latte" not in items
    assert "grande" not in items  # its options go with it
    assert items["mocha"]["active"] is False
    assert list(items["menusync-menu"]["products"]) == ["mocha"]


def test_hidden_option_is_left_out_of_its_topping() -> None:
    document = cafe()
    document["modifierOptions"][1]["platformOverrides"] = {"talabat": {"isVisible": False}}

    items = catalog_items(offline_adapter(), document)

    assert list(items["size"]["products"]) == ["grande"]
    assert "venti" not in items


def test_option_products_live_in_a_hidden_category() -> None:
    items = catalog_items(offline_adapter(), cafe())

    hidden = items["menusync-options"]
    assert list(hidden["products"]) == ["grande", "venti"]
    menu_products = {p for e in items.values() if e["type"] == "Menu" for p in e["products"]}
    assert menu_products == {"latte", "mocha"}
    assert items["size"]["quantity"] == {"minimum": 1, "maximum": 1}
    assert items["latte"]["toppings"] == {"size": {"id": "size", "type": "Topping", "order": 1}}


def test_optional_groups_are_nested_under_a_single_choice() -> None:
    document = cafe()
    document["modifierGroups"].append(
        {
            "id": "extras",
            "name": {"en": "Extras"},
            "minSelections": 0,
            "maxSelections": 2,
            "optionIds": ["shot", "syrup"],
        }
    )
    document["modifierOptions"] += [
        {"id": "shot", "name": {"en": "Extra shot"}, "price": "2"},
        {"id": "syrup", "name": {"en": "Syrup"}, "price": "1.5"},
    ]
    document["items"][0]["modifierGroupIds"] = ["size", "extras"]

    items = catalog_items(offline_adapter(), document)

    assert list(items["latte"]["toppings"]) == ["size", "menusync-choice-latte"]
    choice = items["menusync-choice-latte"]
    assert choice["quantity"] == {"minimum": 1, "maximum": 1}
    assert choice["products"] == {
        "menusync-base-latte": {
            "id": "menusync-base-latte",
            "type": "Product",
            "order": 1,
            "price": "0.00",
        }
    }
    assert list(items["menusync-base-latte"]["toppings"]) == ["extras"]
    assert items["extras"]["quantity"] == {"minimum": 0, "maximum": 2}
    assert "menusync-base-latte" in items["menusync-options"]["products"]


def test_schedules_use_weekday_names_and_split_at_midnight() -> None:
    document = cafe() | {
        "schedule": [{"days": ["friday"], "ranges": [{"start": "18:00", "end": "02:00"}]}]
    }

    items = catalog_items(offline_adapter(), document)

    entries = [items[ref] for ref in items["menusync-menu"]["schedule"]]
    assert [(e["weekDays"], e["startTime"], e["endTime"]) for e in entries] == [
        (["FRIDAY"], "18:00:00", "23:59:59"),
        (["SATURDAY"], "00:00:00", "02:00:00"),
    ]


def test_an_empty_schedule_means_all_week() -> None:
    items = catalog_items(offline_adapter(), cafe())

    (entry_id,) = items["menusync-menu"]["schedule"]
    assert items[entry_id]["weekDays"] == [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ]
    assert (items[entry_id]["startTime"], items[entry_id]["endTime"]) == ("00:00:00", "23:59:59")


def test_an_item_with_its_own_hours_gets_its_own_menu() -> None:
    document = cafe()
    document["items"][1]["schedule"] = [
        {"days": ["monday"], "ranges": [{"start": "07:00", "end": "11:00"}]}
    ]

    items = catalog_items(offline_adapter(), document)

    menus = {key: entry for key, entry in items.items() if entry["type"] == "Menu"}
    assert list(menus["menusync-menu"]["products"]) == ["latte"]
    (breakfast,) = [entry for key, entry in menus.items() if key != "menusync-menu"]
    assert list(breakfast["products"]) == ["mocha"]
    (entry_id,) = breakfast["schedule"]
    assert items[entry_id]["startTime"] == "07:00:00"


def test_images_are_entries_keyed_by_their_url_and_alcohol_is_age_restricted() -> None:
    document = cafe()
    document["items"][0]["image"] = {"url": "https://cdn.example/latte-v2.png"}
    document["items"][0]["containsAlcohol"] = True

    items = catalog_items(offline_adapter(), document)

    (image_id,) = items["latte"]["images"]
    assert items[image_id]["url"] == "https://cdn.example/latte-v2.png"
    assert items[image_id]["alt"]["default"] == "Latte"
    assert items["latte"]["tags"] == {"ageRestrictedItem": ["ID_CHECK_18"]}


def test_item_ids_still_push_the_full_catalog() -> None:
    adapter = offline_adapter()

    payload = adapter.build_payload(menu_of(cafe()), None, item_ids=["latte"])

    assert not payload.is_partial
    assert payload.body == adapter.build_payload(menu_of(cafe()), None).body


def test_a_large_generated_menu_builds() -> None:
    adapter = offline_adapter()
    menu = generate_menu(5000)

    assert adapter.validate_menu(menu, None) == []
    payload = adapter.build_payload(menu, None)

    assert payload.items_total == 5000
    assert len(payload.body["catalog"]["items"]) > 5000


# ---- validation: one rule each ---------------------------------------------------------------


def test_the_sample_menu_passes_validation() -> None:
    assert offline_adapter().validate_menu(sample_menu(), None) == []


def test_rule_menu_over_the_product_limit_is_refused() -> None:
    issues = offline_adapter().validate_menu(generate_menu(MAX_CATALOG_PRODUCTS + 1), None)

    assert paths(issues) == ["items"]
    assert issues[0].code == "too_many_products"


def test_rule_title_needs_the_default_language() -> None:
    issues = offline_adapter().validate_menu(menu_of(cafe()), {"defaultLanguage": "ar"})

    assert "items[1].name.ar" in paths(issues)
    assert "modifierOptions[0].name.ar" in paths(issues)
    assert {issue.code for issue in issues} == {"missing_default_text"}


def test_rule_first_level_topping_must_be_a_single_choice() -> None:
    document = cafe()
    document["modifierGroups"][0]["minSelections"] = 0

    issues = offline_adapter().validate_menu(menu_of(document), {"wrapOptionalToppings": False})

    assert paths(issues) == ["modifierGroups[0].minSelections"]
    assert issues[0].code == "talabat_level_one_choice"


def test_rule_at_most_two_topping_levels() -> None:
    document = cafe()
    document["modifierGroups"] += [
        {
            "id": "milk",
            "name": {"en": "Milk"},
            "minSelections": 1,
            "maxSelections": 1,
            "optionIds": ["oat"],
        },
        {
            "id": "foam",
            "name": {"en": "Foam"},
            "minSelections": 0,
            "maxSelections": 1,
            "optionIds": ["dry"],
        },
    ]
    document["modifierOptions"] += [
        {"id": "oat", "name": {"en": "Oat"}, "modifierGroupIds": ["foam"]},
        {"id": "dry", "name": {"en": "Dry"}},
    ]
    document["modifierOptions"][0]["modifierGroupIds"] = ["milk"]

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert paths(issues) == ["modifierOptions[2].modifierGroupIds"]
    assert issues[0].code == "talabat_topping_depth"


def test_rule_a_nested_optional_group_cannot_carry_more_toppings() -> None:
    document = cafe()
    document["modifierGroups"] += [
        {
            "id": "extras",
            "name": {"en": "Extras"},
            "minSelections": 0,
            "maxSelections": 2,
            "optionIds": ["shot"],
        },
        {
            "id": "strength",
            "name": {"en": "Strength"},
            "minSelections": 1,
            "maxSelections": 1,
            "optionIds": ["double"],
        },
    ]
    document["modifierOptions"] += [
        {"id": "shot", "name": {"en": "Shot"}, "modifierGroupIds": ["strength"]},
        {"id": "double", "name": {"en": "Double"}},
    ]
    document["items"][0]["modifierGroupIds"] = ["size", "extras"]

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert paths(issues) == ["modifierOptions[2].modifierGroupIds"]


def test_rule_every_product_is_in_a_category() -> None:
    document = cafe()
    document["items"].append({"id": "cookie", "name": {"en": "Cookie"}, "price": "5"})

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert paths(issues) == ["items[2]"]
    assert issues[0].code == "product_without_category"


def test_rule_at_least_one_category() -> None:
    document = cafe()
    for item in document["items"]:
        item["platformOverrides"] = {"talabat": {"isVisible": False}}

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert paths(issues) == ["categories"]


def test_rule_menu_currency_is_the_vendors() -> None:
    issues = offline_adapter(globalEntityId="TB_KW").validate_menu(menu_of(cafe()), None)

    assert paths(issues) == ["currency"]
    assert "KWD" in issues[0].message


def test_rule_ids_are_unique_across_the_catalog() -> None:
    document = cafe()
    document["items"][1]["id"] = "size"
    document["categories"][0]["itemIds"] = ["latte", "size"]

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert "modifierGroups[0].id" in paths(issues)
    assert {i.code for i in issues if i.path == "modifierGroups[0].id"} == {"duplicate_id"}


def test_rule_menusync_prefix_is_reserved() -> None:
    document = cafe()
    document["items"][1]["id"] = "menusync-menu"
    document["categories"][0]["itemIds"] = ["latte", "menusync-menu"]

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert paths(issues) == ["items[1].id"]


def test_rule_image_format_must_be_accepted() -> None:
    document = cafe()
    document["items"][0]["image"] = {"url": "https://cdn.example/latte.bmp"}

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert paths(issues) == ["items[0].image.url"]


def test_rule_topping_needs_a_visible_option() -> None:
    document = cafe()
    for option in document["modifierOptions"]:
        option["platformOverrides"] = {"talabat": {"isVisible": False}}

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert "modifierGroups[0].optionIds" in paths(issues)


def test_rule_references_must_resolve() -> None:
    document = cafe()
    document["items"][1]["modifierGroupIds"] = ["milk"]

    issues = offline_adapter().validate_menu(menu_of(document), None)

    assert paths(issues) == ["items[1].modifierGroupIds[0]"]


# ---- auth --------------------------------------------------------------------------------------


def accepted(import_id: str = "import-1") -> httpx2.Response:
    return httpx2.Response(202, json={"status": "submitted", "catalogImportId": import_id})


async def test_login_is_a_form_post_and_every_call_carries_the_bearer() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", CATALOG, accepted())
    adapter = make_adapter(fake)

    await adapter.push_menu(adapter.build_payload(menu_of(cafe()), None))

    login, push = fake.requests
    assert login.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(httpx2.QueryParams(login.content.decode())) == {
        "username": "pos-user",
        "password": "pos-password",
        "grant_type": "client_credentials",
    }
    assert push.headers["authorization"] == "Bearer token-1"


async def test_token_is_cached_and_refreshed_before_it_expires() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", CATALOG, accepted())
    clock = FrozenClock()
    adapter = make_adapter(fake, clock)
    payload = adapter.build_payload(menu_of(cafe()), None)

    await adapter.push_menu(payload)
    clock.advance(1700)
    await adapter.push_menu(payload)
    clock.advance(80)  # 1780 s: inside the refresh margin of a 1800 s token
    await adapter.push_menu(payload)

    tokens = [r.headers["authorization"] for r in fake.calls("PUT", CATALOG)]
    assert tokens == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    assert fake.logins == 2


async def test_a_401_gets_one_refresh_and_one_retry() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", CATALOG, httpx2.Response(401, json={"code": "UNAUTHORIZED"}), accepted())
    adapter = make_adapter(fake)

    receipt = await adapter.push_menu(adapter.build_payload(menu_of(cafe()), None))

    assert receipt.external_ref == "import-1"
    assert [r.headers["authorization"] for r in fake.calls("PUT", CATALOG)] == [
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_a_second_401_is_an_auth_error() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", CATALOG, httpx2.Response(401, json={"code": "UNAUTHORIZED", "message": "no"}))
    adapter = make_adapter(fake)

    with pytest.raises(PlatformAuthError) as caught:
        await adapter.push_menu(adapter.build_payload(menu_of(cafe()), None))

    assert len(fake.calls("PUT", CATALOG)) == 2
    assert caught.value.details["platformCode"] == "UNAUTHORIZED"


async def test_refused_login_is_an_auth_error() -> None:
    fake = FakeMiddleware()
    fake.on(
        "POST",
        "/v2/login",
        httpx2.Response(401, json={"code": "AUTHENTICATION_ERROR", "message": "bad user"}),
    )
    adapter = make_adapter(fake)

    with pytest.raises(PlatformAuthError, match="bad user"):
        await adapter.push_menu(adapter.build_payload(menu_of(cafe()), None))


async def test_login_502_is_transient() -> None:
    fake = FakeMiddleware()
    fake.on("POST", "/v2/login", httpx2.Response(502, text="bad gateway"))
    adapter = make_adapter(fake)

    with pytest.raises(PlatformUnavailable):
        await adapter.push_menu(adapter.build_payload(menu_of(cafe()), None))


# ---- error mapping -------------------------------------------------------------------------------


async def push_with(answer: Answer) -> Any:
    fake = FakeMiddleware()
    fake.on("PUT", CATALOG, answer)
    adapter = make_adapter(fake)
    return await adapter.push_menu(adapter.build_payload(menu_of(cafe()), None))


async def test_429_without_retry_after_leaves_the_backoff_to_the_policy() -> None:
    with pytest.raises(PlatformRateLimited) as caught:
        await push_with(httpx2.Response(429, json={"message": "slow down"}))

    assert caught.value.retry_after is None


async def test_429_with_retry_after_is_honoured() -> None:
    with pytest.raises(PlatformRateLimited) as caught:
        await push_with(httpx2.Response(429, headers={"Retry-After": "7"}))

    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable(status: int) -> None:
    with pytest.raises(PlatformUnavailable) as caught:
        await push_with(
            httpx2.Response(status, json={"errorCode": "INTERNAL_ERROR", "message": "oops"})
        )

    assert caught.value.details["platformCode"] == "INTERNAL_ERROR"
    assert caught.value.details["httpStatus"] == status


@pytest.mark.parametrize(
    "error",
    [
        httpx2.ReadTimeout("timed out"),
        httpx2.ConnectError("refused"),
        httpx2.RemoteProtocolError("reset"),
    ],
)
async def test_timeouts_and_connection_errors_are_unavailable(error: Exception) -> None:
    with pytest.raises(PlatformUnavailable):
        await push_with(error)


async def test_400_is_rejected_with_the_platforms_message() -> None:
    with pytest.raises(PlatformRejected) as caught:
        await push_with(
            httpx2.Response(
                400,
                json={"errorCode": "BAD_REQUEST", "message": "catalog.items is required"},
            )
        )

    assert caught.value.issues[0]["message"] == "catalog.items is required"
    assert caught.value.issues[0]["code"] == "BAD_REQUEST"
    assert caught.value.platform_code == "BAD_REQUEST"


async def test_404_is_not_found_and_403_is_an_auth_error() -> None:
    with pytest.raises(PlatformNotFound):
        await push_with(httpx2.Response(404, json={"errorCode": "NOT_FOUND", "message": "chain"}))
    with pytest.raises(PlatformAuthError, match="User not matching"):
        await push_with(
            httpx2.Response(403, json={"code": "FORBIDDEN", "message": "User not matching"})
        )


async def test_an_answer_without_an_import_id_breaks_the_contract() -> None:
    with pytest.raises(PlatformContractError):
        await push_with(httpx2.Response(202, text="<html>accepted</html>"))


# ---- push and poll -----------------------------------------------------------------------------


async def test_push_puts_the_catalog_and_returns_the_import_id() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", CATALOG, accepted("imp-42"))
    adapter = make_adapter(fake)
    payload = adapter.build_payload(menu_of(cafe()), None)

    receipt = await adapter.push_menu(payload)

    assert (receipt.outcome, receipt.external_ref) == ("accepted", "imp-42")
    (push,) = fake.calls("PUT", CATALOG)
    assert request_json(push) == payload.body


def logs(*entries: dict[str, Any]) -> httpx2.Response:
    return httpx2.Response(200, json={"menuImportLogs": {"vendor-1": list(entries)}})


async def test_poll_reads_the_import_logs() -> None:
    fake = FakeMiddleware()
    fake.on(
        "GET",
        LOGS,
        logs(
            {
                "menuImportId": "imp-1",
                "status": "done",
                "message": "Import successful",
                "createdAt": "2026-01-05T09:01:00Z",
            },
            {
                "menuImportId": "imp-1",
                "status": "in_progress",
                "message": "",
                "createdAt": "2026-01-05T09:00:10Z",
            },
            {"menuImportId": "imp-0", "status": "failed", "createdAt": "2026-01-04T09:00:00Z"},
        ),
    )
    adapter = make_adapter(fake)

    result = await adapter.get_push_result("imp-1")

    assert result.state == "completed"
    assert result.message == "Import successful"
    (request,) = fake.calls("GET", LOGS)
    assert request.url.params["sort"] == "desc"
    assert request.url.params["to"] == "2026-01-05T09:00:01Z"
    assert request.url.params["from"] == "2025-12-06T09:00:01Z"


async def test_poll_is_pending_while_in_progress_or_not_listed() -> None:
    fake = FakeMiddleware()
    fake.on(
        "GET",
        LOGS,
        logs({"menuImportId": "imp-1", "status": "in_progress", "createdAt": "2026-01-05"}),
        logs(),
    )
    adapter = make_adapter(fake)

    assert (await adapter.get_push_result("imp-1")).state == "pending"
    assert (await adapter.get_push_result("imp-1")).state == "pending"


async def test_poll_reports_a_failed_import_with_its_message() -> None:
    fake = FakeMiddleware()
    fake.on(
        "GET",
        LOGS,
        logs(
            {
                "menuImportId": "imp-1",
                "status": "failed",
                "message": "Product or one or more of its variants does not belong to a category",
            }
        ),
    )
    adapter = make_adapter(fake)

    result = await adapter.get_push_result("imp-1")

    assert result.state == "failed"
    assert "does not belong to a category" in result.issues[0].message


# ---- callbacks -----------------------------------------------------------------------------------


def test_callbacks_of_one_import_are_distinct_events() -> None:
    adapter = offline_adapter()

    progress = adapter.parse_webhook({}, callback_body("in_progress"))
    done = adapter.parse_webhook({}, callback_body("done"))

    assert progress.event_id != done.event_id
    assert progress.external_ref == done.external_ref == "import-1"
    assert progress.result is not None
    assert progress.result.state == "pending"
    assert done.result is not None
    assert done.result.state == "completed"
    assert done.store_ref == "vendor-1"
    assert adapter.parse_webhook({}, callback_body("done")).event_id == done.event_id


def test_done_with_errors_is_a_failure_naming_the_platform_vendors() -> None:
    body = json.dumps(
        {
            "catalogImportId": "import-1",
            "status": "done_with_errors",
            "message": "Some platforms failed",
            "details": [
                {"status": "done", "posVendorId": "vendor-1", "platformVendorId": "a",
                 "globalEntityId": "TB_AE"},
                {"status": "failed", "posVendorId": "vendor-1", "platformVendorId": "b",
                 "globalEntityId": "HS_SA", "message": "image too large"},
            ],
        }
    ).encode()  # fmt: skip

    message = offline_adapter().parse_webhook({}, body)

    assert message.result is not None
    assert message.result.state == "failed"
    (issue,) = message.result.issues
    assert issue.message == "image too large"
    assert issue.path == "vendors.vendor-1.platforms.HS_SA/b"


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"catalogImportId": "x"}'])
def test_a_malformed_callback_breaks_the_contract(body: bytes) -> None:
    with pytest.raises(PlatformContractError):
        offline_adapter().parse_webhook({}, body)


def test_webhook_reply_keeps_updates_until_final_then_stops() -> None:
    adapter = offline_adapter()
    progress = adapter.parse_webhook({}, callback_body("in_progress"))
    failed = adapter.parse_webhook({}, callback_body("failed"))

    assert adapter.webhook_reply(progress, accepted=True).status_code == 200
    assert adapter.webhook_reply(failed, accepted=True).status_code == 204
    assert adapter.webhook_reply(failed, accepted=False).status_code == 500


def test_verify_accepts_the_middlewares_signed_callback() -> None:
    headers = {"authorization": f"Bearer {callback_token()}"}

    assert offline_adapter().verify_webhook(headers, callback_body()) is True
    assert offline_adapter().verify_webhook(
        {"AUTHORIZATION": f"bearer {callback_token()}"}, callback_body()
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": callback_token()},  # no Bearer scheme
        {"Authorization": f"Bearer {callback_token('another-secret-' + 'y' * 64)}"},
        {"Authorization": f"Bearer {callback_token(service='plugin')}"},
        {
            "Authorization": "Bearer "
            + jwt.encode({"service": "middleware"}, PLUGIN_SECRET, algorithm="HS256")
        },
        {"Authorization": "Bearer not-a-jwt"},
    ],
    ids=["missing", "no-scheme", "forged", "wrong-service", "wrong-algorithm", "garbage"],
)
def test_verify_refuses_forged_callbacks(headers: dict[str, str]) -> None:
    assert offline_adapter().verify_webhook(headers, callback_body()) is False


def test_verify_refuses_a_tampered_token() -> None:
    header, _claims, signature = callback_token().split(".")
    forged_claims = jwt.utils.base64url_encode(b'{"service":"middleware","x":1}').decode()

    tampered = f"Bearer {header}.{forged_claims}.{signature}"

    assert offline_adapter().verify_webhook({"Authorization": tampered}, callback_body()) is False


def test_verify_checks_expiry_on_the_injected_clock() -> None:
    clock = FrozenClock()
    adapter = make_adapter(FakeMiddleware(), clock)
    exp = int((clock.now() + timedelta(minutes=5)).timestamp())
    headers = {"Authorization": f"Bearer {callback_token(exp=exp)}"}

    assert adapter.verify_webhook(headers, callback_body())
    clock.advance(minutes=10)
    assert not adapter.verify_webhook(headers, callback_body())


def test_the_body_is_not_what_delivery_hero_signs() -> None:
    """The middleware signs the caller (JWT), not the body (PLATFORMS.md 2.1): a replayed or
    altered body is caught by the event-id dedupe and the job lookup, not here."""
    headers = {"Authorization": f"Bearer {callback_token()}"}

    assert offline_adapter().verify_webhook(headers, callback_body("failed"))


# ---- item availability -------------------------------------------------------------------------


async def test_availability_batches_by_type_state_and_time() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", AVAILABILITY, httpx2.Response(204))
    adapter = make_adapter(fake)
    until = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)

    result = await adapter.set_item_availability(
        [
            AvailabilityChange("latte", is_available=False, until=until),
            AvailabilityChange("mocha", is_available=False, until=until),
            AvailabilityChange("venti", is_available=False, kind="option"),
            AvailabilityChange("grande", is_available=True, kind="option"),
        ]
    )

    assert result.succeeded
    assert result.items_processed == 4
    bodies = [request_json(r) for r in fake.calls("PUT", AVAILABILITY)]
    assert bodies == [
        {
            "globalEntityId": "TB_AE",
            "items": ["latte", "mocha"],
            "type": "ITEM",
            "isAvailable": False,
            "willBeAvailable": "AT_TIMESTAMP",
            "atTimeStamp": "2026-01-06T08:00:00Z",
        },
        {"globalEntityId": "TB_AE", "items": ["venti"], "type": "TOPPING", "isAvailable": False},
        {"globalEntityId": "TB_AE", "items": ["grande"], "type": "TOPPING", "isAvailable": True},
    ]


async def test_availability_splits_long_lists() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", AVAILABILITY, httpx2.Response(204))
    adapter = make_adapter(fake)

    await adapter.set_item_availability(
        [AvailabilityChange(f"item-{i}", is_available=False) for i in range(150)]
    )

    sizes = [len(request_json(r)["items"]) for r in fake.calls("PUT", AVAILABILITY)]
    assert sizes == [100, 50]


async def test_availability_partial_success_is_reported_per_platform() -> None:
    fake = FakeMiddleware()
    fake.on(
        "PUT",
        AVAILABILITY,
        httpx2.Response(
            200,
            json={
                "status": "Partial Success",
                "details": [
                    {"platformVendorId": "tb-1", "globalEntityId": "TB_AE", "status": "Success"},
                    {
                        "platformVendorId": "hs-1",
                        "globalEntityId": "HS_SA",
                        "status": "Not Supported",
                    },
                ],
            },
        ),
    )
    adapter = make_adapter(fake)

    result = await adapter.set_item_availability([AvailabilityChange("latte", False)])

    assert not result.succeeded
    (failure,) = result.partial_failures
    assert (failure["globalEntityId"], failure["status"]) == ("HS_SA", "Not Supported")


async def test_availability_400_is_rejected() -> None:
    fake = FakeMiddleware()
    fake.on("PUT", AVAILABILITY, httpx2.Response(400, json={"code": "INVALID_REQUEST"}))
    adapter = make_adapter(fake)

    with pytest.raises(PlatformRejected):
        await adapter.set_item_availability([AvailabilityChange("latte", False)])


# ---- store status ------------------------------------------------------------------------------


def vendor_state(**overrides: Any) -> dict[str, Any]:
    return {
        "availabilityState": "OPEN",
        "availabilityStates": ["OPEN", "CLOSED", "CLOSED_UNTIL"],
        "changeable": True,
        "closingMinutes": [15, 30, 60, 120],
        "closingReasons": ["TOO_BUSY_KITCHEN", "TECHNICAL_PROBLEM", "CLOSED", "OTHER"],
        "platformKey": "TB",
        "platformRestaurantId": "tb-1",
        "platformType": "TALABAT",
        **overrides,
    }


async def test_pause_uses_an_offered_duration_and_reason() -> None:
    fake = FakeMiddleware()
    fake.on("GET", STORE, httpx2.Response(200, json=[vendor_state()]))
    fake.on("PUT", STORE, httpx2.Response(200, json={}))
    clock = FrozenClock()
    adapter = make_adapter(fake, clock)

    result = await adapter.set_store_status(
        StoreStatusChange(
            "paused", until=clock.now() + timedelta(minutes=40), reason="technical problem"
        )
    )

    assert result.succeeded
    (put,) = fake.calls("PUT", STORE)
    assert request_json(put) == {
        "availabilityState": "CLOSED_UNTIL",
        "platformKey": "TB",
        "platformRestaurantId": "tb-1",
        "closedReason": "TECHNICAL_PROBLEM",
        "closingMinutes": 60,
    }


async def test_open_and_close() -> None:
    fake = FakeMiddleware()
    fake.on("GET", STORE, httpx2.Response(200, json=[vendor_state()]))
    fake.on("PUT", STORE, httpx2.Response(200, json={}))
    adapter = make_adapter(fake)

    await adapter.set_store_status(StoreStatusChange("closed"))
    await adapter.set_store_status(StoreStatusChange("open"))

    close, reopen = (request_json(r) for r in fake.calls("PUT", STORE))
    assert (close["availabilityState"], close["closedReason"]) == ("CLOSED", "CLOSED")
    assert reopen == {
        "availabilityState": "OPEN",
        "platformKey": "TB",
        "platformRestaurantId": "tb-1",
    }


async def test_store_not_changeable_is_reported_without_a_write() -> None:
    fake = FakeMiddleware()
    fake.on(
        "GET",
        STORE,
        httpx2.Response(
            200,
            json=[
                vendor_state(
                    changeable=False,
                    availabilityState="CLOSED",
                    closedReason="TOO_MANY_REJECTED_ORDERS",
                )
            ],
        ),
    )
    adapter = make_adapter(fake)

    result = await adapter.set_store_status(StoreStatusChange("open"))

    assert not result.succeeded
    assert "TOO_MANY_REJECTED_ORDERS" in result.partial_failures[0]["message"]
    assert fake.calls("PUT", STORE) == []


async def test_store_read_204_is_transient() -> None:
    fake = FakeMiddleware()
    fake.on("GET", STORE, httpx2.Response(204))
    adapter = make_adapter(fake)

    with pytest.raises(PlatformUnavailable) as caught:
        await adapter.set_store_status(StoreStatusChange("open"))

    assert caught.value.retryable


# ---- test connection -----------------------------------------------------------------------------


async def test_connection_check_logs_in_and_reads_the_vendor() -> None:
    fake = FakeMiddleware()
    fake.on("GET", STORE, httpx2.Response(200, json=[vendor_state()]))
    adapter = make_adapter(fake)

    check = await adapter.test_connection()

    assert check.ok
    assert fake.logins == 1


async def test_connection_check_reports_refused_credentials() -> None:
    fake = FakeMiddleware()
    fake.on("POST", "/v2/login", httpx2.Response(401, json={"code": "AUTHENTICATION_ERROR"}))
    adapter = make_adapter(fake)

    check = await adapter.test_connection()

    assert not check.ok
    assert check.details["code"] == "platform_auth_failed"


# ---- end to end against the sandbox's Delivery Hero simulator ------------------------------------

SANDBOX = "http://sandbox.test/talabat"
PLUGIN = "http://plugin.test/callbacks/talabat"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Sandbox:
    app: Any
    clock: FrozenClock
    control: httpx2.AsyncClient
    adapter: TalabatAdapter
    callbacks: list[Received]

    async def settle(self) -> None:
        assert await self.app.state.simulators["talabat"].drain(10)

    async def calls(self, path: str) -> list[dict[str, Any]]:
        answer = await self.control.get("/__sandbox/calls", params={"limit": "1000"})
        return [call for call in answer.json()["calls"] if call["path"] == path]

    async def store(self) -> dict[str, Any]:
        answer = await self.control.get("/__sandbox/stores/vendor-1")
        assert answer.status_code == 200
        result: dict[str, Any] = answer.json()
        return result


def plugin_app(adapter: list[TalabatAdapter], received: list[Received]) -> Any:
    """The plugin side: verify, parse and answer each callback the way the intake would."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        if adapter[0].verify_webhook(headers, body):
            parsed = adapter[0].parse_webhook(headers, body)
            status = adapter[0].webhook_reply(parsed, accepted=True).status_code
        else:
            status = 401
        received.append(Received(headers, body, status))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    clock = FrozenClock()
    received: list[Received] = []
    holder: list[TalabatAdapter] = []
    plugin = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=plugin_app(holder, received)))
    settings = SandboxSettings.fast(
        clock=clock,
        talabat_plugin_secret=PLUGIN_SECRET,
        talabat_global_entities=["TB_AE", "HS_SA"],
    )
    app = create_sandbox_app(settings, http_client=plugin)
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    context = AdapterContext(
        http=PlatformHttp(client, CallLog(), clock),
        tokens=TokenCache(clock),
        clock=clock,
        callback_url=PLUGIN,
    )
    adapter = TalabatAdapter({**CONFIG, "baseUrl": SANDBOX}, context)
    holder.append(adapter)
    control = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=SANDBOX)
    try:
        yield Sandbox(app, clock, control, adapter, received)
    finally:
        await shutdown_sandbox(app)
        for http in (control, client, plugin):
            await http.aclose()


@pytest.mark.e2e
async def test_e2e_push_completes_by_callback_and_by_polling(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter
    menu = sample_menu()
    assert adapter.validate_menu(menu, None) == []
    payload = adapter.build_payload(menu, None)

    receipt = await adapter.push_menu(payload)
    await sandbox.settle()

    assert receipt.outcome == "accepted"
    messages = [adapter.parse_webhook(c.headers, c.body) for c in sandbox.callbacks]
    assert [m.event_type for m in messages] == [
        "catalog_import.in_progress",
        "catalog_import.done",
    ]
    assert {m.external_ref for m in messages} == {receipt.external_ref}
    assert len({m.event_id for m in messages}) == 2
    assert [c.status for c in sandbox.callbacks] == [200, 204]
    final = messages[-1].result
    assert final is not None
    assert final.state == "completed"
    assert receipt.external_ref is not None
    polled = await adapter.get_push_result(receipt.external_ref)
    assert polled.state == "completed"
    assert (await sandbox.store())["menu"] == payload.body["catalog"]


@pytest.mark.e2e
async def test_e2e_generated_large_menu_is_accepted(sandbox: Sandbox) -> None:
    payload = sandbox.adapter.build_payload(generate_menu(2000, seed=3), None)

    receipt = await sandbox.adapter.push_menu(payload)
    await sandbox.settle()

    assert receipt.external_ref is not None
    assert (await sandbox.adapter.get_push_result(receipt.external_ref)).state == "completed"


@pytest.mark.e2e
async def test_e2e_token_is_reused_then_refreshed_after_expiry(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter
    payload = adapter.build_payload(menu_of(cafe()), None)

    await adapter.push_menu(payload)
    await adapter.push_menu(payload)
    sandbox.clock.advance(1801)
    await adapter.push_menu(payload)
    await sandbox.settle()

    assert len(await sandbox.calls("/v2/login")) == 2


@pytest.mark.e2e
async def test_e2e_revoked_token_gets_one_refresh(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter
    payload = adapter.build_payload(menu_of(cafe()), None)
    await adapter.push_menu(payload)

    await sandbox.control.post("/__sandbox/tokens/revoke")
    receipt = await adapter.push_menu(payload)
    await sandbox.settle()

    assert receipt.outcome == "accepted"
    statuses = [c["status"] for c in await sandbox.calls("/v2/chains/chain-1/catalog")]
    assert statuses == [202, 401, 202]


@pytest.mark.e2e
async def test_e2e_the_platform_rejects_what_validation_refuses(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter
    document = cafe()
    document["modifierGroups"][0]["minSelections"] = 0
    menu = menu_of(document)
    issues = adapter.validate_menu(menu, {"wrapOptionalToppings": False})

    receipt = await adapter.push_menu(adapter.build_payload(menu, {"wrapOptionalToppings": False}))
    await sandbox.settle()

    assert paths(issues) == ["modifierGroups[0].minSelections"]
    final = adapter.parse_webhook(sandbox.callbacks[-1].headers, sandbox.callbacks[-1].body)
    assert final.result is not None
    assert final.result.state == "failed"
    assert "first-level topping" in (final.result.message or "")
    assert receipt.external_ref is not None
    assert (await adapter.get_push_result(receipt.external_ref)).state == "failed"


@pytest.mark.e2e
async def test_e2e_429_and_5xx_are_classified(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter
    payload = adapter.build_payload(menu_of(cafe()), None)
    await sandbox.control.put("/__sandbox/limits", json={"requestsPerMinute": 2})

    await adapter.push_menu(payload)  # login + push use the budget
    with pytest.raises(PlatformRateLimited) as limited:
        await adapter.push_menu(payload)
    await sandbox.control.delete("/__sandbox/limits")
    await sandbox.control.put("/__sandbox/faults", json={"errorRate": 1, "errorStatuses": [502]})
    with pytest.raises(PlatformUnavailable) as unavailable:
        await adapter.push_menu(payload)
    await sandbox.control.delete("/__sandbox/faults")
    await sandbox.settle()

    assert limited.value.retry_after is None
    assert unavailable.value.status_code == 502


@pytest.mark.e2e
async def test_e2e_forged_and_replayed_callbacks(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter
    payload = adapter.build_payload(menu_of(cafe()), None)
    await sandbox.control.put(
        "/__sandbox/faults", json={"webhook": {"badSignature": 1, "duplicate": 0}}
    )
    await adapter.push_menu(payload)
    await sandbox.settle()
    forged = list(sandbox.callbacks)
    sandbox.callbacks.clear()
    await sandbox.control.put("/__sandbox/faults", json={"webhook": {"duplicate": 1}})

    await adapter.push_menu(payload)
    await sandbox.settle()

    assert forged
    assert all(c.status == 401 for c in forged)
    event_ids = [adapter.parse_webhook(c.headers, c.body).event_id for c in sandbox.callbacks]
    assert len(event_ids) > len(set(event_ids))  # the duplicates carry the same event id


@pytest.mark.e2e
async def test_e2e_item_availability_round_trip(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter
    await adapter.push_menu(adapter.build_payload(menu_of(cafe()), None))
    await sandbox.settle()
    until = sandbox.clock.now() + timedelta(hours=2)

    result = await adapter.set_item_availability(
        [
            AvailabilityChange("latte", False, until=until),
            AvailabilityChange("venti", False, "option"),
        ]
    )

    assert result.succeeded
    unavailable = (await sandbox.store())["availability"]["unavailable"]
    assert {(u["type"], u["id"]) for u in unavailable} == {("ITEM", "latte"), ("TOPPING", "venti")}

    await sandbox.control.put(
        "/__sandbox/stores/vendor-1/platforms/TB_AE", json={"itemAvailability": "Failed"}
    )
    failed = await adapter.set_item_availability([AvailabilityChange("latte", True)])

    assert not failed.succeeded
    assert [(f["globalEntityId"], f["status"]) for f in failed.partial_failures] == [
        ("TB_AE", "Failed")
    ]


@pytest.mark.e2e
async def test_e2e_store_status_round_trip(sandbox: Sandbox) -> None:
    adapter = sandbox.adapter

    paused = await adapter.set_store_status(
        StoreStatusChange("paused", until=sandbox.clock.now() + timedelta(minutes=25))
    )

    assert paused.succeeded
    rows = (await sandbox.store())["status"]
    assert {(r["availabilityState"], r["closedReason"]) for r in rows} == {
        ("CLOSED_UNTIL", "TOO_BUSY_KITCHEN")
    }
    assert (await adapter.set_store_status(StoreStatusChange("open"))).succeeded
    assert {r["availabilityState"] for r in (await sandbox.store())["status"]} == {"OPEN"}

    await sandbox.control.put("/__sandbox/stores/vendor-1/availability-pending", json={"count": 1})
    with pytest.raises(PlatformUnavailable):
        await adapter.set_store_status(StoreStatusChange("closed"))

    await sandbox.control.post(
        "/__sandbox/stores/vendor-1/platform-closure", json={"globalEntityId": "HS_SA"}
    )
    closed = await adapter.set_store_status(StoreStatusChange("closed", reason="closed"))
    assert not closed.succeeded
    assert [f["platformKey"] for f in closed.partial_failures] == ["HS"]


@pytest.mark.e2e
async def test_e2e_test_connection(sandbox: Sandbox) -> None:
    check = await sandbox.adapter.test_connection()

    assert check.ok, check.message
