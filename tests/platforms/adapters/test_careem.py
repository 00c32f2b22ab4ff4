"""The Careem adapter: configuration, payload, validation, HTTP behaviour (MockTransport) and,
when the sandbox is there, end to end against the Careem simulator.

Regenerate the golden payload with ``CAREEM_UPDATE_GOLDEN=1 pytest tests/platforms/adapters/
test_careem.py -k golden`` and review the diff against PLATFORMS.md section 3 before committing.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import ValidationError

from menusync.core.clock import FrozenClock
from menusync.core.http import CallLog, PlatformHttp
from menusync.menus.canonical import CanonicalMenu
from menusync.menus.samples import generate_menu, sample_menu
from menusync.platforms.adapters.careem import (
    CURRENCY_IDS,
    CareemAdapter,
    CareemConfig,
    CareemSyncConfig,
    careem_day_of_week,
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
    PlatformBusy,
    PlatformContractError,
    PlatformNotFound,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from menusync.platforms.tokens import TokenCache

GOLDEN = Path(__file__).parent / "golden" / "careem_sample.json"
API = "https://apigateway.careemdash.com/pos/api/v1"
IDENTITY = "https://identity.careem.com"
WEBHOOK_KEY = "shared-webhook-key-123"

_protocol_check: type[PlatformAdapter] = CareemAdapter


def make_config(**overrides: Any) -> CareemConfig:
    values: dict[str, Any] = {
        "clientId": "pos-client",
        "clientSecret": "pos-secret",
        "brandId": "beit-zaatar",
        "branchId": "bz-jlt",
        "webhookApiKey": WEBHOOK_KEY,
    }
    values.update(overrides)
    return CareemConfig.model_validate(values)


def small_menu(**changes: Any) -> CanonicalMenu:
    """A two-item menu; ``changes`` replace top-level document keys."""
    document: dict[str, Any] = {
        "name": {"en": "Small menu", "ar": "قائمة صغيرة"},
        "currency": "AED",
        "taxRate": "5",
        "categories": [
            {"id": "mains", "name": {"en": "Mains", "ar": "رئيسي"}, "itemIds": ["wrap", "plate"]}
        ],
        "items": [
            {"id": "wrap", "name": {"en": "Wrap", "ar": "لفافة"}, "price": "12.50"},
            {
                "id": "plate",
                "name": {"en": "Plate", "ar": "صحن"},
                "price": "30.00",
                "modifierGroupIds": ["side"],
            },
        ],
        "modifierGroups": [
            {
                "id": "side",
                "name": {"en": "Side", "ar": "جانبي"},
                "minSelections": 1,
                "maxSelections": 1,
                "optionIds": ["fries", "rice"],
            }
        ],
        "modifierOptions": [
            {"id": "fries", "name": {"en": "Fries", "ar": "بطاطا"}, "price": "0"},
            {"id": "rice", "name": {"en": "Rice", "ar": "رز"}, "price": "2.00"},
        ],
    }
    document.update(changes)
    return CanonicalMenu.model_validate(document)


def offline_adapter(**config: Any) -> CareemAdapter:
    """An adapter for the pure methods (no HTTP is made)."""
    clock = FrozenClock()
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda _r: httpx2.Response(599)))
    context = AdapterContext(
        http=PlatformHttp(client, CallLog(), clock),
        tokens=TokenCache(clock),
        clock=clock,
        callback_url="https://menusync.example/api/v1/platform-sync/webhook/careem",
    )
    return CareemAdapter(make_config(**config), context)


def build(menu: CanonicalMenu, sync: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return offline_adapter().build_payload(menu, sync or {}, **kw).body


def by_id(entities: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entity["id"]: entity for entity in entities}


# ---- a scriptable Careem for MockTransport ---------------------------------------------------


Handler = Callable[[httpx2.Request], httpx2.Response]


@dataclass
class FakeCareem:
    """Answers like Careem; ``script`` maps "METHOD /path" to a list of answers used in turn
    (the last one repeats)."""

    script: dict[str, list[httpx2.Response | Exception]] = field(default_factory=dict)
    requests: list[httpx2.Request] = field(default_factory=list)
    tokens_issued: int = 0

    def on(self, key: str, *answers: httpx2.Response | Exception) -> None:
        self.script[key] = list(answers)

    def calls(self, key: str) -> list[httpx2.Request]:
        method, path = key.split(" ", 1)
        return [r for r in self.requests if r.method == method and r.url.path.endswith(path)]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path == "/token":
            answers = self.script.get("POST /token")
            if answers is None:
                self.tokens_issued += 1
                return httpx2.Response(
                    200,
                    json={
                        "access_token": f"jwt-{self.tokens_issued}",
                        "token_type": "Bearer",
                        "expires_in": 86399,
                        "scope": "pos",
                    },
                )
            return self._next("POST /token", answers, request)
        path = request.url.path.removeprefix("/pos/api/v1")
        key = f"{request.method} {path}"
        answers = self.script.get(key)
        if answers is None:
            return httpx2.Response(404, json={"code": "NOT_FOUND_ERROR", "message": key})
        return self._next(key, answers, request)

    def _next(
        self, key: str, answers: list[httpx2.Response | Exception], request: httpx2.Request
    ) -> httpx2.Response:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Harness:
    adapter: CareemAdapter
    careem: FakeCareem
    clock: FrozenClock
    log: CallLog


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    careem = FakeCareem()
    clock = FrozenClock()
    log = CallLog()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(careem)) as client:
        context = AdapterContext(
            http=PlatformHttp(client, log, clock),
            tokens=TokenCache(clock),
            clock=clock,
            callback_url="https://menusync.example/api/v1/platform-sync/webhook/careem",
        )
        yield Harness(CareemAdapter(make_config(), context), careem, clock, log)


ACCEPTED = httpx2.Response(
    200,
    json={
        "request_id": "1400",
        "created_at": "2026-01-05T09:00:00Z",
        "url": "/catalogs/status/1400",
        "message": "Please use this request ID string to check status of catalog upload request.",
    },
)


def a_payload() -> MenuPayload:
    return offline_adapter().build_payload(small_menu(), {})


# ---- class attributes ------------------------------------------------------------------------


def test_declares_careem_limits_and_retry_policy() -> None:
    limits = CareemAdapter.limits
    rules = {rule.name: rule for rule in limits.rules}

    assert CareemAdapter.kind == "careem"
    assert limits.max_items_per_push == 8_500
    assert limits.max_items_per_availability_call == 40
    assert rules["careem_requests"].requests == 60
    assert rules["careem_requests"].per_seconds == 60
    assert rules["careem_catalog_sync_per_branch"].interval == 120
    assert rules["careem_catalog_sync_per_branch"].scope == "store"
    assert rules["careem_catalog_sync_overall"].requests == 50
    policy = CareemAdapter.retry_policy
    assert (policy.max_retries, policy.base_delay, policy.max_delay, policy.multiplier) == (
        3,
        5.0,
        300.0,
        2.0,
    )


def test_capabilities_include_partial_push_and_exclude_availability_until() -> None:
    assert Capability.PARTIAL_MENU_PUSH in CareemAdapter.capabilities
    assert Capability.STORE_PAUSE in CareemAdapter.capabilities
    assert Capability.AVAILABILITY_UNTIL not in CareemAdapter.capabilities


def test_store_key_is_the_branch() -> None:
    assert CareemAdapter.store_key(make_config()) == "bz-jlt"
    assert CareemAdapter.store_key(make_config().model_dump(by_alias=True)) == "bz-jlt"


# ---- configuration ---------------------------------------------------------------------------


def test_config_defaults_to_production_hosts_and_hides_secrets() -> None:
    config = make_config()

    assert config.api_base_url == API
    assert config.identity_base_url == IDENTITY
    assert config.effective_catalog_id == "bz-jlt"
    assert "pos-secret" not in repr(config)
    assert CareemAdapter.secret_fields == {"client_secret", "webhook_api_key"}


def test_config_points_at_the_sandbox_prefix() -> None:
    config = make_config(
        identityBaseUrl="http://127.0.0.1:8000/sandbox/careem/",
        apiBaseUrl="http://127.0.0.1:8000/sandbox/careem/pos/api/v1",
    )

    assert config.identity_base_url == "http://127.0.0.1:8000/sandbox/careem"


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("clientId", "  "),
        ("clientSecret", ""),
        ("clientSecret", "   "),
        ("branchId", "bad branch/id"),
        ("brandId", ""),
        ("catalogId", "has space"),
        ("apiBaseUrl", "ftp://careem.example"),
        ("identityBaseUrl", "not a url"),
        ("webhookApiKey", "short"),
        ("unknownField", "x"),
    ],
)
def test_config_rejects_bad_credentials_and_ids(field_name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        make_config(**{field_name: value})


def test_config_requires_the_credentials() -> None:
    with pytest.raises(ValidationError):
        CareemConfig.model_validate({"brandId": "b", "branchId": "c"})


def test_sync_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        CareemSyncConfig.model_validate({"priceAdjustmentPercent": "5", "surprise": True})


# ---- payload ---------------------------------------------------------------------------------


def test_sample_menu_payload_matches_golden() -> None:
    payload = offline_adapter().build_payload(sample_menu(), {})
    rendered = json.dumps(payload.body, ensure_ascii=False, indent=2) + "\n"

    if os.environ.get("CAREEM_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert json.loads(rendered) == json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert payload.items_total == len(sample_menu().items)
    assert not payload.is_partial


def test_sample_menu_passes_validation() -> None:
    assert offline_adapter().validate_menu(sample_menu(), {}) == []


def test_payload_is_a_full_replace_with_catalog_header_fields() -> None:
    body = build(small_menu())

    assert body["diff"] is False
    assert body["catalog"] == {
        "id": "bz-jlt",
        "name": "Small menu",
        "currency_id": 1,
        "include_tax": True,
        "tax": 5.0,
        "category_ids": ["mains"],
    }


def test_prices_are_major_units_integer_when_whole_and_decimal_otherwise() -> None:
    body = build(small_menu())
    items = by_id(body["items"])
    options = by_id(body["options"])

    assert items["plate"]["price"] == 30
    assert isinstance(items["plate"]["price"], int)
    assert items["wrap"]["price"] == 12.5
    assert options["rice"]["price"] == 2
    assert options["fries"]["price"] == 0


@pytest.mark.parametrize(("currency", "currency_id"), [("AED", 1), ("SAR", 2), ("KWD", 6)])
def test_currency_is_sent_as_careem_currency_id(currency: str, currency_id: int) -> None:
    body = build(small_menu(currency=currency))

    assert body["catalog"]["currency_id"] == currency_id
    assert CURRENCY_IDS["IQD"] == 14


def test_tax_exclusive_prices_are_sent_tax_inclusive() -> None:
    menu = small_menu(pricesIncludeTax=False, taxRate="15", currency="SAR")

    items = by_id(build(menu)["items"])

    assert items["plate"]["price"] == 34.5  # 30 + 15 %
    assert items["wrap"]["price"] == 14.38  # 12.50 + 15 % = 14.375, rounded half up


def test_price_adjustment_applies_except_to_a_careem_override() -> None:
    menu = small_menu(
        items=[
            {"id": "wrap", "name": {"en": "Wrap"}, "price": "10.00"},
            {
                "id": "plate",
                "name": {"en": "Plate"},
                "price": "30.00",
                "platformOverrides": {"careem": {"price": "33.00"}, "talabat": {"price": "1"}},
            },
        ],
        modifierGroups=[],
        modifierOptions=[],
    )

    items = by_id(build(menu, {"priceAdjustmentPercent": "10"})["items"])

    assert items["wrap"]["price"] == 11
    assert items["plate"]["price"] == 33


def test_names_are_english_with_english_and_arabic_localized() -> None:
    menu = small_menu(
        items=[
            {
                "id": "wrap",
                "name": {"en": "Wrap", "ar": "لفافة", "fr": "Galette"},
                "description": {"en": "Rolled"},
                "price": "10",
            },
            {"id": "plate", "name": {"ar": "صحن"}, "price": "30"},
        ],
        modifierGroups=[],
        modifierOptions=[],
    )

    items = by_id(build(menu)["items"])

    assert items["wrap"]["name"] == "Wrap"
    assert items["wrap"]["name_localized"] == {"en": "Wrap", "ar": "لفافة"}
    assert items["wrap"]["description_localized"] == {"en": "Rolled"}
    assert items["plate"]["name"] == "صحن"
    assert items["plate"]["name_localized"] == {"ar": "صحن"}


def test_language_mapping_picks_the_configured_menu_languages() -> None:
    menu = small_menu(
        name={"en-GB": "Small", "ar-AE": "صغيرة"},
        items=[{"id": "wrap", "name": {"en-GB": "Wrap", "ar-AE": "لفافة"}, "price": "10"}],
        categories=[{"id": "mains", "name": {"en-GB": "Mains"}, "itemIds": ["wrap"]}],
        modifierGroups=[],
        modifierOptions=[],
    )

    items = by_id(build(menu, {"englishLanguage": "en-GB", "arabicLanguage": "ar-AE"})["items"])

    assert items["wrap"]["name_localized"] == {"en": "Wrap", "ar": "لفافة"}


def test_careem_name_override_replaces_the_menu_name() -> None:
    menu = small_menu(
        items=[
            {
                "id": "wrap",
                "name": {"en": "Wrap"},
                "price": "10",
                "platformOverrides": {"careem": {"name": {"en": "Careem Wrap"}}},
            }
        ],
        categories=[{"id": "mains", "name": {"en": "Mains"}, "itemIds": ["wrap"]}],
        modifierGroups=[],
        modifierOptions=[],
    )

    assert by_id(build(menu)["items"])["wrap"]["name"] == "Careem Wrap"


@pytest.mark.parametrize(
    ("weekday", "number"),
    [("sunday", 1), ("monday", 2), ("thursday", 5), ("friday", 6), ("saturday", 7)],
)
def test_day_of_week_counts_from_sunday(weekday: str, number: int) -> None:
    from menusync.menus.canonical import Weekday

    assert careem_day_of_week(Weekday(weekday)) == number


def test_shift_past_midnight_is_split_across_two_days_and_never_ends_at_midnight() -> None:
    menu = small_menu(
        schedule=[
            {"days": ["friday"], "ranges": [{"start": "11:00", "end": "02:00"}]},
            {"days": ["saturday"], "ranges": [{"start": "18:00", "end": "00:00"}]},
        ]
    )

    hours = {day["day_of_week"]: day for day in build(menu)["catalog"]["operational_hours"]}

    assert sorted(hours) == [1, 2, 3, 4, 5, 6, 7]
    assert hours[6]["shifts"] == [{"start_time": "11:00", "end_time": "23:59"}]
    assert hours[7]["shifts"] == [
        {"start_time": "00:00", "end_time": "02:00"},
        {"start_time": "18:00", "end_time": "23:59"},
    ]
    assert hours[1] == {"day_of_week": 1, "active": False, "shifts": []}
    assert all(s["end_time"] != "00:00" for day in hours.values() for s in day["shifts"])


def test_sunday_night_shift_continues_on_monday() -> None:
    menu = small_menu(
        schedule=[{"days": ["sunday"], "ranges": [{"start": "20:00", "end": "01:00"}]}]
    )

    hours = {day["day_of_week"]: day for day in build(menu)["catalog"]["operational_hours"]}

    assert hours[1]["shifts"] == [{"start_time": "20:00", "end_time": "23:59"}]
    assert hours[2]["shifts"] == [{"start_time": "00:00", "end_time": "01:00"}]


def test_item_schedule_becomes_item_operational_hours() -> None:
    menu = small_menu(
        items=[
            {
                "id": "wrap",
                "name": {"en": "Breakfast wrap"},
                "price": "10",
                "schedule": [{"days": ["monday"], "ranges": [{"start": "07:00", "end": "11:00"}]}],
            }
        ],
        categories=[{"id": "mains", "name": {"en": "Mains"}, "itemIds": ["wrap"]}],
        modifierGroups=[],
        modifierOptions=[],
    )

    item = build(menu)["items"][0]

    assert item["operational_hours"][1] == {
        "day_of_week": 2,
        "active": True,
        "shifts": [{"start_time": "07:00", "end_time": "11:00"}],
    }


def test_item_hidden_on_careem_is_left_out_of_a_full_push() -> None:
    menu = small_menu(
        items=[
            {"id": "wrap", "name": {"en": "Wrap"}, "price": "10"},
            {
                "id": "plate",
                "name": {"en": "Plate"},
                "price": "30",
                "modifierGroupIds": ["side"],
                "platformOverrides": {"careem": {"isVisible": False}},
            },
        ]
    )

    body = build(menu)

    assert [item["id"] for item in body["items"]] == ["wrap"]
    assert body["categories"][0]["items"] == ["wrap"]
    assert body["groups"] == []
    assert body["options"] == []


def test_unavailable_item_and_option_are_sent_inactive() -> None:
    menu = small_menu(
        items=[
            {"id": "wrap", "name": {"en": "Wrap"}, "price": "10", "isAvailable": False},
            {"id": "plate", "name": {"en": "Plate"}, "price": "30", "modifierGroupIds": ["side"]},
        ],
        modifierOptions=[
            {"id": "fries", "name": {"en": "Fries"}, "isAvailable": False},
            {"id": "rice", "name": {"en": "Rice"}},
        ],
    )

    body = build(menu)

    assert by_id(body["items"])["wrap"]["active"] is False
    assert by_id(body["items"])["plate"]["active"] is True
    assert by_id(body["options"])["fries"]["active"] is False


def test_groups_map_min_max_and_cap_max_at_the_option_count() -> None:
    menu = small_menu(
        modifierGroups=[
            {
                "id": "side",
                "name": {"en": "Side"},
                "minSelections": 0,
                "maxSelections": 5,
                "optionIds": ["fries", "rice"],
            }
        ]
    )

    group = build(menu)["groups"][0]

    assert (group["multi_select"], group["min"], group["max"]) == (False, 0, 2)
    assert group["options"] == ["fries", "rice"]


def test_repeatable_group_is_multi_select() -> None:
    menu = small_menu(
        modifierGroups=[
            {
                "id": "side",
                "name": {"en": "Side"},
                "minSelections": 3,
                "maxSelections": 3,
                "allowRepeats": True,
                "optionIds": ["fries", "rice"],
            }
        ]
    )

    group = build(menu)["groups"][0]

    assert (group["multi_select"], group["min"], group["max"]) == (True, 3, 3)


def test_nested_groups_hang_off_options() -> None:
    body = build(sample_menu())

    assert by_id(body["options"])["side-fries"]["groups"] == ["fries-seasoning"]
    assert "fries-seasoning" in by_id(body["groups"])
    assert by_id(body["items"])["shish-tawook"]["groups"] == ["side", "grill-sauce"]


def test_priorities_order_items_ascending_and_categories_descending_uniquely() -> None:
    body = build(sample_menu())
    category_priorities = [category["priority"] for category in body["categories"]]
    item_priorities = [item["priority"] for item in body["items"]]

    assert category_priorities == sorted(category_priorities, reverse=True)
    assert len(set(category_priorities)) == len(category_priorities)
    assert body["categories"][0]["id"] == "cold-mezze"
    assert item_priorities == sorted(item_priorities)
    assert min(item_priorities) == 1


def test_sub_categories_are_listed_under_their_parent() -> None:
    menu = small_menu(
        categories=[
            {"id": "mains", "name": {"en": "Mains"}, "itemIds": ["plate"]},
            {"id": "wraps", "name": {"en": "Wraps"}, "parentId": "mains", "itemIds": ["wrap"]},
        ]
    )

    body = build(menu)

    assert body["catalog"]["category_ids"] == ["mains"]
    assert body["categories"][0]["sub_categories"] == ["wraps"]
    assert body["sub_categories"][0]["id"] == "wraps"
    assert body["sub_categories"][0]["items"] == ["wrap"]


def test_meals_on_tag_maps_to_careem_tag() -> None:
    menu = small_menu(
        items=[{"id": "wrap", "name": {"en": "Wrap"}, "price": "10", "tags": ["meals-on"]}],
        categories=[{"id": "mains", "name": {"en": "Mains"}, "itemIds": ["wrap"]}],
        modifierGroups=[],
        modifierOptions=[],
    )

    assert build(menu)["items"][0]["tags"] == ["careem-mealson"]


def test_images_calories_and_allergens_use_careem_fields() -> None:
    item = by_id(build(sample_menu())["items"])["hummus"]

    assert item["media"] == "https://cdn.menusync.example/demo/hummus.jpg"
    assert item["calorie_counts"] == "280"
    assert item["allergic_information"] == "sesame"


def test_payload_is_deterministic() -> None:
    adapter = offline_adapter()

    first = adapter.build_payload(sample_menu(), {}).body
    second = adapter.build_payload(sample_menu(), {}).body

    assert json.dumps(first, sort_keys=False) == json.dumps(second, sort_keys=False)


def test_partial_push_sends_diff_with_only_the_items_and_what_they_use() -> None:
    payload = offline_adapter().build_payload(sample_menu(), {}, item_ids=["shish-tawook"])
    body = payload.body

    assert payload.is_partial
    assert body["diff"] is True
    assert [item["id"] for item in body["items"]] == ["shish-tawook"]
    assert {g["id"] for g in body["groups"]} == {"side", "grill-sauce", "fries-seasoning"}
    assert "side-fries" in {o["id"] for o in body["options"]}
    assert [c["id"] for c in body["categories"]] == ["grills"]
    assert "lamb-chops" in body["categories"][0]["items"]  # the whole category list
    assert body["catalog"]["category_ids"] == [c.id for c in sample_menu().categories]
    assert payload.items_total == 1


def test_partial_push_deletes_a_requested_item_that_is_gone_or_hidden() -> None:
    menu = small_menu(
        items=[
            {"id": "wrap", "name": {"en": "Wrap"}, "price": "10"},
            {
                "id": "plate",
                "name": {"en": "Plate"},
                "price": "30",
                "platformOverrides": {"careem": {"isVisible": False}},
            },
        ],
        modifierGroups=[],
        modifierOptions=[],
    )

    body = build(menu, item_ids=["plate", "removed-dish"])

    assert body["items"] == [
        {"id": "plate", "active": False, "deleted": True},
        {"id": "removed-dish", "active": False, "deleted": True},
    ]
    assert body["categories"][0]["items"] == ["wrap"]


def test_partial_push_needs_at_least_one_item() -> None:
    with pytest.raises(ValueError, match="item_ids is empty"):
        build(small_menu(), item_ids=[])


def test_large_generated_menu_builds_and_validates() -> None:
    adapter = offline_adapter()
    menu = generate_menu(5000)

    payload = adapter.build_payload(menu, {})

    assert payload.items_total == 5000
    assert len(payload.body["items"]) == 5000
    assert adapter.validate_menu(menu, {}) == []


# ---- validation: one test per documented rule ------------------------------------------------


def issues_of(menu: CanonicalMenu, sync: dict[str, Any] | None = None) -> dict[str, str]:
    return {issue.path: issue.code for issue in offline_adapter().validate_menu(menu, sync or {})}


def test_menu_over_8500_items_is_refused() -> None:
    assert issues_of(generate_menu(8501)) == {"items": "careem_too_many_items"}


def test_unsupported_currency_is_refused() -> None:
    assert issues_of(small_menu(currency="GBP")) == {"currency": "careem_unsupported_currency"}


def test_menu_with_nothing_visible_on_careem_is_refused() -> None:
    menu = small_menu(
        items=[
            {
                "id": "wrap",
                "name": {"en": "Wrap"},
                "price": "10",
                "platformOverrides": {"careem": {"isVisible": False}},
            }
        ],
        categories=[{"id": "mains", "name": {"en": "Mains"}, "itemIds": ["wrap"]}],
        modifierGroups=[],
        modifierOptions=[],
    )

    assert issues_of(menu) == {"items": "careem_empty_catalog"}


def test_name_without_english_or_arabic_is_refused() -> None:
    menu = small_menu(
        items=[
            {"id": "wrap", "name": {"fr": "Galette"}, "price": "10"},
            {"id": "plate", "name": {"en": "Plate"}, "price": "30", "modifierGroupIds": ["side"]},
        ]
    )

    assert issues_of(menu) == {"items[0].name": "careem_name_missing"}


def test_multi_select_group_needs_min_above_one() -> None:
    menu = small_menu(
        modifierGroups=[
            {
                "id": "side",
                "name": {"en": "Side"},
                "minSelections": 1,
                "maxSelections": 1,
                "allowRepeats": True,
                "optionIds": ["fries", "rice"],
            }
        ]
    )

    assert issues_of(menu) == {"modifierGroups[0].minSelections": "careem_multi_select_min"}


def test_multi_select_group_needs_max_equal_to_min() -> None:
    menu = small_menu(
        modifierGroups=[
            {
                "id": "side",
                "name": {"en": "Side"},
                "minSelections": 2,
                "maxSelections": 4,
                "allowRepeats": True,
                "optionIds": ["fries", "rice"],
            }
        ]
    )

    assert issues_of(menu) == {"modifierGroups[0].maxSelections": "careem_multi_select_max"}


def test_group_with_nested_groups_cannot_be_multi_select() -> None:
    menu = small_menu(
        modifierGroups=[
            {
                "id": "side",
                "name": {"en": "Side"},
                "minSelections": 2,
                "maxSelections": 2,
                "allowRepeats": True,
                "optionIds": ["fries", "rice"],
            },
            {"id": "salt", "name": {"en": "Salt"}, "optionIds": ["salty"]},
        ],
        modifierOptions=[
            {"id": "fries", "name": {"en": "Fries"}, "modifierGroupIds": ["salt"]},
            {"id": "rice", "name": {"en": "Rice"}},
            {"id": "salty", "name": {"en": "Salty"}},
        ],
    )

    assert issues_of(menu) == {"modifierGroups[0].allowRepeats": "careem_multi_select_nested"}


def test_group_min_above_the_options_careem_shows_is_refused() -> None:
    menu = small_menu(
        modifierGroups=[
            {
                "id": "side",
                "name": {"en": "Side"},
                "minSelections": 2,
                "maxSelections": 2,
                "optionIds": ["fries", "rice"],
            }
        ],
        modifierOptions=[
            {"id": "fries", "name": {"en": "Fries"}},
            {
                "id": "rice",
                "name": {"en": "Rice"},
                "platformOverrides": {"careem": {"isVisible": False}},
            },
        ],
    )

    assert issues_of(menu) == {"modifierGroups[0].minSelections": "careem_group_min"}


def test_group_with_no_option_visible_on_careem_is_refused() -> None:
    hidden = {"careem": {"isVisible": False}}
    menu = small_menu(
        modifierGroups=[
            {"id": "side", "name": {"en": "Side"}, "minSelections": 0, "optionIds": ["fries"]}
        ],
        modifierOptions=[
            {"id": "fries", "name": {"en": "Fries"}, "platformOverrides": hidden},
            {"id": "rice", "name": {"en": "Rice"}},
        ],
    )

    assert issues_of(menu) == {"modifierGroups[0].optionIds": "careem_group_empty"}


def test_fractional_price_is_refused_when_the_connection_refuses_fractions() -> None:
    issues = issues_of(small_menu(), {"fractionalPrices": "reject"})

    assert issues == {"items[0].price": "careem_fractional_price"}


def test_fractional_override_price_is_reported_at_the_override() -> None:
    menu = small_menu(
        items=[
            {
                "id": "wrap",
                "name": {"en": "Wrap"},
                "price": "10",
                "platformOverrides": {"careem": {"price": "10.50"}},
            }
        ],
        categories=[{"id": "mains", "name": {"en": "Mains"}, "itemIds": ["wrap"]}],
        modifierGroups=[],
        modifierOptions=[],
    )

    issues = issues_of(menu, {"fractionalPrices": "reject"})

    assert issues == {"items[0].platformOverrides.careem.price": "careem_fractional_price"}


def test_fractional_prices_are_sent_by_default() -> None:
    assert issues_of(small_menu()) == {}


def test_item_whose_group_lacks_available_options_is_warned() -> None:
    menu = small_menu(
        modifierOptions=[
            {"id": "fries", "name": {"en": "Fries"}, "isAvailable": False},
            {"id": "rice", "name": {"en": "Rice"}, "isAvailable": False},
        ]
    )

    issues = offline_adapter().validate_menu(menu, {})

    assert [(i.path, i.code, i.severity) for i in issues] == [
        ("items[1].modifierGroupIds[0]", "careem_item_unavailable_by_group", "warning")
    ]


# ---- auth ------------------------------------------------------------------------------------


async def test_token_is_requested_as_multipart_and_cached(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", ACCEPTED)

    await harness.adapter.push_menu(a_payload())
    await harness.adapter.push_menu(a_payload())

    (token_call,) = harness.careem.calls("POST /token")
    assert str(token_call.url) == f"{IDENTITY}/token"
    assert token_call.headers["content-type"].startswith("multipart/form-data")
    body = token_call.content.decode()
    for name, value in [
        ("client_id", "pos-client"),
        ("client_secret", "pos-secret"),
        ("grant_type", "client_credentials"),
        ("scope", "pos"),
    ]:
        assert f'name="{name}"\r\n\r\n{value}\r\n' in body
    assert token_call.headers["user-agent"] == "menusync/0.1"


async def test_api_calls_carry_bearer_user_agent_brand_and_branch(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", ACCEPTED)

    await harness.adapter.push_menu(a_payload())

    (push,) = harness.careem.calls("PUT /catalogs")
    assert str(push.url) == f"{API}/catalogs"
    assert push.headers["authorization"] == "Bearer jwt-1"
    assert push.headers["user-agent"] == "menusync/0.1"
    assert push.headers["brand-id"] == "beit-zaatar"
    assert push.headers["branch-id"] == "bz-jlt"
    assert json.loads(push.content)["catalog"]["id"] == "bz-jlt"


async def test_token_is_refreshed_before_it_expires(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", ACCEPTED)
    await harness.adapter.push_menu(a_payload())

    harness.clock.advance(hours=23, minutes=56)  # 4 minutes before the 86,399 s token expires
    await harness.adapter.push_menu(a_payload())

    assert len(harness.careem.calls("POST /token")) == 2
    assert harness.careem.calls("PUT /catalogs")[-1].headers["authorization"] == "Bearer jwt-2"


async def test_token_is_reused_well_before_expiry(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", ACCEPTED)
    await harness.adapter.push_menu(a_payload())

    harness.clock.advance(hours=23)
    await harness.adapter.push_menu(a_payload())

    assert len(harness.careem.calls("POST /token")) == 1


async def test_401_gets_one_token_refresh_and_one_retry(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", httpx2.Response(401, json={"message": "expired"}), ACCEPTED)

    receipt = await harness.adapter.push_menu(a_payload())

    assert receipt.external_ref == "1400"
    pushes = harness.careem.calls("PUT /catalogs")
    assert [p.headers["authorization"] for p in pushes] == ["Bearer jwt-1", "Bearer jwt-2"]


async def test_second_401_is_an_auth_error(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", httpx2.Response(401, json={"message": "no"}))

    with pytest.raises(PlatformAuthError) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.status_code == 401
    assert len(harness.careem.calls("PUT /catalogs")) == 2
    assert len(harness.careem.calls("POST /token")) == 2


async def test_bad_client_credentials_are_an_auth_error(harness: Harness) -> None:
    harness.careem.on(
        "POST /token",
        httpx2.Response(
            401, json={"error": "invalid_client", "error_description": "Bad client credentials"}
        ),
    )

    with pytest.raises(PlatformAuthError) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.platform_code == "invalid_client"
    assert caught.value.details["response"]["error_description"] == "Bad client credentials"
    assert harness.careem.calls("PUT /catalogs") == []


async def test_client_secret_is_redacted_from_the_call_log(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", ACCEPTED)

    await harness.adapter.push_menu(a_payload())

    assert all("pos-secret" not in (call.request_body or "") for call in harness.log.calls)
    assert [call.operation for call in harness.log.calls] == ["token", "push_menu"]


# ---- error mapping ---------------------------------------------------------------------------


async def test_429_without_retry_after_is_rate_limited_without_a_delay(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", httpx2.Response(429, json={"message": "Too many"}))

    with pytest.raises(PlatformRateLimited) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.retry_after is None
    assert caught.value.status_code == 429


async def test_429_with_retry_after_carries_it(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", httpx2.Response(429, headers={"Retry-After": "120"}))

    with pytest.raises(PlatformRateLimited) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.retry_after == 120.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable(harness: Harness, status: int) -> None:
    harness.careem.on("PUT /catalogs", httpx2.Response(status, text="upstream"))

    with pytest.raises(PlatformUnavailable) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.status_code == status
    assert caught.value.counts_for_breaker


@pytest.mark.parametrize(
    "error",
    [
        httpx2.ReadTimeout("read timed out"),
        httpx2.ConnectTimeout("connect timed out"),
        httpx2.ConnectError("connection refused"),
        httpx2.RemoteProtocolError("peer closed connection"),
    ],
)
async def test_timeouts_and_connection_errors_are_unavailable(
    harness: Harness, error: Exception
) -> None:
    harness.careem.on("PUT /catalogs", error)

    with pytest.raises(PlatformUnavailable):
        await harness.adapter.push_menu(a_payload())


async def test_409_upload_running_is_busy(harness: Harness) -> None:
    harness.careem.on(
        "PUT /catalogs",
        httpx2.Response(409, json={"code": "CONFLICT", "message": "catalog upload in progress"}),
    )

    with pytest.raises(PlatformBusy) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.retryable
    assert not caught.value.counts_for_breaker
    assert caught.value.details["response"]["message"] == "catalog upload in progress"


async def test_400_is_rejected_with_careem_issues_kept(harness: Harness) -> None:
    harness.careem.on(
        "PUT /catalogs",
        httpx2.Response(
            400,
            json={
                "message": "validation error",
                "code": "VALIDATION_ERROR",
                "error_type": "VALIDATION",
                "errors": [
                    {"field": "branch_id", "errors": [{"message": "branch_id is not mapped"}]},
                    {"field": "items[0].name", "errors": [{"message": "Name cannot be blank!"}]},
                ],
            },
        ),
    )

    with pytest.raises(PlatformRejected) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.platform_code == "VALIDATION_ERROR"
    assert caught.value.issues == [
        {"path": "branch_id", "message": "branch_id is not mapped", "code": "VALIDATION_ERROR"},
        {"path": "items[0].name", "message": "Name cannot be blank!", "code": "VALIDATION_ERROR"},
    ]
    assert not caught.value.retryable


async def test_403_forbidden_is_rejected(harness: Harness) -> None:
    harness.careem.on(
        "PUT /catalogs",
        httpx2.Response(403, json={"code": "FORBIDDEN_ERROR", "message": "branch is active"}),
    )

    with pytest.raises(PlatformRejected) as caught:
        await harness.adapter.push_menu(a_payload())

    assert caught.value.platform_code == "FORBIDDEN_ERROR"


async def test_unparseable_push_answer_is_a_contract_error(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", httpx2.Response(200, text="<html>gateway</html>"))

    with pytest.raises(PlatformContractError):
        await harness.adapter.push_menu(a_payload())


# ---- push and poll ---------------------------------------------------------------------------


async def test_push_returns_the_request_id_to_poll(harness: Harness) -> None:
    harness.careem.on("PUT /catalogs", httpx2.Response(200, json={"request_id": 9294432}))

    receipt = await harness.adapter.push_menu(a_payload())

    assert receipt.outcome == "accepted"
    assert receipt.external_ref == "9294432"


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ({"catalog_id": "bz-jlt", "status": "PENDING"}, "pending"),
        ({"catalog_id": "bz-jlt", "status": "COMPLETED", "reason": ""}, "completed"),
    ],
)
async def test_poll_reads_the_catalog_status(
    harness: Harness, answer: dict[str, Any], state: str
) -> None:
    harness.careem.on("GET /catalogs/status/1400", httpx2.Response(200, json=answer))

    result = await harness.adapter.get_push_result("1400")

    assert result.state == state
    assert result.external_ref == "1400"
    assert result.issues == ()


async def test_poll_of_a_failed_upload_keeps_the_reason(harness: Harness) -> None:
    harness.careem.on(
        "GET /catalogs/status/1400",
        httpx2.Response(
            200,
            json={"catalog_id": "bz-jlt", "status": "FAILED", "reason": "Name cannot be blank!"},
        ),
    )

    result = await harness.adapter.get_push_result("1400")

    assert result.state == "failed"
    assert [issue.message for issue in result.issues] == ["Name cannot be blank!"]
    assert result.details["reason"] == "Name cannot be blank!"


async def test_poll_of_an_unknown_request_is_not_found(harness: Harness) -> None:
    with pytest.raises(PlatformNotFound):
        await harness.adapter.get_push_result("999")


async def test_poll_with_an_unknown_status_is_a_contract_error(harness: Harness) -> None:
    harness.careem.on(
        "GET /catalogs/status/1400", httpx2.Response(200, json={"status": "EXPLODED"})
    )

    with pytest.raises(PlatformContractError):
        await harness.adapter.get_push_result("1400")


# ---- webhooks --------------------------------------------------------------------------------


def catalog_event(status: str = "COMPLETED", **details: Any) -> bytes:
    body = {
        "event_id": "50ef5753-0001",
        "event_type": "CATALOG_REQUEST_STATUS_UPDATED",
        "details": {
            "status": status,
            "catalog_id": "bz-jlt",
            "request_id": 9294432,
            "vendor_brand_id": "beit-zaatar",
            "vendor_branch_id": "bz-jlt",
            **details,
        },
        "occurred_at": "2026-01-05T09:00:13Z",
    }
    return json.dumps(body).encode()


def test_webhook_completed_result_is_parsed_with_warnings() -> None:
    body = catalog_event(
        warnings=[
            {
                "entity_name": "Hummus",
                "entity_id": "hummus",
                "entity_type": "PRODUCT",
                "level": "item",
                "severity": "LOW",
                "description": "Mandatory option groups are ranked after optional groups",
            }
        ]
    )

    message = offline_adapter().parse_webhook({"x-careem-api-key": WEBHOOK_KEY}, body)

    assert message.event_id == "50ef5753-0001"
    assert message.external_ref == "9294432"
    assert message.store_ref == "bz-jlt"
    assert message.result is not None
    assert message.result.state == "completed"
    (warning,) = message.result.issues
    assert warning.severity == "warning"
    assert warning.path == "product:hummus"
    assert "ranked after optional" in warning.message


def test_webhook_failed_result_is_parsed() -> None:
    message = offline_adapter().parse_webhook({}, catalog_event("FAILED", reason="bad group"))

    assert message.result is not None
    assert message.result.state == "failed"
    assert message.result.issues[0].message == "bad group"


def test_webhook_with_the_tag_event_name_is_a_catalog_result() -> None:
    body = json.loads(catalog_event())
    body["event_type"] = "CATALOG_STATUS_UPDATED"

    message = offline_adapter().parse_webhook({}, json.dumps(body).encode())

    assert message.result is not None


def test_order_webhook_carries_no_push_result() -> None:
    body = json.dumps({"event_type": "ORDER_CREATED", "details": {"id": 1001}}).encode()

    message = offline_adapter().parse_webhook({}, body)

    assert message.event_type == "ORDER_CREATED"
    assert message.result is None
    assert message.external_ref is None
    assert message.event_id.startswith("sha256:")
    assert offline_adapter().parse_webhook({}, body).event_id == message.event_id


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"details": {}}'])
def test_malformed_webhook_is_a_contract_error(body: bytes) -> None:
    with pytest.raises(PlatformContractError):
        offline_adapter().parse_webhook({}, body)


def test_catalog_webhook_without_request_id_is_a_contract_error() -> None:
    body = json.dumps(
        {"event_id": "e", "event_type": "CATALOG_REQUEST_STATUS_UPDATED", "details": {}}
    ).encode()

    with pytest.raises(PlatformContractError):
        offline_adapter().parse_webhook({}, body)


def test_webhook_with_the_shared_key_verifies_whatever_the_header_case() -> None:
    adapter = offline_adapter()

    assert adapter.verify_webhook({"x-careem-api-key": WEBHOOK_KEY}, catalog_event())
    assert adapter.verify_webhook({"X-Careem-Api-Key": WEBHOOK_KEY}, catalog_event())


@pytest.mark.parametrize(
    "headers",
    [
        {"x-careem-api-key": "forged-key-value"},
        {"x-careem-api-key": ""},
        {"authorization": f"Bearer {WEBHOOK_KEY}"},
        {},
    ],
)
def test_forged_webhook_does_not_verify(headers: dict[str, str]) -> None:
    assert not offline_adapter().verify_webhook(headers, catalog_event())


def test_tampered_body_still_verifies_because_careem_signs_no_body() -> None:
    # Careem's key is static and covers no body (no HMAC): only the key is checked. Dedupe by
    # event id and the job lookup by request id protect against replays and stray results.
    tampered = catalog_event("FAILED", reason="tampered")

    assert offline_adapter().verify_webhook({"x-careem-api-key": WEBHOOK_KEY}, tampered)


def test_nothing_verifies_without_a_configured_key() -> None:
    adapter = offline_adapter(webhookApiKey=None)

    assert not adapter.verify_webhook({"x-careem-api-key": WEBHOOK_KEY}, catalog_event())


def test_webhook_reply_acknowledges_with_2xx_or_asks_for_redelivery() -> None:
    adapter = offline_adapter()
    message = adapter.parse_webhook({}, catalog_event())

    assert adapter.webhook_reply(message, accepted=True).status_code == 200
    assert adapter.webhook_reply(None, accepted=False).status_code == 503


# ---- availability and store status ---------------------------------------------------------


async def test_availability_is_split_into_batches_of_40(harness: Harness) -> None:
    harness.careem.on("PATCH /catalogs/bz-jlt/items", httpx2.Response(204))
    changes = [
        AvailabilityChange(item_id=f"item-{i:03d}", is_available=i % 2 == 0) for i in range(85)
    ]

    result = await harness.adapter.set_item_availability(changes)

    calls = harness.careem.calls("PATCH /catalogs/bz-jlt/items")
    bodies = [json.loads(call.content)["items"] for call in calls]
    assert [len(body) for body in bodies] == [40, 40, 5]
    assert bodies[0][0] == {"id": "item-000", "status": "active"}
    assert bodies[0][1] == {"id": "item-001", "status": "inactive"}
    assert result.succeeded
    assert result.items_processed == 85


async def test_availability_sends_the_last_change_per_item_and_reports_options(
    harness: Harness,
) -> None:
    harness.careem.on("PATCH /catalogs/bz-jlt/items", httpx2.Response(204))
    changes = [
        AvailabilityChange(item_id="hummus", is_available=False),
        AvailabilityChange(item_id="dip-garlic", is_available=False, kind="option"),
        AvailabilityChange(item_id="hummus", is_available=True),
    ]

    result = await harness.adapter.set_item_availability(changes)

    (call,) = harness.careem.calls("PATCH /catalogs/bz-jlt/items")
    assert json.loads(call.content) == {"items": [{"id": "hummus", "status": "active"}]}
    assert not result.succeeded
    assert result.partial_failures[0]["itemId"] == "dip-garlic"


async def test_availability_for_an_unknown_catalog_is_not_found(harness: Harness) -> None:
    with pytest.raises(PlatformNotFound):
        await harness.adapter.set_item_availability([AvailabilityChange("x", False)])


async def test_availability_over_the_limit_is_rejected_with_careem_message(
    harness: Harness,
) -> None:
    harness.careem.on(
        "PATCH /catalogs/bz-jlt/items",
        httpx2.Response(400, json={"code": "VALIDATION_ERROR", "message": "max 40 items"}),
    )

    with pytest.raises(PlatformRejected) as caught:
        await harness.adapter.set_item_availability([AvailabilityChange("x", False)])

    assert caught.value.issues[0]["message"] == "max 40 items"


@pytest.mark.parametrize(("state", "status_id"), [("open", 1), ("closed", 2), ("paused", 2)])
async def test_store_status_sets_branch_visibility(
    harness: Harness, state: Any, status_id: int
) -> None:
    harness.careem.on("POST /branches/bz-jlt/visibility/status", httpx2.Response(204))

    result = await harness.adapter.set_store_status(StoreStatusChange(state=state))

    (call,) = harness.careem.calls("POST /branches/bz-jlt/visibility/status")
    assert json.loads(call.content) == {"status_id": status_id}
    assert result.succeeded


async def test_timed_pause_uses_expiries_in_whole_minutes(harness: Harness) -> None:
    harness.careem.on(
        "POST /branches/bz-jlt/visibility/status/expiries",
        httpx2.Response(
            201,
            json={
                "branch_id": "bz-jlt",
                "status_id": 2,
                "start_date": "2026-01-05T09:00:00Z",
                "end_date": "2026-01-05T09:31:00Z",
            },
        ),
    )
    until = harness.clock.now() + timedelta(minutes=30, seconds=20)

    result = await harness.adapter.set_store_status(StoreStatusChange(state="paused", until=until))

    (call,) = harness.careem.calls("POST /branches/bz-jlt/visibility/status/expiries")
    assert json.loads(call.content) == {"status_id": 2, "till_time": 31}
    assert result.message is not None
    assert "2026-01-05T09:31:00Z" in result.message


async def test_store_status_of_an_unmapped_branch_is_not_found(harness: Harness) -> None:
    with pytest.raises(PlatformNotFound):
        await harness.adapter.set_store_status(StoreStatusChange(state="open"))


# ---- test connection -------------------------------------------------------------------------


async def test_connection_check_reads_the_branch_with_a_short_timeout(harness: Harness) -> None:
    harness.careem.on(
        "GET /branches/bz-jlt",
        httpx2.Response(200, json={"id": "bz-jlt", "name": "JLT", "state": "MAPPED"}),
    )

    check = await harness.adapter.test_connection()

    assert check.ok
    (call,) = harness.careem.calls("GET /branches/bz-jlt")
    assert call.extensions["timeout"]["read"] == 10.0
    assert harness.careem.calls("POST /token")[0].extensions["timeout"]["read"] == 10.0


async def test_connection_check_flags_an_unmapped_branch(harness: Harness) -> None:
    harness.careem.on(
        "GET /branches/bz-jlt", httpx2.Response(200, json={"id": "bz-jlt", "state": "UNMAPPED"})
    )

    check = await harness.adapter.test_connection()

    assert not check.ok
    assert "UNMAPPED" in check.message


async def test_connection_check_reports_bad_credentials(harness: Harness) -> None:
    harness.careem.on("POST /token", httpx2.Response(401, json={"error": "invalid_client"}))

    check = await harness.adapter.test_connection()

    assert not check.ok
    assert check.details["code"] == "platform_auth_failed"


async def test_connection_check_reports_a_timeout(harness: Harness) -> None:
    harness.careem.on("POST /token", httpx2.ReadTimeout("slow"))

    check = await harness.adapter.test_connection()

    assert not check.ok
    assert check.details["code"] == "platform_unavailable"


def test_decimal_prices_survive_json() -> None:
    body = build(
        small_menu(
            currency="KWD",
            items=[
                {"id": "wrap", "name": {"en": "Wrap"}, "price": "1.125"},
            ],
            categories=[{"id": "mains", "name": {"en": "Mains"}, "itemIds": ["wrap"]}],
            modifierGroups=[],
            modifierOptions=[],
        )
    )

    assert json.loads(json.dumps(body))["items"][0]["price"] == 1.125
    assert Decimal(str(body["items"][0]["price"])) == Decimal("1.125")


# ---- end to end against the Careem sandbox ---------------------------------------------------

SANDBOX = "http://sandbox.test/careem"
HOOK_URL = "http://hooks.test/api/v1/platform-sync/webhook/careem"


@dataclass
class HookReceiver:
    """menusync's webhook intake, reduced to recording what Careem posts (answers 200)."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Sandboxed:
    adapter: CareemAdapter
    control: httpx2.AsyncClient
    hooks: HookReceiver
    sandbox_clock: Any
    clock: FrozenClock

    async def settle(self) -> None:
        answer = await self.control.post("/__sandbox/settle", params={"timeout": 5})
        assert answer.json() == {"settled": True}

    async def store(self) -> dict[str, Any]:
        answer = await self.control.get("/__sandbox/stores/bz-jlt")
        assert answer.status_code == 200
        view: dict[str, Any] = answer.json()
        return view

    async def token_calls(self) -> int:
        calls = (await self.control.get("/__sandbox/calls", params={"limit": 1000})).json()
        return sum(1 for call in calls["calls"] if str(call["path"]).endswith("/token"))


@pytest.fixture
async def sandboxed() -> AsyncIterator[Sandboxed]:
    from datetime import UTC, datetime

    from menusync.sandbox.app import create_sandbox_app, shutdown_sandbox
    from menusync.sandbox.settings import ManualClock, SandboxSettings

    hooks = HookReceiver()
    sandbox_clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    settings = SandboxSettings.fast(
        clock=sandbox_clock, careem_webhook_url=HOOK_URL, careem_webhook_api_key=WEBHOOK_KEY
    )
    clock = FrozenClock()
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=hooks)) as hook_client:
        app = create_sandbox_app(settings, http_client=hook_client)
        transport = httpx2.ASGITransport(app=app)
        async with (
            httpx2.AsyncClient(transport=transport) as client,
            httpx2.AsyncClient(transport=transport, base_url=SANDBOX) as control,
        ):
            context = AdapterContext(
                http=PlatformHttp(client, CallLog(), clock),
                tokens=TokenCache(clock),
                clock=clock,
                callback_url=HOOK_URL,
            )
            config = make_config(identityBaseUrl=SANDBOX, apiBaseUrl=f"{SANDBOX}/pos/api/v1")
            try:
                yield Sandboxed(
                    CareemAdapter(config, context), control, hooks, sandbox_clock, clock
                )
            finally:
                await shutdown_sandbox(app)


async def push_and_settle(env: Sandboxed, menu: CanonicalMenu | None = None) -> str:
    payload = env.adapter.build_payload(menu or sample_menu(), {})
    receipt = await env.adapter.push_menu(payload)
    assert receipt.external_ref is not None
    await env.settle()
    return receipt.external_ref


@pytest.mark.e2e
async def test_e2e_full_push_completes_by_polling(sandboxed: Sandboxed) -> None:
    ref = await push_and_settle(sandboxed)

    result = await sandboxed.adapter.get_push_result(ref)

    assert result.state == "completed"
    live = (await sandboxed.store())["menu"]
    assert len(live["items"]) == len(sample_menu().items)
    assert live["catalog"]["currency_id"] == 1


@pytest.mark.e2e
async def test_e2e_full_push_completes_by_verified_webhook(sandboxed: Sandboxed) -> None:
    ref = await push_and_settle(sandboxed)

    ((headers, body),) = sandboxed.hooks.received
    assert sandboxed.adapter.verify_webhook(headers, body)
    message = sandboxed.adapter.parse_webhook(headers, body)
    assert message.external_ref == ref
    assert message.result is not None
    assert message.result.state == "completed"
    assert sandboxed.adapter.webhook_reply(message, accepted=True).status_code == 200


@pytest.mark.e2e
async def test_e2e_forged_webhook_does_not_verify(sandboxed: Sandboxed) -> None:
    await sandboxed.control.put("/__sandbox/faults", json={"webhook": {"badSignature": 1}})

    await push_and_settle(sandboxed)

    headers, body = sandboxed.hooks.received[0]
    assert not sandboxed.adapter.verify_webhook(headers, body)


@pytest.mark.e2e
async def test_e2e_replayed_webhook_keeps_its_event_id(sandboxed: Sandboxed) -> None:
    await sandboxed.control.put("/__sandbox/faults", json={"webhook": {"duplicate": 1}})

    await push_and_settle(sandboxed)

    first, second = (
        sandboxed.adapter.parse_webhook(headers, body) for headers, body in sandboxed.hooks.received
    )
    assert first.event_id == second.event_id
    assert first.external_ref == second.external_ref


@pytest.mark.e2e
async def test_e2e_menu_breaking_a_group_rule_fails_and_is_refused_beforehand(
    sandboxed: Sandboxed,
) -> None:
    menu = small_menu(
        modifierGroups=[
            {
                "id": "side",
                "name": {"en": "Side"},
                "minSelections": 1,
                "maxSelections": 2,
                "allowRepeats": True,
                "optionIds": ["fries", "rice"],
            }
        ]
    )
    assert sandboxed.adapter.validate_menu(menu, {})  # refused before any call...

    ref = await push_and_settle(sandboxed, menu)  # ...and Careem would fail it
    result = await sandboxed.adapter.get_push_result(ref)

    assert result.state == "failed"
    assert "multiSelect is true" in result.issues[0].message


@pytest.mark.e2e
async def test_e2e_unmapped_branch_is_rejected(sandboxed: Sandboxed) -> None:
    await sandboxed.control.post(
        "/__sandbox/stores", json={"storeId": "bz-jlt", "brandId": "beit-zaatar", "mapped": False}
    )

    with pytest.raises(PlatformRejected) as caught:
        await sandboxed.adapter.push_menu(a_payload())

    assert caught.value.issues[0]["message"] == "branch_id is not mapped"
    check = await sandboxed.adapter.test_connection()
    assert not check.ok
    assert "UNMAPPED" in check.message


@pytest.mark.e2e
async def test_e2e_second_sync_within_two_minutes_is_rate_limited(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)

    with pytest.raises(PlatformRateLimited) as caught:
        await sandboxed.adapter.push_menu(a_payload())

    assert caught.value.retry_after is None
    sandboxed.sandbox_clock.advance(121)
    receipt = await sandboxed.adapter.push_menu(a_payload())
    assert receipt.outcome == "accepted"


@pytest.mark.e2e
async def test_e2e_5xx_is_unavailable(sandboxed: Sandboxed) -> None:
    await sandboxed.control.put("/__sandbox/faults", json={"errorRate": 1, "errorStatuses": [503]})

    with pytest.raises(PlatformUnavailable) as caught:
        await sandboxed.adapter.push_menu(a_payload())

    assert caught.value.status_code == 503


@pytest.mark.e2e
async def test_e2e_expired_token_is_refreshed_once(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)
    sandboxed.sandbox_clock.advance(86_400)  # Careem expired it; our cache still holds it

    result = await sandboxed.adapter.get_push_result("9294432")

    assert result.state == "completed"
    assert await sandboxed.token_calls() == 2


@pytest.mark.e2e
async def test_e2e_token_is_renewed_before_expiry_without_a_401(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)
    sandboxed.sandbox_clock.advance(23 * 3600 + 56 * 60)
    sandboxed.clock.advance(hours=23, minutes=56)

    await sandboxed.adapter.get_push_result("9294432")

    calls = (await sandboxed.control.get("/__sandbox/calls")).json()["calls"]
    assert await sandboxed.token_calls() == 2
    assert all(call["status"] != 401 for call in calls)


@pytest.mark.e2e
async def test_e2e_revoked_token_gets_one_refresh(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)
    await sandboxed.control.post("/__sandbox/tokens/revoke")

    result = await sandboxed.adapter.get_push_result("9294432")

    assert result.state == "completed"


@pytest.mark.e2e
async def test_e2e_partial_push_updates_one_item_and_keeps_the_rest(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)
    sandboxed.sandbox_clock.advance(121)
    document = sample_menu().to_document()
    document["items"][0]["price"] = "23.00"
    changed = CanonicalMenu.model_validate(document)

    payload = sandboxed.adapter.build_payload(changed, {}, item_ids=["hummus"])
    receipt = await sandboxed.adapter.push_menu(payload)
    await sandboxed.settle()

    assert receipt.external_ref is not None
    assert (await sandboxed.adapter.get_push_result(receipt.external_ref)).state == "completed"
    live = by_id((await sandboxed.store())["menu"]["items"])
    assert live["hummus"]["price"] == 23
    assert len(live) == len(sample_menu().items)
    catalog = (await sandboxed.store())["menu"]["catalog"]
    assert catalog["category_ids"] == [c.id for c in sample_menu().categories]


@pytest.mark.e2e
async def test_e2e_availability_round_trip(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)

    result = await sandboxed.adapter.set_item_availability(
        [AvailabilityChange("hummus", False), AvailabilityChange("falafel", True)]
    )

    assert result.succeeded
    availability = (await sandboxed.store())["availability"]
    assert availability["items"]["hummus"] == "inactive"
    assert "hummus" in availability["unavailableItems"]


@pytest.mark.e2e
async def test_e2e_store_status_round_trip(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)

    await sandboxed.adapter.set_store_status(StoreStatusChange(state="closed"))
    closed = (await sandboxed.store())["status"]
    await sandboxed.adapter.set_store_status(
        StoreStatusChange(state="paused", until=sandboxed.clock.now() + timedelta(minutes=45))
    )
    paused = (await sandboxed.store())["status"]
    await sandboxed.adapter.set_store_status(StoreStatusChange(state="open"))
    opened = (await sandboxed.store())["status"]

    assert closed["status_id"] == 2
    assert paused["status_id"] == 2
    assert paused["expiry"]["end_date"] == "2026-01-05T09:45:00Z"
    assert opened["status_id"] == 1


@pytest.mark.e2e
async def test_e2e_connection_check_passes(sandboxed: Sandboxed) -> None:
    await push_and_settle(sandboxed)

    check = await sandboxed.adapter.test_connection()

    assert check.ok, check.message
