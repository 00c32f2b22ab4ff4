"""The Deliveroo adapter: payload, validation, config, HTTP behaviour and the sandbox end to end.

The golden payload is rewritten with ``MENUSYNC_UPDATE_GOLDEN=1 pytest tests/platforms/adapters/
test_deliveroo.py -k golden`` and then reviewed by hand against PLATFORMS.md section 1.3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import ValidationError

from menusync.core.clock import FrozenClock
from menusync.core.http import CallLog, PlatformHttp
from menusync.menus.canonical import CanonicalMenu
from menusync.menus.samples import generate_menu, sample_menu
from menusync.platforms.adapters.deliveroo import (
    AVAILABILITY_BATCH_SIZE,
    MAX_MENU_ITEMS,
    DeliverooAdapter,
    DeliverooConfig,
    DeliverooSyncConfig,
)
from menusync.platforms.base import (
    AdapterContext,
    AvailabilityChange,
    Capability,
    MenuPayload,
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

GOLDEN = Path(__file__).parent / "golden" / "deliveroo_sample.json"
API = "https://api.test.deliveroo"
AUTH = "https://auth.test.deliveroo"
WEBHOOK_SECRET = "whsec-menu-events"

_: type[PlatformAdapter] = DeliverooAdapter

Handler = Callable[[httpx2.Request], httpx2.Response]


def config_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "clientId": "client-1",
        "clientSecret": "api-secret",
        "webhookSecret": WEBHOOK_SECRET,
        "brandId": "ae-brand-1",
        "siteId": "100121",
        "menuId": "main",
        "market": "AE",
        "apiBaseUrl": API,
        "authBaseUrl": AUTH,
    }
    values.update(overrides)
    return values


def make_adapter(
    handler: Handler | None = None,
    clock: FrozenClock | None = None,
    *,
    client: httpx2.AsyncClient | None = None,
    **overrides: Any,
) -> DeliverooAdapter:
    clock = clock or FrozenClock()
    if client is None:
        client = httpx2.AsyncClient(
            transport=httpx2.MockTransport(handler or (lambda _r: httpx2.Response(500)))
        )
    context = AdapterContext(
        http=PlatformHttp(client, CallLog(), clock),
        tokens=TokenCache(clock),
        clock=clock,
        callback_url="https://menusync.test/api/v1/platform-sync/webhook/deliveroo",
    )
    return DeliverooAdapter(DeliverooConfig.model_validate(config_values(**overrides)), context)


def text(en: str, ar: str | None = None) -> dict[str, str]:
    return {"en": en, "ar": ar or en} if ar is not False else {"en": en}


def small_menu(**changes: Any) -> CanonicalMenu:
    """A two-item bilingual menu with one modifier group; ``changes`` patch the document."""
    document: dict[str, Any] = {
        "name": text("Main Menu", "القائمة"),
        "description": text("Grills and mezze", "مشاوي ومقبلات"),
        "currency": "AED",
        "taxRate": "5",
        "image": {"url": "https://cdn.test/cover.jpg"},
        "categories": [
            {"id": "mains", "name": text("Mains", "أطباق"), "itemIds": ["shawarma", "kebab"]},
        ],
        "items": [
            {
                "id": "shawarma",
                "name": text("Shawarma", "شاورما"),
                "price": "25.00",
                "sku": "SH-1",
                "modifierGroupIds": ["sauce"],
            },
            {"id": "kebab", "name": text("Kebab", "كباب"), "price": "30.50"},
        ],
        "modifierGroups": [
            {
                "id": "sauce",
                "name": text("Sauce", "صلصة"),
                "minSelections": 1,
                "maxSelections": 1,
                "optionIds": ["garlic", "chili"],
            }
        ],
        "modifierOptions": [
            {"id": "garlic", "name": text("Garlic", "ثوم")},
            {"id": "chili", "name": text("Chili", "شطة"), "price": "1.50"},
        ],
    }
    document.update(changes)
    return CanonicalMenu.model_validate(document)


def menu_items(payload: MenuPayload) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in payload.body["menu"]["items"]}


def token_response(token: str = "tok-1", expires_in: int = 300) -> httpx2.Response:
    return httpx2.Response(
        200, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
    )


class Platform:
    """A scripted Deliveroo: answers the token endpoint, records API requests."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.answers = list(answers)
        self.tokens_issued = 0
        self.token_requests: list[httpx2.Request] = []
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth2/token":
            self.tokens_issued += 1
            self.token_requests.append(request)
            return token_response(f"tok-{self.tokens_issued}")
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def sign(body: bytes, guid: str, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), guid.encode() + b" " + body, hashlib.sha256).hexdigest()


def upload_result_body(http_status: int = 200, errors: dict[str, Any] | None = None) -> bytes:
    result: dict[str, Any] = {
        "http_status": http_status,
        "brand_id": "ae-brand-1",
        "menu_id": "main",
        "site_ids": ["100121"],
    }
    if errors is not None:
        result["errors"] = errors
    return json.dumps(
        {"event": "menu.upload_result", "body": {"menu_upload_result": result}}
    ).encode()


# ---- adapter class ---------------------------------------------------------------------------


def test_declares_what_works_and_the_documented_limits() -> None:
    assert DeliverooAdapter.kind == "deliveroo"
    assert Capability.PARTIAL_MENU_PUSH not in DeliverooAdapter.capabilities
    assert Capability.PUSH_RESULT_WEBHOOK in DeliverooAdapter.capabilities
    assert Capability.AVAILABILITY_UNTIL not in DeliverooAdapter.capabilities
    rules = {rule.name: rule for rule in DeliverooAdapter.limits.rules}
    assert rules["deliveroo_budget"].requests == 50
    assert rules["deliveroo_budget"].scope == "platform"
    assert rules["deliveroo_menu_upload_per_site"].interval == 60
    assert rules["deliveroo_menu_upload_per_site"].operations == frozenset({"push_menu"})
    assert rules["deliveroo_unavailability_update_per_site"].interval == pytest.approx(0.1)
    assert rules["deliveroo_unavailability_replace_per_site"].interval == 60
    policy = DeliverooAdapter.retry_policy
    assert (policy.max_retries, policy.base_delay, policy.max_delay, policy.multiplier) == (
        4,
        4.0,
        240.0,
        2.0,
    )


def test_store_key_is_brand_and_site() -> None:
    assert DeliverooAdapter.store_key(config_values()) == "ae-brand-1:100121"


# ---- config ----------------------------------------------------------------------------------


def test_config_defaults_to_production_hosts() -> None:
    values = config_values()
    del values["apiBaseUrl"], values["authBaseUrl"]
    config = DeliverooConfig.model_validate(values)
    assert config.api_base_url == "https://api.developers.deliveroo.com"
    assert config.auth_base_url == "https://auth.developers.deliveroo.com"


def test_config_accepts_sandbox_prefix_and_strips_trailing_slash() -> None:
    config = DeliverooConfig.model_validate(
        config_values(apiBaseUrl="http://127.0.0.1:8000/sandbox/deliveroo/")
    )
    assert config.api_base_url == "http://127.0.0.1:8000/sandbox/deliveroo"


def test_secret_fields_are_config_fields_and_hidden() -> None:
    config = DeliverooConfig.model_validate(config_values())
    assert DeliverooAdapter.secret_fields <= set(DeliverooConfig.model_fields)
    assert "api-secret" not in repr(config)
    assert WEBHOOK_SECRET not in str(config.model_dump())


@pytest.mark.parametrize(
    "overrides",
    [
        {"clientSecret": ""},
        {"clientSecret": "   "},
        {"webhookSecret": ""},
        {"clientId": ""},
        {"clientId": "has space"},
        {"brandId": ""},
        {"brandId": "brand/../x"},
        {"siteId": "site 1"},
        {"menuId": "-leading-dash"},
        {"market": "XX"},
        {"apiBaseUrl": "ftp://api.deliveroo"},
        {"authBaseUrl": "https://auth.deliveroo?x=1"},
        {"unknownField": "x"},
    ],
)
def test_config_rejects_bad_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DeliverooConfig.model_validate(config_values(**overrides))


def test_config_requires_the_webhook_secret() -> None:
    values = config_values()
    del values["webhookSecret"]
    with pytest.raises(ValidationError):
        DeliverooConfig.model_validate(values)


def test_sync_config_rejects_bad_values() -> None:
    with pytest.raises(ValidationError):
        DeliverooSyncConfig.model_validate({"priceAdjustmentPercent": "-101"})
    with pytest.raises(ValidationError):
        DeliverooSyncConfig.model_validate({"modifierType": "free-gift"})
    with pytest.raises(ValidationError):
        DeliverooSyncConfig.model_validate({"coverImageUrl": "not a url"})


# ---- payload ---------------------------------------------------------------------------------


def test_sample_menu_payload_matches_golden() -> None:
    payload = make_adapter().build_payload(sample_menu(), {})
    rendered = json.dumps(payload.body, ensure_ascii=False, indent=2) + "\n"
    if os.environ.get("MENUSYNC_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert json.loads(rendered) == json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert payload.items_total == len(sample_menu().items)
    assert payload.is_partial is False


def test_sample_menu_passes_validation() -> None:
    issues = make_adapter().validate_menu(sample_menu(), {})
    assert [i for i in issues if i.severity == "error"] == []


def test_payload_builds_for_a_large_generated_menu() -> None:
    menu = generate_menu(5000)
    adapter = make_adapter()
    payload = adapter.build_payload(menu, {})
    assert payload.items_total == 5000
    assert [i for i in adapter.validate_menu(menu, {}) if i.severity == "error"] == []


def test_menu_over_the_item_limit_is_refused() -> None:
    menu = generate_menu(MAX_MENU_ITEMS)  # plus its modifier options: over the limit
    issues = make_adapter().validate_menu(menu, {})
    assert any(i.path == "items" and i.code == "too_many_items" for i in issues)


def test_payload_envelope_and_item_shapes() -> None:
    payload = make_adapter().build_payload(small_menu(), {})
    body = payload.body
    assert body["name"] == "Main Menu"
    assert body["site_ids"] == ["100121"]
    items = menu_items(payload)
    assert items["shawarma"] == {
        "id": "shawarma",
        "type": "ITEM",
        "name": {"en": "Shawarma", "ar": "شاورما"},
        "plu": "SH-1",
        "tax_rate": "5",
        "price_info": {"price": 2500},
        "modifier_ids": ["sauce"],
    }
    assert items["kebab"]["plu"] == "kebab"
    assert items["chili"]["type"] == "CHOICE"
    assert items["chili"]["price_info"] == {"price": 150}
    assert body["menu"]["modifiers"] == [
        {
            "id": "sauce",
            "name": {"en": "Sauce", "ar": "صلصة"},
            "min_selection": 1,
            "max_selection": 1,
            "repeatable": False,
            "item_ids": ["garlic", "chili"],
        }
    ]
    assert body["menu"]["categories"][0]["item_ids"] == ["shawarma", "kebab"]
    assert payload.items_total == 2


def test_item_ids_still_give_a_full_push() -> None:
    adapter = make_adapter()
    full = adapter.build_payload(small_menu(), {})
    partial = adapter.build_payload(small_menu(), {}, item_ids=["kebab"])
    assert partial.body == full.body
    assert partial.is_partial is False


def test_payload_is_deterministic() -> None:
    adapter = make_adapter()
    first = json.dumps(adapter.build_payload(sample_menu(), {}).body, sort_keys=False)
    second = json.dumps(adapter.build_payload(sample_menu(), {}).body, sort_keys=False)
    assert first == second


def test_kwd_prices_use_three_decimals() -> None:
    menu = small_menu(currency="KWD", taxRate="0")
    items = menu_items(make_adapter(market="KW").build_payload(menu, {}))
    assert items["kebab"]["price_info"]["price"] == 30500
    assert items["chili"]["price_info"]["price"] == 1500


def test_price_adjustment_rounds_half_up_and_spares_override_prices() -> None:
    items_doc = [
        {"id": "shawarma", "name": text("Shawarma"), "price": "10.05"},
        {
            "id": "kebab",
            "name": text("Kebab"),
            "price": "30.00",
            "platformOverrides": {"deliveroo": {"price": "33.00"}, "talabat": {"price": "1"}},
        },
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    items = menu_items(make_adapter().build_payload(menu, {"priceAdjustmentPercent": "10"}))
    assert items["shawarma"]["price_info"]["price"] == 1106  # 11.055 -> 11.06
    assert items["kebab"]["price_info"]["price"] == 3300


def test_tax_exclusive_prices_get_the_tax_added() -> None:
    menu = small_menu(pricesIncludeTax=False)
    items = menu_items(make_adapter().build_payload(menu, {}))
    assert items["shawarma"]["price_info"]["price"] == 2625


def test_tax_rate_strings_follow_item_then_menu_then_sync_config() -> None:
    items_doc = [
        {"id": "shawarma", "name": text("Shawarma"), "price": "1", "taxRate": "0"},
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    adapter = make_adapter()
    items = menu_items(adapter.build_payload(menu, {}))
    assert (items["shawarma"]["tax_rate"], items["kebab"]["tax_rate"]) == ("0", "5")
    forced = menu_items(adapter.build_payload(menu, {"taxRate": "12.50"}))
    assert forced["shawarma"]["tax_rate"] == "12.5"


def test_texts_keep_the_market_languages_in_market_order() -> None:
    menu = small_menu(
        categories=[
            {
                "id": "mains",
                "name": {"fr": "Plats", "en": "Mains", "ar": "أطباق"},
                "itemIds": ["shawarma", "kebab"],
            }
        ]
    )
    payload = make_adapter(market="KW").build_payload(menu, {})
    name = payload.body["menu"]["categories"][0]["name"]
    assert list(name.items()) == [("ar", "أطباق"), ("en", "Mains")]


def test_language_map_renames_canonical_languages() -> None:
    menu = small_menu(name={"en-GB": "Main Menu", "ar": "القائمة"})
    payload = make_adapter().build_payload(menu, {"languageMap": {"en-GB": "en"}})
    assert payload.body["menu"]["mealtimes"][0]["name"] == {"en": "Main Menu", "ar": "القائمة"}


def test_mealtime_has_cover_image_name_description_and_all_categories() -> None:
    mealtime = (
        make_adapter()
        .build_payload(small_menu(), {"mealtimeId": "lunch"})
        .body["menu"]["mealtimes"][0]
    )
    assert mealtime["id"] == "lunch"
    assert mealtime["image"] == {"url": "https://cdn.test/cover.jpg"}
    assert mealtime["description"] == {"en": "Grills and mezze", "ar": "مشاوي ومقبلات"}
    assert mealtime["category_ids"] == ["mains"]


def test_empty_schedule_means_every_day_all_day() -> None:
    schedule = (
        make_adapter().build_payload(small_menu(), {}).body["menu"]["mealtimes"][0]["schedule"]
    )
    assert [d["day_of_week"] for d in schedule] == [0, 1, 2, 3, 4, 5, 6]
    assert schedule[0]["time_periods"] == [{"start": "00:00", "end": "23:59"}]


def test_schedule_uses_monday_zero_and_splits_ranges_past_midnight() -> None:
    menu = small_menu(
        schedule=[
            {"days": ["monday"], "ranges": [{"start": "11:00", "end": "15:00"}]},
            {"days": ["sunday"], "ranges": [{"start": "18:00", "end": "02:00"}]},
        ]
    )
    schedule = make_adapter().build_payload(menu, {}).body["menu"]["mealtimes"][0]["schedule"]
    assert schedule == [
        {
            "day_of_week": 0,
            "time_periods": [
                {"start": "00:00", "end": "02:00"},
                {"start": "11:00", "end": "15:00"},
            ],
        },
        {"day_of_week": 6, "time_periods": [{"start": "18:00", "end": "23:59"}]},
    ]


def test_hidden_item_is_left_out_and_an_emptied_category_too() -> None:
    menu = small_menu(
        categories=[
            {"id": "mains", "name": text("Mains"), "itemIds": ["shawarma"]},
            {"id": "grill", "name": text("Grills"), "itemIds": ["kebab"]},
        ],
        items=[
            {"id": "shawarma", "name": text("Shawarma"), "price": "1"},
            {
                "id": "kebab",
                "name": text("Kebab"),
                "price": "1",
                "platformOverrides": {"deliveroo": {"isVisible": False}},
            },
        ],
        modifierGroups=[],
        modifierOptions=[],
    )
    body = make_adapter().build_payload(menu, {}).body
    assert [i["id"] for i in body["menu"]["items"]] == ["shawarma"]
    assert [c["id"] for c in body["menu"]["categories"]] == ["mains"]
    assert body["menu"]["mealtimes"][0]["category_ids"] == ["mains"]


def test_hidden_option_is_left_out_of_its_modifier() -> None:
    options = [
        {"id": "garlic", "name": text("Garlic")},
        {
            "id": "chili",
            "name": text("Chili"),
            "platformOverrides": {"deliveroo": {"isVisible": False}},
        },
    ]
    payload = make_adapter().build_payload(small_menu(modifierOptions=options), {})
    assert payload.body["menu"]["modifiers"][0]["item_ids"] == ["garlic"]
    assert "chili" not in menu_items(payload)


def test_unavailable_item_is_still_sent() -> None:
    items_doc = [
        {"id": "shawarma", "name": text("Shawarma"), "price": "1", "isAvailable": False},
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert "shawarma" in menu_items(make_adapter().build_payload(menu, {}))


def test_override_name_and_alcohol_flag() -> None:
    items_doc = [
        {
            "id": "shawarma",
            "name": text("Shawarma"),
            "price": "1",
            "containsAlcohol": True,
            "platformOverrides": {"deliveroo": {"name": text("Roo Shawarma")}},
        },
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    item = menu_items(make_adapter().build_payload(menu, {}))["shawarma"]
    assert item["name"]["en"] == "Roo Shawarma"
    assert item["contains_alcohol"] is True


def test_nested_modifiers_hang_from_choice_items() -> None:
    menu = small_menu(
        modifierGroups=[
            {"id": "sauce", "name": text("Sauce"), "optionIds": ["garlic", "chili"]},
            {"id": "heat", "name": text("Heat"), "optionIds": ["mild", "hot"]},
        ],
        modifierOptions=[
            {"id": "garlic", "name": text("Garlic")},
            {"id": "chili", "name": text("Chili"), "modifierGroupIds": ["heat"]},
            {"id": "mild", "name": text("Mild")},
            {"id": "hot", "name": text("Hot")},
        ],
    )
    payload = make_adapter().build_payload(menu, {"modifierType": "add-ingredient"})
    assert menu_items(payload)["chili"]["modifier_ids"] == ["heat"]
    assert [m["id"] for m in payload.body["menu"]["modifiers"]] == ["sauce", "heat"]
    assert {m["type"] for m in payload.body["menu"]["modifiers"]} == {"add-ingredient"}


def test_sub_categories_follow_their_parent_as_flat_categories() -> None:
    menu = small_menu(
        categories=[
            {"id": "mains", "name": text("Mains"), "itemIds": ["shawarma"]},
            {"id": "drinks", "name": text("Drinks"), "itemIds": []},
            {"id": "wraps", "name": text("Wraps"), "parentId": "mains", "itemIds": ["kebab"]},
        ]
    )
    body = make_adapter().build_payload(menu, {}).body
    assert [c["id"] for c in body["menu"]["categories"]] == ["mains", "wraps"]


# ---- validation: one rule each ---------------------------------------------------------------


def issue_paths(menu: CanonicalMenu, sync: dict[str, Any] | None = None, **config: Any) -> set[str]:
    issues = make_adapter(**config).validate_menu(menu, sync or {})
    return {i.path for i in issues if i.severity == "error"}


def warning_paths(menu: CanonicalMenu, sync: dict[str, Any] | None = None) -> set[str]:
    issues = make_adapter().validate_menu(menu, sync or {})
    return {i.path for i in issues if i.severity == "warning"}


def test_valid_small_menu_has_no_issue() -> None:
    assert make_adapter().validate_menu(small_menu(), {}) == []


def test_mealtime_without_cover_image_is_refused() -> None:
    menu = small_menu(image=None)
    assert issue_paths(menu) == {"image"}
    assert issue_paths(menu, {"coverImageUrl": "https://cdn.test/c.jpg"}) == set()


def test_menu_with_no_visible_item_is_refused() -> None:
    items_doc = [
        {
            "id": item_id,
            "name": text(item_id.title()),
            "price": "1",
            "platformOverrides": {"deliveroo": {"isVisible": False}},
        }
        for item_id in ("shawarma", "kebab")
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert "items" in issue_paths(menu)


def test_category_name_shorter_than_three_characters_is_refused() -> None:
    menu = small_menu(
        categories=[{"id": "mains", "name": text("Go", "أطباق"), "itemIds": ["shawarma", "kebab"]}]
    )
    assert issue_paths(menu) == {"categories[0].name.en"}


def test_category_description_over_255_characters_is_refused() -> None:
    menu = small_menu(
        categories=[
            {
                "id": "mains",
                "name": text("Mains"),
                "description": text("x" * 256, "وصف"),
                "itemIds": ["shawarma", "kebab"],
            }
        ]
    )
    assert issue_paths(menu) == {"categories[0].description.en"}


def test_item_name_over_120_characters_is_refused() -> None:
    items_doc = [
        {"id": "shawarma", "name": text("S" * 121, "شاورما"), "price": "1"},
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert issue_paths(menu) == {"items[0].name.en"}


def test_override_name_is_checked_where_it_is_written() -> None:
    items_doc = [
        {
            "id": "shawarma",
            "name": text("Shawarma"),
            "price": "1",
            "platformOverrides": {"deliveroo": {"name": {"en": "S", "ar": "شاورما"}}},
        },
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert issue_paths(menu) == {"items[0].platformOverrides.deliveroo.name.en"}


def test_item_description_over_500_characters_is_refused() -> None:
    items_doc = [
        {"id": "shawarma", "name": text("Shawarma"), "price": "1"},
        {
            "id": "kebab",
            "name": text("Kebab"),
            "price": "1",
            "description": text("d" * 501, "وصف"),
        },
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert issue_paths(menu) == {"items[1].description.en"}


def test_menu_description_over_500_characters_is_refused() -> None:
    menu = small_menu(description=text("d" * 501, "وصف"))
    assert issue_paths(menu) == {"description.en"}


def test_option_name_shorter_than_two_characters_is_refused() -> None:
    options = [{"id": "garlic", "name": text("G", "ثوم")}, {"id": "chili", "name": text("Chili")}]
    assert issue_paths(small_menu(modifierOptions=options)) == {"modifierOptions[0].name.en"}


def test_item_tax_rate_not_accepted_in_the_market_is_refused() -> None:
    items_doc = [
        {"id": "shawarma", "name": text("Shawarma"), "price": "1", "taxRate": "20"},
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert issue_paths(menu) == {"items[0].taxRate"}


def test_menu_tax_rate_not_accepted_in_the_market_is_refused() -> None:
    assert issue_paths(small_menu(), market="KW") == {"taxRate"}


def test_sync_config_tax_rate_not_accepted_in_the_market_is_refused() -> None:
    assert issue_paths(small_menu(), {"taxRate": "7"}) == {"syncConfig.taxRate"}


def test_more_than_100_categories_is_refused() -> None:
    categories = [
        {"id": f"cat-{n:03d}", "name": text(f"Category {n}"), "itemIds": ["shawarma"]}
        for n in range(101)
    ]
    categories[0]["itemIds"] = ["shawarma", "kebab"]
    assert "categories" in issue_paths(small_menu(categories=categories))


def test_text_in_no_market_language_is_refused() -> None:
    items_doc = [
        {"id": "shawarma", "name": {"fr": "Chawarma"}, "price": "1"},
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert issue_paths(menu) == {"items[0].name"}


def test_missing_market_language_is_a_warning() -> None:
    items_doc = [
        {"id": "shawarma", "name": {"en": "Shawarma"}, "price": "1"},
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert issue_paths(menu) == set()
    assert warning_paths(menu) == {"items[0].name.ar"}


def test_required_group_with_every_option_hidden_is_refused() -> None:
    options = [
        {
            "id": option_id,
            "name": text(option_id.title()),
            "platformOverrides": {"deliveroo": {"isVisible": False}},
        }
        for option_id in ("garlic", "chili")
    ]
    assert issue_paths(small_menu(modifierOptions=options)) == {"modifierGroups[0].optionIds"}


def test_min_selections_above_the_visible_options_is_refused() -> None:
    groups = [
        {
            "id": "sauce",
            "name": text("Sauce"),
            "minSelections": 2,
            "maxSelections": 2,
            "optionIds": ["garlic", "chili"],
        }
    ]
    options = [
        {"id": "garlic", "name": text("Garlic")},
        {
            "id": "chili",
            "name": text("Chili"),
            "platformOverrides": {"deliveroo": {"isVisible": False}},
        },
    ]
    menu = small_menu(modifierGroups=groups, modifierOptions=options)
    assert issue_paths(menu) == {"modifierGroups[0].minSelections"}


def test_item_schedule_is_a_warning() -> None:
    items_doc = [
        {
            "id": "shawarma",
            "name": text("Shawarma"),
            "price": "1",
            "schedule": [{"days": ["monday"], "ranges": [{"start": "08:00", "end": "11:00"}]}],
        },
        {"id": "kebab", "name": text("Kebab"), "price": "1"},
    ]
    menu = small_menu(items=items_doc, modifierGroups=[], modifierOptions=[])
    assert warning_paths(menu) == {"items[0].schedule"}


def test_canonical_inconsistencies_are_reported_with_their_path() -> None:
    menu = small_menu(
        categories=[
            {"id": "mains", "name": text("Mains"), "itemIds": ["shawarma", "kebab", "ghost"]}
        ]
    )
    assert issue_paths(menu) == {"categories[0].itemIds[2]"}


def test_modifier_min_above_max_is_refused() -> None:
    groups = [
        {
            "id": "sauce",
            "name": text("Sauce"),
            "minSelections": 2,
            "maxSelections": 1,
            "optionIds": ["garlic", "chili"],
        }
    ]
    assert "modifierGroups[0].minSelections" in issue_paths(small_menu(modifierGroups=groups))


# ---- HTTP: auth --------------------------------------------------------------------------------


async def test_token_request_uses_basic_auth_and_client_credentials() -> None:
    platform = Platform(httpx2.Response(200, json={}))
    await make_adapter(platform).push_menu(MenuPayload(body={"x": 1}, items_total=1))
    request = platform.token_requests[0]
    assert str(request.url) == f"{AUTH}/oauth2/token"
    expected = base64.b64encode(b"client-1:api-secret").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.content == b"grant_type=client_credentials"
    assert platform.requests[0].headers["authorization"] == "Bearer tok-1"


async def test_token_is_cached_and_refreshed_before_expiry() -> None:
    clock = FrozenClock()
    platform = Platform(httpx2.Response(200, json={}))
    adapter = make_adapter(platform, clock)
    payload = MenuPayload(body={}, items_total=0)
    await adapter.push_menu(payload)
    clock.advance(200)
    await adapter.push_menu(payload)
    assert platform.tokens_issued == 1
    clock.advance(80)  # 280 s after issue: inside the refresh margin of a 300 s token
    await adapter.push_menu(payload)
    assert platform.tokens_issued == 2
    assert platform.requests[-1].headers["authorization"] == "Bearer tok-2"


async def test_a_401_gets_one_token_refresh_and_one_retry() -> None:
    platform = Platform(
        httpx2.Response(401, json={"error": {"code": "unauthorized", "message": "expired"}}),
        httpx2.Response(200, json={}),
    )
    receipt = await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert receipt.outcome == "accepted"
    assert platform.tokens_issued == 2
    assert [r.headers["authorization"] for r in platform.requests] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]


async def test_a_second_401_is_an_auth_error() -> None:
    platform = Platform(
        httpx2.Response(401, json={"error": {"code": "unauthorized", "message": "disabled"}})
    )
    with pytest.raises(PlatformAuthError) as caught:
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert caught.value.platform_code == "unauthorized"
    assert platform.tokens_issued == 2
    assert len(platform.requests) == 2


async def test_rejected_client_credentials_are_an_auth_error() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"error": "invalid_client"})

    with pytest.raises(PlatformAuthError) as caught:
        await make_adapter(handler).push_menu(MenuPayload(body={}, items_total=0))
    assert caught.value.platform_code == "invalid_client"


async def test_token_answer_without_access_token_is_a_contract_error() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"token_type": "Bearer"})

    with pytest.raises(PlatformContractError):
        await make_adapter(handler).push_menu(MenuPayload(body={}, items_total=0))


# ---- HTTP: error classification -------------------------------------------------------------


async def test_429_without_retry_after_is_rate_limited_with_no_hint() -> None:
    platform = Platform(
        httpx2.Response(429, json={"error": {"code": "too_many_requests", "message": "slow"}})
    )
    with pytest.raises(PlatformRateLimited) as caught:
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert caught.value.retry_after is None
    assert caught.value.platform_code == "too_many_requests"


async def test_429_with_retry_after_keeps_it() -> None:
    platform = Platform(httpx2.Response(429, headers={"Retry-After": "42"}, text="slow down"))
    with pytest.raises(PlatformRateLimited) as caught:
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert caught.value.retry_after == 42.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable_with_the_platform_code(status: int) -> None:
    platform = Platform(
        httpx2.Response(status, json={"error": {"code": "bad_gateway", "message": "try again"}})
    )
    with pytest.raises(PlatformUnavailable) as caught:
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert caught.value.status_code == status
    assert caught.value.platform_code == "bad_gateway"
    assert caught.value.counts_for_breaker is True


@pytest.mark.parametrize(
    "error",
    [
        httpx2.ReadTimeout("read timed out"),
        httpx2.ConnectTimeout("connect timed out"),
        httpx2.ConnectError("connection refused"),
        httpx2.RemoteProtocolError("connection reset"),
    ],
)
async def test_timeouts_and_connection_errors_are_unavailable(error: Exception) -> None:
    platform = Platform(error)
    with pytest.raises(PlatformUnavailable):
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))


async def test_400_is_rejected_with_the_platform_issue_kept() -> None:
    platform = Platform(
        httpx2.Response(
            400, json={"error": {"code": "bad_request", "message": "site_ids: cannot be blank"}}
        )
    )
    with pytest.raises(PlatformRejected) as caught:
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert caught.value.platform_code == "bad_request"
    assert caught.value.issues == [
        {"path": "menu", "message": "site_ids: cannot be blank", "code": "bad_request"}
    ]
    assert caught.value.details["httpStatus"] == 400


async def test_404_is_not_found() -> None:
    platform = Platform(
        httpx2.Response(404, json={"error": {"code": "not_found", "message": "no site"}})
    )
    with pytest.raises(PlatformNotFound) as caught:
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert caught.value.platform_code == "not_found"


# ---- push, poll, webhook --------------------------------------------------------------------


async def test_push_puts_the_body_to_the_brand_menu_and_is_accepted() -> None:
    platform = Platform(httpx2.Response(200, json={}))
    adapter = make_adapter(platform)
    payload = adapter.build_payload(small_menu(), {})
    receipt = await adapter.push_menu(payload)
    request = platform.requests[0]
    assert (request.method, str(request.url)) == (
        "PUT",
        f"{API}/menu/v1/brands/ae-brand-1/menus/main",
    )
    assert json.loads(request.content) == payload.body
    assert receipt.outcome == "accepted"
    assert receipt.external_ref == "ae-brand-1/main"


async def test_push_with_an_empty_answer_is_accepted() -> None:
    receipt = await make_adapter(Platform(httpx2.Response(200))).push_menu(
        MenuPayload(body={}, items_total=0)
    )
    assert receipt.outcome == "accepted"


async def test_match_existing_menu_is_unchanged() -> None:
    platform = Platform(httpx2.Response(200, json={"result": "MATCH_EXISTING_MENU"}))
    receipt = await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))
    assert receipt.outcome == "unchanged"
    assert receipt.external_ref == "ae-brand-1/main"


async def test_push_answer_that_is_not_json_is_a_contract_error() -> None:
    platform = Platform(httpx2.Response(200, text="<html>oops</html>"))
    with pytest.raises(PlatformContractError):
        await make_adapter(platform).push_menu(MenuPayload(body={}, items_total=0))


async def test_poll_is_pending_while_the_menu_is_not_live() -> None:
    platform = Platform(
        httpx2.Response(404, json={"error": {"code": "not_found", "message": "menu"}})
    )
    result = await make_adapter(platform).get_push_result("ae-brand-1/main")
    assert result.state == "pending"
    assert str(platform.requests[0].url) == f"{API}/menu/v1/brands/ae-brand-1/menus/main"


async def test_poll_completes_when_the_live_menu_is_the_pushed_one() -> None:
    adapter = make_adapter(Platform(httpx2.Response(200, json={})))
    payload = adapter.build_payload(small_menu(), {})
    platform = Platform(httpx2.Response(200, json={}), httpx2.Response(200, json=payload.body))
    adapter = make_adapter(platform)
    receipt = await adapter.push_menu(payload)
    assert receipt.external_ref is not None
    result = await adapter.get_push_result(receipt.external_ref, payload)
    assert result.state == "completed"


async def test_poll_without_the_pushed_payload_stays_pending() -> None:
    adapter = make_adapter(Platform(httpx2.Response(200, json={})))
    payload = adapter.build_payload(small_menu(), {})
    adapter = make_adapter(Platform(httpx2.Response(200, json=payload.body)))

    assert (await adapter.get_push_result("ae-brand-1/main")).state == "pending"


async def test_poll_stays_pending_while_an_older_menu_is_live() -> None:
    adapter = make_adapter(Platform(httpx2.Response(200, json={})))
    payload = adapter.build_payload(small_menu(), {})
    older = {"name": "old", "menu": {"items": []}, "site_ids": ["100121"]}
    platform = Platform(httpx2.Response(200, json={}), httpx2.Response(200, json=older))
    adapter = make_adapter(platform)
    await adapter.push_menu(payload)
    assert (await adapter.get_push_result("ae-brand-1/main", payload)).state == "pending"


async def test_poll_with_a_foreign_reference_is_a_contract_error() -> None:
    with pytest.raises(PlatformContractError):
        await make_adapter().get_push_result("not-a-ref")


def test_successful_upload_result_webhook_parses_as_completed() -> None:
    body = upload_result_body()
    message = make_adapter().parse_webhook({"X-Deliveroo-Sequence-Guid": "guid-1"}, body)
    assert message.event_id == "guid-1"
    assert message.event_type == "menu.upload_result"
    assert message.external_ref == "ae-brand-1/main"
    assert message.store_ref == DeliverooAdapter.store_key(config_values())
    assert message.result is not None
    assert message.result.state == "completed"


def test_failed_upload_result_webhook_keeps_the_platform_issues() -> None:
    body = upload_result_body(
        400,
        {
            "processing": "mealtimes: cannot be blank",
            "images": [{"url": "https://cdn.test/x.jpg", "message": "too small"}],
        },
    )
    message = make_adapter().parse_webhook({"x-deliveroo-sequence-guid": "guid-2"}, body)
    assert message.result is not None
    assert message.result.state == "failed"
    assert [(i.path, i.message) for i in message.result.issues] == [
        ("menu", "mealtimes: cannot be blank"),
        ("image:https://cdn.test/x.jpg", "too small"),
    ]
    assert message.result.details["httpStatus"] == 400


def test_other_events_parse_without_a_result() -> None:
    body = json.dumps({"event": "menu.something_else", "body": {}}).encode()
    message = make_adapter().parse_webhook({"X-Deliveroo-Sequence-Guid": "g"}, body)
    assert (message.event_type, message.result, message.external_ref) == (
        "menu.something_else",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, upload_result_body()),
        ({"X-Deliveroo-Sequence-Guid": "g"}, b"not json"),
        ({"X-Deliveroo-Sequence-Guid": "g"}, b'{"event": "menu.upload_result", "body": {}}'),
        ({"X-Deliveroo-Sequence-Guid": "g"}, b"[1, 2]"),
    ],
)
def test_malformed_webhooks_are_contract_errors(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(PlatformContractError):
        make_adapter().parse_webhook(headers, body)


def test_webhook_signed_with_the_webhook_secret_is_verified() -> None:
    body = upload_result_body()
    headers = {"X-Deliveroo-Sequence-Guid": "g-1", "X-Deliveroo-Hmac-Sha256": sign(body, "g-1")}
    assert make_adapter().verify_webhook(headers, body) is True


def test_webhook_headers_are_read_in_any_case() -> None:
    body = upload_result_body()
    headers = {"x-deliveroo-sequence-guid": "g-1", "X-DELIVEROO-HMAC-SHA256": sign(body, "g-1")}
    assert make_adapter().verify_webhook(headers, body) is True


def test_forged_webhook_is_refused() -> None:
    body = upload_result_body()
    forged = {
        "X-Deliveroo-Sequence-Guid": "g-1",
        "X-Deliveroo-Hmac-Sha256": sign(body, "g-1", secret="api-secret"),
    }
    assert make_adapter().verify_webhook(forged, body) is False


def test_tampered_webhook_body_is_refused() -> None:
    body = upload_result_body()
    headers = {"X-Deliveroo-Sequence-Guid": "g-1", "X-Deliveroo-Hmac-Sha256": sign(body, "g-1")}
    assert make_adapter().verify_webhook(headers, body.replace(b"200", b"400")) is False


def test_webhook_signature_covers_the_sequence_guid() -> None:
    body = upload_result_body()
    headers = {"X-Deliveroo-Sequence-Guid": "g-2", "X-Deliveroo-Hmac-Sha256": sign(body, "g-1")}
    assert make_adapter().verify_webhook(headers, body) is False


def test_unsigned_webhook_is_refused() -> None:
    assert make_adapter().verify_webhook({"X-Deliveroo-Sequence-Guid": "g"}, b"{}") is False


def test_webhook_reply_stops_redelivery_only_when_accepted() -> None:
    adapter = make_adapter()
    assert adapter.webhook_reply(None, accepted=True).status_code == 200
    assert not 200 <= adapter.webhook_reply(None, accepted=False).status_code < 300


# ---- availability and store status ----------------------------------------------------------


async def test_availability_uses_the_partial_site_form_in_batches() -> None:
    platform = Platform(httpx2.Response(200, json={"unavailable_ids": [], "hidden_ids": []}))
    changes = [AvailabilityChange(f"item-{n:03d}", is_available=n % 2 == 0) for n in range(250)]
    result = await make_adapter(platform).set_item_availability(changes)
    assert result.succeeded is True
    assert result.items_processed == 250
    url = f"{API}/menu/v2/brands/ae-brand-1/sites/100121/menu/item_unavailabilities"
    assert {(r.method, str(r.url)) for r in platform.requests} == {("POST", url)}
    batches = [body["item_unavailabilities"] for body in platform.bodies()]
    assert [len(b) for b in batches] == [AVAILABILITY_BATCH_SIZE, AVAILABILITY_BATCH_SIZE, 50]
    assert batches[0][:2] == [
        {"item_id": "item-000", "status": "available"},
        {"item_id": "item-001", "status": "unavailable"},
    ]


async def test_availability_sends_the_last_change_per_item_once() -> None:
    platform = Platform(httpx2.Response(200, json={}))
    changes = [
        AvailabilityChange("garlic", is_available=False, kind="option"),
        AvailabilityChange("garlic", is_available=True, kind="option"),
    ]
    await make_adapter(platform).set_item_availability(changes)
    assert platform.bodies() == [
        {"item_unavailabilities": [{"item_id": "garlic", "status": "available"}]}
    ]


async def test_availability_for_an_unknown_item_is_not_found() -> None:
    platform = Platform(
        httpx2.Response(404, json={"error": {"code": "not_found", "message": "item x"}})
    )
    with pytest.raises(PlatformNotFound):
        await make_adapter(platform).set_item_availability([AvailabilityChange("x", False)])


@pytest.mark.parametrize(("state", "status"), [("open", "OPEN"), ("closed", "CLOSED")])
async def test_store_status_puts_the_site_status(state: str, status: str) -> None:
    platform = Platform(httpx2.Response(200, json={"status": status}))
    result = await make_adapter(platform).set_store_status(StoreStatusChange(state=state))  # type: ignore[arg-type]
    request = platform.requests[0]
    assert (request.method, str(request.url)) == (
        "PUT",
        f"{API}/site/v1/brands/ae-brand-1/sites/100121/status",
    )
    assert json.loads(request.content) == {"status": status}
    assert result.succeeded is True


async def test_opening_outside_opening_hours_is_rejected_with_the_reason() -> None:
    message = "Unable to open restaurant, reason: OPENING_HOURS"
    platform = Platform(
        httpx2.Response(400, json={"error": {"code": "bad_request", "message": message}})
    )
    with pytest.raises(PlatformRejected) as caught:
        await make_adapter(platform).set_store_status(StoreStatusChange(state="open"))
    assert caught.value.issues == [{"path": "status", "message": message, "code": "OPENING_HOURS"}]


async def test_timed_pause_is_refused_without_a_call() -> None:
    platform = Platform(httpx2.Response(200, json={}))
    until = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    with pytest.raises(PlatformRejected):
        await make_adapter(platform).set_store_status(
            StoreStatusChange(state="paused", until=until)
        )
    assert platform.requests == []


async def test_connection_check_reads_the_site_status_with_a_short_timeout() -> None:
    platform = Platform(httpx2.Response(200, json={"status": "OPEN"}))
    check = await make_adapter(platform).test_connection()
    assert check.ok is True
    timeout = platform.requests[0].extensions["timeout"]
    assert timeout["read"] == 10.0


async def test_connection_check_reports_bad_credentials() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"error": "invalid_client"})

    check = await make_adapter(handler).test_connection()
    assert check.ok is False
    assert check.details["code"] == "platform_auth_failed"


# ---- end to end against the sandbox ---------------------------------------------------------


class Receiver:
    """Captures the webhooks the sandbox sends, answering 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.received.append((dict(request.headers), request.content))
        return httpx2.Response(200)


class Sandbox:
    def __init__(self, app: Any, client: httpx2.AsyncClient, receiver: Receiver, clock: Any):
        self.app = app
        self.client = client
        self.receiver = receiver
        self.clock = clock

    async def settle(self) -> None:
        response = await self.client.post("/__sandbox/settle", params={"timeout": "10"})
        assert response.json() == {"settled": True}

    async def advance(self, seconds: float) -> None:
        response = await self.client.post("/__sandbox/clock", json={"advanceSeconds": seconds})
        assert response.status_code == 200, response.text


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sandbox_app = pytest.importorskip("menusync.sandbox.deliveroo")
    settings_module = pytest.importorskip("menusync.sandbox.settings")
    receiver = Receiver()
    clock = settings_module.ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # 13:00 Dubai
    settings = settings_module.SandboxSettings.fast(
        deliveroo_webhook_url="https://menusync.test/webhook",
        deliveroo_webhook_secret=WEBHOOK_SECRET,
        clock=clock,
    )
    hook_client = httpx2.AsyncClient(transport=httpx2.MockTransport(receiver))
    app = sandbox_app.create_app(settings, http_client=hook_client)
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://sandbox")
    async with client, hook_client:
        yield Sandbox(app, client, receiver, clock)
        await app.state.simulator.aclose()


def sandbox_adapter(sandbox: Sandbox, clock: FrozenClock | None = None) -> DeliverooAdapter:
    return make_adapter(
        client=sandbox.client,
        clock=clock,
        apiBaseUrl="http://sandbox",
        authBaseUrl="http://sandbox",
    )


@pytest.mark.e2e
async def test_e2e_sample_menu_push_completes_by_webhook(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    payload = adapter.build_payload(sample_menu(), {})
    receipt = await adapter.push_menu(payload)
    assert receipt.outcome == "accepted"
    await sandbox.settle()
    headers, body = sandbox.receiver.received[-1]
    assert adapter.verify_webhook(headers, body) is True
    message = adapter.parse_webhook(headers, body)
    assert message.external_ref == receipt.external_ref
    assert message.result is not None
    assert message.result.state == "completed", message.result.issues


@pytest.mark.e2e
async def test_e2e_push_completes_by_polling(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    payload = adapter.build_payload(small_menu(), {})
    receipt = await adapter.push_menu(payload)
    assert receipt.external_ref is not None
    await sandbox.settle()
    assert (await adapter.get_push_result(receipt.external_ref, payload)).state == "completed"


@pytest.mark.e2e
async def test_e2e_same_menu_again_is_unchanged(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    payload = adapter.build_payload(small_menu(), {})
    await adapter.push_menu(payload)
    await sandbox.settle()
    await sandbox.advance(61)
    assert (await adapter.push_menu(payload)).outcome == "unchanged"


@pytest.mark.e2e
async def test_e2e_second_upload_within_a_minute_is_rate_limited(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    await adapter.push_menu(adapter.build_payload(small_menu(), {}))
    with pytest.raises(PlatformRateLimited) as caught:
        await adapter.push_menu(adapter.build_payload(sample_menu(), {}))
    assert caught.value.retry_after is None


@pytest.mark.e2e
async def test_e2e_invalid_menu_fails_asynchronously_with_issues(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    payload = adapter.build_payload(small_menu(), {})
    payload.body["menu"]["items"][0]["tax_rate"] = "20"  # not accepted in AE
    await adapter.push_menu(payload)
    await sandbox.settle()
    headers, body = sandbox.receiver.received[-1]
    message = adapter.parse_webhook(headers, body)
    assert message.result is not None
    assert message.result.state == "failed"
    assert any("tax_rate" in issue.message for issue in message.result.issues)


@pytest.mark.e2e
async def test_e2e_server_errors_are_unavailable(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    await adapter.test_connection()  # token first, so only the API call meets the fault
    await sandbox.client.put("/__sandbox/faults", json={"errorRate": 1, "errorStatuses": [503]})
    with pytest.raises(PlatformUnavailable):
        await adapter.push_menu(adapter.build_payload(small_menu(), {}))


@pytest.mark.e2e
async def test_e2e_token_is_refreshed_after_expiry_and_after_revocation(sandbox: Sandbox) -> None:
    clock = FrozenClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    adapter = sandbox_adapter(sandbox, clock)
    assert (await adapter.test_connection()).ok is True
    clock.advance(301)
    await sandbox.advance(301)
    assert (await adapter.test_connection()).ok is True
    await sandbox.client.post("/__sandbox/tokens/revoke")
    assert (await adapter.test_connection()).ok is True
    calls = (await sandbox.client.get("/__sandbox/calls", params={"limit": "50"})).json()
    entries = calls["calls"] if isinstance(calls, dict) else calls
    token_calls = [c for c in entries if c["path"].endswith("/oauth2/token")]
    assert len(token_calls) == 3


@pytest.mark.e2e
async def test_e2e_availability_after_the_upload_result(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    await adapter.push_menu(adapter.build_payload(small_menu(), {}))
    await sandbox.settle()
    result = await adapter.set_item_availability(
        [AvailabilityChange("kebab", is_available=False), AvailabilityChange("chili", False)]
    )
    assert result.succeeded is True
    store = (await sandbox.client.get("/__sandbox/stores/100121")).json()
    assert store["availability"]["unavailable_ids"] == ["chili", "kebab"]
    await sandbox.advance(1)  # one partial update per 100 ms per site
    with pytest.raises(PlatformNotFound):
        await adapter.set_item_availability([AvailabilityChange("ghost", is_available=False)])


@pytest.mark.e2e
async def test_e2e_store_close_and_reopen(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    await adapter.set_store_status(StoreStatusChange(state="closed"))
    store = (await sandbox.client.get("/__sandbox/stores/100121")).json()
    assert store["status"] == "CLOSED"
    await adapter.set_store_status(StoreStatusChange(state="open"))
    store = (await sandbox.client.get("/__sandbox/stores/100121")).json()
    assert store["status"] == "OPEN"


@pytest.mark.e2e
async def test_e2e_forged_webhook_from_the_sandbox_is_refused(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    await sandbox.client.put("/__sandbox/faults", json={"webhook": {"badSignature": 1}})
    await adapter.push_menu(adapter.build_payload(small_menu(), {}))
    await sandbox.settle()
    headers, body = sandbox.receiver.received[0]
    assert adapter.verify_webhook(headers, body) is False


@pytest.mark.e2e
async def test_e2e_redelivered_webhook_keeps_its_event_id(sandbox: Sandbox) -> None:
    adapter = sandbox_adapter(sandbox)
    await sandbox.client.put("/__sandbox/faults", json={"webhook": {"duplicate": 1}})
    await adapter.push_menu(adapter.build_payload(small_menu(), {}))
    await sandbox.settle()
    messages = [adapter.parse_webhook(h, b) for h, b in sandbox.receiver.received]
    assert len(messages) >= 2
    assert len({m.event_id for m in messages}) == 1
