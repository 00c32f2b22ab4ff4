"""The Deliveroo simulator, exercised over HTTP the way an adapter would use it."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx2
import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import Sandbox, SandboxFactory

SECRET = "whsec-deliveroo-test"
MENU_PATH = "/menu/v1/brands/brand-1/menus/main"


def valid_menu() -> dict[str, object]:
    """PLATFORMS.md 1.9, with a description on the mealtime."""
    return {
        "name": "Main",
        "site_ids": ["site-1"],
        "menu": {
            "mealtimes": [
                {
                    "id": "all-day",
                    "name": {"en": "All day", "ar": "طوال اليوم"},
                    "description": {"en": "Served all day"},
                    "image": {"url": "https://cdn.example/cover.jpg"},
                    "category_ids": ["mains"],
                    "schedule": [
                        {"day_of_week": 0, "time_periods": [{"start": "00:00", "end": "23:59"}]}
                    ],
                }
            ],
            "categories": [
                {
                    "id": "mains",
                    "name": {"en": "Mains", "ar": "أطباق رئيسية"},
                    "item_ids": ["shawarma"],
                }
            ],
            "items": [
                {
                    "id": "shawarma",
                    "type": "ITEM",
                    "name": {"en": "Shawarma", "ar": "شاورما"},
                    "plu": "SH-1",
                    "tax_rate": "5",
                    "price_info": {"price": 2500},
                    "modifier_ids": ["sauce"],
                },
                {
                    "id": "garlic",
                    "type": "CHOICE",
                    "name": {"en": "Garlic", "ar": "ثوم"},
                    "plu": "SA-1",
                    "tax_rate": "5",
                    "price_info": {"price": 0},
                },
            ],
            "modifiers": [
                {
                    "id": "sauce",
                    "name": {"en": "Sauce"},
                    "min_selection": 1,
                    "max_selection": 1,
                    "repeatable": False,
                    "item_ids": ["garlic"],
                }
            ],
        },
    }


async def token(sandbox: Sandbox) -> str:
    basic = base64.b64encode(b"client:secret").decode()
    response = await sandbox.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
async def roo(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox("deliveroo", deliveroo_webhook_secret=SECRET)


async def authed(sandbox: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token(sandbox)}"}


async def publish(sandbox: Sandbox, menu: dict[str, object]) -> dict[str, object]:
    """Upload ``menu`` and return the upload-result body of the webhook it causes."""
    before = len(sandbox.receiver.received)
    response = await sandbox.client.put(MENU_PATH, json=menu, headers=await authed(sandbox))
    assert response.status_code == 200, response.text
    assert response.json() == {}
    received = await sandbox.receiver.wait_for(before + 1)
    body = received[before].json()["body"]
    assert isinstance(body, dict)
    result = body["menu_upload_result"]
    assert isinstance(result, dict)
    return result


def expected_signature(guid: str, raw: bytes) -> str:
    return hmac.new(SECRET.encode(), guid.encode() + b" " + raw, hashlib.sha256).hexdigest()


# ----- auth ---------------------------------------------------------------------------------


async def test_basic_auth_token_lives_five_minutes(roo: Sandbox) -> None:
    basic = base64.b64encode(b"client:secret").decode()
    response = await roo.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    body = response.json()
    assert body["expires_in"] == 300
    assert body["token_type"] == "Bearer"
    headers = {"Authorization": f"Bearer {body['access_token']}"}

    assert (await roo.client.get("/site/v1/brands", headers=headers)).status_code == 200
    roo.clock.advance(300)
    expired = await roo.client.get("/site/v1/brands", headers=headers)

    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "unauthorized"


async def test_form_body_credentials_also_get_a_token(roo: Sandbox) -> None:
    response = await roo.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"},
    )
    assert response.status_code == 200
    assert response.json()["expires_in"] == 300


async def test_missing_secret_is_invalid_client(roo: Sandbox) -> None:
    response = await roo.client.post(
        "/oauth2/token", data={"grant_type": "client_credentials", "client_id": "c"}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


async def test_configured_credentials_reject_others(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo", credentials={"client": "right"})
    wrong = base64.b64encode(b"client:wrong").decode()
    response = await sandbox.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {wrong}"},
    )
    assert response.status_code == 401


# ----- menu upload --------------------------------------------------------------------------


async def test_valid_menu_goes_live_after_a_signed_upload_result(roo: Sandbox) -> None:
    menu = valid_menu()

    result = await publish(roo, menu)

    hook = roo.receiver.received[0]
    guid = hook.headers["x-deliveroo-sequence-guid"]
    assert hook.headers["x-deliveroo-hmac-sha256"] == expected_signature(guid, hook.body)
    assert hook.headers["x-deliveroo-payload-type"] == "webhook_menu"
    assert hook.headers["x-deliveroo-webhook-version"] == "1"
    assert hook.json()["event"] == "menu.upload_result"
    assert result["http_status"] == 200
    assert result["brand_id"] == "brand-1"
    assert result["menu_id"] == "main"
    assert result["site_ids"] == ["site-1"]
    store = await roo.store("site-1")
    assert store["menu"] == menu
    assert store["status"] == "OPEN"
    last_import = store["lastImport"]
    assert isinstance(last_import, dict)
    assert last_import["http_status"] == 200


async def test_upload_result_arrives_at_the_webhook_url_registered_by_api(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("deliveroo", deliveroo_webhook_url=None)
    headers = await authed(sandbox)
    registered = await sandbox.client.put(
        "/menu/v1/integrator/webhooks/menu-events",
        json={"webhook_url": "http://hooks.test/registered"},
        headers=headers,
    )
    assert registered.status_code == 200

    await sandbox.client.put(MENU_PATH, json=valid_menu(), headers=headers)

    received = await sandbox.receiver.wait_for(1)
    assert received[0].path == "/registered"


async def test_the_same_menu_again_matches_the_existing_menu(roo: Sandbox) -> None:
    await publish(roo, valid_menu())
    roo.clock.advance(60)

    response = await roo.client.put(MENU_PATH, json=valid_menu(), headers=await authed(roo))
    await roo.settle()

    assert response.json() == {"result": "MATCH_EXISTING_MENU"}
    assert len(roo.receiver.received) == 1


async def test_get_menu_returns_the_uploaded_menu(roo: Sandbox) -> None:
    await publish(roo, valid_menu())
    headers = await authed(roo)

    one = await roo.client.get(MENU_PATH, headers=headers)
    listed = await roo.client.get("/menu/v1/brands/brand-1/menus", headers=headers)

    assert one.json()["menu"] == valid_menu()["menu"]
    assert [m["id"] for m in listed.json()["menus"]] == ["main"]


async def test_second_upload_within_a_minute_is_429_until_the_minute_passes(
    roo: Sandbox,
) -> None:
    headers = await authed(roo)
    first = await roo.client.put(MENU_PATH, json=valid_menu(), headers=headers)
    changed = valid_menu()
    changed["name"] = "Main v2"

    roo.clock.advance(59.9)
    too_soon = await roo.client.put(MENU_PATH, json=changed, headers=headers)
    roo.clock.advance(0.1)
    after = await roo.client.put(MENU_PATH, json=changed, headers=headers)

    assert first.status_code == 200
    assert too_soon.status_code == 429
    assert too_soon.json()["error"]["code"] == "too_many_requests"
    assert after.status_code == 200


async def test_other_sites_have_their_own_upload_budget(roo: Sandbox) -> None:
    headers = await authed(roo)
    other = valid_menu()
    other["site_ids"] = ["site-2"]
    first = await roo.client.put(MENU_PATH, json=valid_menu(), headers=headers)
    second = await roo.client.put(
        "/menu/v1/brands/brand-1/menus/other", json=other, headers=headers
    )
    assert (first.status_code, second.status_code) == (200, 200)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"menu": {}, "site_ids": ["site-1"]}, "name: cannot be blank"),
        ({"name": "Main", "site_ids": ["site-1"]}, "menu: must be an object"),
        ({"name": "Main", "menu": {}, "site_ids": []}, "site_ids: cannot be blank"),
    ],
)
async def test_malformed_upload_is_refused_synchronously(
    roo: Sandbox, body: dict[str, object], message: str
) -> None:
    response = await roo.client.put(MENU_PATH, json=body, headers=await authed(roo))
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "bad_request", "message": message}}


async def test_non_json_upload_is_a_bad_request(roo: Sandbox) -> None:
    response = await roo.client.put(MENU_PATH, content=b"{nope", headers=await authed(roo))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def _menu(path: str, value: object) -> dict[str, object]:
    """``valid_menu()`` with the value at a dotted path replaced (``None`` deletes)."""
    menu = copy.deepcopy(valid_menu())
    target: object = menu
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]  # type: ignore[index]
    last = parts[-1]
    if value is None:
        del target[last]  # type: ignore[attr-defined]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value  # type: ignore[index]
    return menu


@pytest.mark.parametrize(
    ("menu", "message"),
    [
        (_menu("menu.mealtimes", []), "mealtimes: cannot be blank"),
        (_menu("menu.mealtimes.0.image", None), "mealtimes[0].image: cannot be blank"),
        (_menu("menu.categories.0.item_ids", []), "category mains has no items"),
        (_menu("menu.categories.0.name", {"en": "Ab"}), "must be between 3 and 120 characters"),
        (_menu("menu.items.0.name", {"en": "x" * 121}), "must be between 2 and 120 characters"),
        (_menu("menu.items.0.description", {"en": "x" * 501}), "must be at most 500 characters"),
        (_menu("menu.items.0.tax_rate", "20"), "20 is not a valid tax rate for AE"),
        (_menu("menu.items.0.tax_rate", " "), "items[0].tax_rate: cannot be blank"),
        (_menu("menu.items.0.tax_rate", 5), "items[0].tax_rate: cannot be blank"),
        (_menu("menu.items.0.price_info", {"price": 25.0}), "integer in minor units"),
        (_menu("menu.items.0.price_info", {"price": "2500"}), "integer in minor units"),
        (_menu("menu.items.0.name", {"fr": "Chawarma"}), "language not supported"),
        (_menu("menu.items.0.name", "Shawarma"), "must be an object keyed by language code"),
        (_menu("menu.items.0.modifier_ids", ["nope"]), "unknown modifier nope"),
        (_menu("menu.modifiers.0.max_selection", 0), "must be greater than or equal to 1"),
        (_menu("menu.modifiers.0.min_selection", 2), "must be less than or equal to max_selection"),
        (
            _menu("menu.categories.0.item_ids", ["garlic"]),
            "is a CHOICE and cannot be in a category",
        ),
        (
            _menu(
                "menu.mealtimes.0.schedule",
                [
                    {
                        "day_of_week": 0,
                        "time_periods": [
                            {"start": "08:00", "end": "12:00"},
                            {"start": "11:00", "end": "15:00"},
                        ],
                    }
                ],
            ),
            "overlapping time periods on day 0",
        ),
    ],
)
async def test_invalid_menu_is_rejected_asynchronously(
    roo: Sandbox, menu: dict[str, object], message: str
) -> None:
    result = await publish(roo, menu)

    assert result["http_status"] == 400
    errors = result["errors"]
    assert isinstance(errors, dict)
    assert message in str(errors["processing"])
    store = await roo.store("site-1")
    assert store["menu"] is None


async def test_tax_rates_follow_the_market(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo", deliveroo_market="GB")
    menu = _menu("menu.items.0.tax_rate", "20")
    for item in menu["menu"]["items"]:  # type: ignore[index]
        item["name"] = {"en": item["name"]["en"]}
        item["tax_rate"] = "20"
    menu["menu"]["mealtimes"][0]["name"] = {"en": "All day"}  # type: ignore[index]
    menu["menu"]["categories"][0]["name"] = {"en": "Mains"}  # type: ignore[index]
    result = await publish(sandbox, menu)
    assert result["http_status"] == 200


async def test_more_than_100_categories_are_rejected(roo: Sandbox) -> None:
    menu = valid_menu()
    categories = [
        {"id": f"c{i}", "name": {"en": f"Category {i}"}, "item_ids": ["shawarma"]}
        for i in range(101)
    ]
    menu["menu"]["categories"] = categories  # type: ignore[index]
    result = await publish(roo, menu)
    assert "at most 100 categories" in str(result["errors"])


async def test_a_failed_upload_result_is_redelivered_with_the_same_guid(roo: Sandbox) -> None:
    roo.receiver.script.extend([500, 503])

    await roo.client.put(MENU_PATH, json=valid_menu(), headers=await authed(roo))
    received = await roo.receiver.wait_for(3)

    guids = {r.headers["x-deliveroo-sequence-guid"] for r in received}
    assert len(guids) == 1
    for hook in received:
        guid = hook.headers["x-deliveroo-sequence-guid"]
        assert hook.headers["x-deliveroo-hmac-sha256"] == expected_signature(guid, hook.body)
    stats = (await roo.client.get("/__sandbox/stats")).json()
    assert stats["webhooks"] == {"sent": 3, "delivered": 1, "failed": 2, "dropped": 0}


async def test_redelivery_stops_after_the_thirty_minute_schedule(roo: Sandbox) -> None:
    roo.receiver.script.extend([500] * 20)

    await roo.client.put(MENU_PATH, json=valid_menu(), headers=await authed(roo))
    await roo.settle()

    assert len(roo.receiver.received) == 8
    stats = (await roo.client.get("/__sandbox/stats")).json()
    assert stats["webhooks"]["dropped"] == 1


async def test_sequence_guids_increase_between_events(roo: Sandbox) -> None:
    await publish(roo, valid_menu())
    roo.clock.advance(60)
    changed = valid_menu()
    changed["name"] = "Main v2"
    await publish(roo, changed)
    first, second = (r.headers["x-deliveroo-sequence-guid"] for r in roo.receiver.received)
    assert first < second


# ----- availability -------------------------------------------------------------------------

UNAVAILABLE = "/menu/v1/brands/brand-1/menus/main/item_unavailabilities/site-1"
UNAVAILABLE_V2 = "/menu/v2/brands/brand-1/sites/site-1/menu/item_unavailabilities"


async def test_replace_all_sets_unavailable_and_hidden_and_ignores_unknown_ids(
    roo: Sandbox,
) -> None:
    await publish(roo, valid_menu())
    headers = await authed(roo)

    response = await roo.client.put(
        UNAVAILABLE,
        json={"unavailable_ids": ["shawarma", "ghost"], "hidden_ids": ["garlic"]},
        headers=headers,
    )

    assert response.status_code == 200
    current = await roo.client.get(UNAVAILABLE_V2, headers=headers)
    assert current.json() == {"unavailable_ids": ["shawarma"], "hidden_ids": ["garlic"]}


async def test_replace_all_is_limited_to_one_per_minute_per_site(roo: Sandbox) -> None:
    await publish(roo, valid_menu())
    headers = await authed(roo)
    body = {"unavailable_ids": [], "hidden_ids": []}

    first = await roo.client.put(UNAVAILABLE_V2, json=body, headers=headers)
    second = await roo.client.put(UNAVAILABLE, json=body, headers=headers)
    roo.clock.advance(60)
    third = await roo.client.put(UNAVAILABLE, json=body, headers=headers)

    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]


async def test_partial_update_with_an_unknown_item_fails_entirely(roo: Sandbox) -> None:
    await publish(roo, valid_menu())
    headers = await authed(roo)

    response = await roo.client.post(
        UNAVAILABLE,
        json={
            "item_unavailabilities": [
                {"item_id": "shawarma", "status": "unavailable"},
                {"item_id": "ghost", "status": "unavailable"},
            ]
        },
        headers=headers,
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    roo.clock.advance(1)
    current = await roo.client.get(UNAVAILABLE, headers=headers)
    assert current.json()["unavailable_ids"] == []


async def test_partial_updates_are_limited_to_one_per_100ms(roo: Sandbox) -> None:
    await publish(roo, valid_menu())
    headers = await authed(roo)
    body = {"item_unavailabilities": [{"item_id": "shawarma", "status": "unavailable"}]}

    first = await roo.client.post(UNAVAILABLE_V2, json=body, headers=headers)
    second = await roo.client.post(UNAVAILABLE_V2, json=body, headers=headers)
    roo.clock.advance(0.1)
    third = await roo.client.post(UNAVAILABLE_V2, json=body, headers=headers)

    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]


async def test_morning_reset_clears_unavailable_but_keeps_hidden(roo: Sandbox) -> None:
    roo.clock.set(datetime(2025, 1, 6, 20, 0, tzinfo=UTC))
    await publish(roo, valid_menu())
    headers = await authed(roo)
    await roo.client.post(
        UNAVAILABLE,
        json={
            "item_unavailabilities": [
                {"item_id": "shawarma", "status": "unavailable"},
                {"item_id": "garlic", "status": "hidden"},
            ]
        },
        headers=headers,
    )

    roo.clock.set(datetime(2025, 1, 7, 1, 59, tzinfo=UTC))
    before_reset = (await roo.store("site-1"))["availability"]
    roo.clock.set(datetime(2025, 1, 7, 2, 0, tzinfo=UTC))
    after_reset = (await roo.store("site-1"))["availability"]

    assert before_reset == {"unavailable_ids": ["shawarma"], "hidden_ids": ["garlic"]}
    assert after_reset == {"unavailable_ids": [], "hidden_ids": ["garlic"]}


async def test_availability_written_before_the_upload_result_misses_new_items(
    roo: Sandbox,
) -> None:
    headers = await authed(roo)
    early = await roo.client.put(
        UNAVAILABLE_V2, json={"unavailable_ids": ["shawarma"], "hidden_ids": []}, headers=headers
    )
    await publish(roo, valid_menu())

    assert early.status_code == 200
    assert (await roo.store("site-1"))["availability"] == {"unavailable_ids": [], "hidden_ids": []}


# ----- site API -----------------------------------------------------------------------------

SITE = "/site/v1/brands/brand-1/sites/site-1"


async def test_site_can_be_closed_and_reopened(roo: Sandbox) -> None:
    headers = await authed(roo)
    closed = await roo.client.put(f"{SITE}/status", json={"status": "CLOSED"}, headers=headers)
    opened = await roo.client.put(f"{SITE}/status", json={"status": "OPEN"}, headers=headers)
    bad = await roo.client.put(f"{SITE}/status", json={"status": "PAUSED"}, headers=headers)
    assert closed.json() == {"status": "CLOSED"}
    assert opened.json() == {"status": "OPEN"}
    assert bad.status_code == 400


async def test_opening_outside_opening_hours_is_refused(roo: Sandbox) -> None:
    headers = await authed(roo)
    # Monday 2025-01-06 09:00 UTC is 13:00 in Dubai.
    hours = {
        "opening_hours": {"monday": [{"local_start_time": "17:00", "local_end_time": "23:00"}]}
    }
    set_hours = await roo.client.post(f"{SITE}/opening_hours", json=hours, headers=headers)

    response = await roo.client.put(f"{SITE}/status", json={"status": "OPEN"}, headers=headers)
    roo.clock.set(datetime(2025, 1, 6, 14, 0, tzinfo=UTC))
    headers = await authed(roo)  # five hours later: the first token has long expired
    later = await roo.client.put(f"{SITE}/status", json={"status": "OPEN"}, headers=headers)

    assert set_hours.status_code == 200
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_request",
        "message": "Unable to open restaurant, reason: OPENING_HOURS",
    }
    assert later.status_code == 200


async def test_overlapping_opening_hours_are_refused(roo: Sandbox) -> None:
    hours = {
        "opening_hours": {
            "monday": [
                {"local_start_time": "08:00", "local_end_time": "12:00"},
                {"local_start_time": "11:00", "local_end_time": "14:00"},
            ]
        }
    }
    response = await roo.client.post(f"{SITE}/opening_hours", json=hours, headers=await authed(roo))
    assert response.status_code == 400


async def test_opening_during_a_day_off_is_vacation_mode(roo: Sandbox) -> None:
    headers = await authed(roo)
    day_off = await roo.client.post(
        f"{SITE}/days_off",
        json={"start_date": "2025-01-06T00:00:00+00:00", "end_date": "2025-01-07T00:00:00+00:00"},
        headers=headers,
    )
    response = await roo.client.put(f"{SITE}/status", json={"status": "OPEN"}, headers=headers)
    listed = await roo.client.get(f"{SITE}/days_off", headers=headers)
    deleted = await roo.client.delete(f"{SITE}/days_off/{day_off.json()['id']}", headers=headers)
    reopened = await roo.client.put(f"{SITE}/status", json={"status": "OPEN"}, headers=headers)

    assert day_off.status_code == 201
    assert "VACATION_MODE" in response.json()["error"]["message"]
    assert listed.json()["total"] == 1
    assert deleted.status_code == 204
    assert reopened.status_code == 200


async def test_three_auto_rejections_in_15_minutes_close_the_site(roo: Sandbox) -> None:
    headers = await authed(roo)
    await roo.client.get(f"{SITE}/status", headers=headers)
    for _ in range(3):
        await roo.client.post("/__sandbox/stores/site-1/auto-rejections")
        roo.clock.advance(60)

    status = await roo.client.get(f"{SITE}/status", headers=headers)
    reopen = await roo.client.put(f"{SITE}/status", json={"status": "OPEN"}, headers=headers)

    assert status.json() == {"status": "CLOSED"}
    assert reopen.json()["error"]["message"] == "Unable to open restaurant, reason: CLOSED_PERIOD"


async def test_busy_mode_and_prep_times(roo: Sandbox) -> None:
    headers = await authed(roo)
    busy = await roo.client.put(f"{SITE}/workload/mode", json={"mode": "BUSY"}, headers=headers)
    bad = await roo.client.put(f"{SITE}/workload/mode", json={"mode": "SLEEPY"}, headers=headers)
    times = await roo.client.put(f"{SITE}/workload/times", json={"busy": 30}, headers=headers)
    assert busy.json() == {"mode": "BUSY"}
    assert bad.status_code == 400
    assert times.json() == {"busy": 30}
    assert (await roo.client.get(f"{SITE}/workload/mode", headers=headers)).json()["mode"] == "BUSY"


async def test_discovery_lists_brands_and_sites(roo: Sandbox) -> None:
    await publish(roo, valid_menu())
    headers = await authed(roo)
    brands = await roo.client.get("/site/v1/brands", headers=headers)
    sites = await roo.client.get("/site/v1/brands/brand-1/sites", headers=headers)
    location = await roo.client.get("/site/v1/restaurant_locations/site-1", headers=headers)
    assert brands.json()["brands"] == [{"id": "brand-1", "name": "brand-1", "market": "AE"}]
    assert [s["id"] for s in sites.json()["sites"]] == ["site-1"]
    assert location.json() == {"id": "site-1", "brand_id": ["brand-1"]}


# ----- strict mode --------------------------------------------------------------------------


async def test_strict_mode_needs_registered_sites(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo", strict=True)
    headers = await authed(sandbox)

    unknown = await sandbox.client.put(MENU_PATH, json=valid_menu(), headers=headers)
    registered = await sandbox.client.post(
        "/__sandbox/stores", json={"storeId": "site-1", "brandId": "brand-1", "market": "AE"}
    )
    known = await sandbox.client.put(MENU_PATH, json=valid_menu(), headers=headers)

    assert unknown.status_code == 404
    assert registered.status_code == 201
    assert known.status_code == 200


# ----- v3 large-menu flow -------------------------------------------------------------------


async def test_v3_upload_url_then_publish_job(roo: Sandbox) -> None:
    headers = await authed(roo)
    started = await roo.client.put("/menu/v3/brands/brand-1/menus/main", headers=headers)
    upload_url = started.json()["upload_url"]
    path = httpx2.URL(upload_url).path

    uploaded = await roo.client.put(path, json=valid_menu())
    reused = await roo.client.put(path, json=valid_menu())
    job = await roo.client.post(
        "/menu/v3/brands/brand-1/jobs",
        json={"action": "publish_menu_to_live", "params": {"menu_id": "main"}},
        headers=headers,
    )
    await roo.settle()
    polled = await roo.client.get(
        f"/menu/v3/brands/brand-1/jobs/{job.json()['id']}", headers=headers
    )

    assert uploaded.status_code == 200
    assert reused.status_code == 403
    assert polled.json()["status"] == "completed"
    assert (await roo.store("site-1"))["menu"] == valid_menu()


async def test_v3_upload_url_expires(roo: Sandbox) -> None:
    started = await roo.client.put("/menu/v3/brands/brand-1/menus/main", headers=await authed(roo))
    roo.clock.advance(3600)
    late = await roo.client.put(httpx2.URL(started.json()["upload_url"]).path, json=valid_menu())
    assert late.status_code == 403
