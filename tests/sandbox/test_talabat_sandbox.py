"""The Delivery Hero middleware simulator (Talabat), exercised over HTTP."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import jwt
import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import Sandbox, SandboxFactory

PLUGIN_SECRET = "dh-plugin-secret-test-" + "x" * 48  # HS512 wants 64+ bytes
CALLBACK = "http://hooks.test/dh/catalog-callback"
CATALOG = "/v2/chains/chain-1/catalog"
LOGS = "/v2/chains/chain-1/vendors/branch-1/menu-import-logs"
ITEM_AVAILABILITY = "/v2/chains/chain-1/vendors/branch-1/catalog/items/availability"
STORE_AVAILABILITY = "/v2/chains/chain-1/remoteVendors/branch-1/availability"
WEEK = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def valid_catalog() -> dict[str, object]:
    """PLATFORMS.md 2.4's minimal Talabat example."""
    return {
        "items": {
            "menu-delivery": {
                "id": "menu-delivery",
                "type": "Menu",
                "menuType": "DELIVERY",
                "title": {"default": "Menu"},
                "products": {"latte": {"id": "latte", "type": "Product", "order": 1}},
                "schedule": {"all-week": {"id": "all-week", "type": "ScheduleEntry"}},
            },
            "all-week": {
                "id": "all-week",
                "type": "ScheduleEntry",
                "startTime": "08:00:00",
                "endTime": "23:00:00",
                "weekDays": WEEK,
            },
            "cat-coffee": {
                "id": "cat-coffee",
                "type": "Category",
                "title": {"default": "Coffee", "ar": "قهوة"},
                "products": {"latte": {"id": "latte", "type": "Product"}},
            },
            "latte": {
                "id": "latte",
                "type": "Product",
                "title": {"default": "Latte", "ar": "لاتيه"},
                "price": "18.00",
                "active": True,
                "isPrepackedItem": False,
                "isExpressItem": False,
                "excludeDishInformation": False,
                "toppings": {"size": {"id": "size", "type": "Topping"}},
            },
            "size": {
                "id": "size",
                "type": "Topping",
                "title": {"default": "Size"},
                "quantity": {"minimum": 1, "maximum": 1},
                "products": {
                    "grande": {"id": "grande", "type": "Product", "price": "0.00"},
                    "venti": {"id": "venti", "type": "Product", "price": "3.00"},
                },
            },
            "cat-hidden-options": {
                "id": "cat-hidden-options",
                "type": "Category",
                "title": {"default": "Options"},
                "products": {
                    "grande": {"id": "grande", "type": "Product"},
                    "venti": {"id": "venti", "type": "Product"},
                },
            },
            "grande": {"id": "grande", "type": "Product", "title": {"default": "Grande"}},
            "venti": {"id": "venti", "type": "Product", "title": {"default": "Venti"}},
        }
    }


@pytest.fixture
async def dh(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox("talabat", talabat_plugin_secret=PLUGIN_SECRET)


async def login(sandbox: Sandbox, username: str = "pos-user") -> dict[str, str]:
    response = await sandbox.client.post(
        "/v2/login",
        data={"username": username, "password": "pw", "grant_type": "client_credentials"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def submit(
    sandbox: Sandbox, catalog: dict[str, object], *, callback: str | None = CALLBACK
) -> str:
    body: dict[str, object] = {"vendors": ["branch-1"], "catalog": catalog}
    if callback:
        body["callbackUrl"] = callback
    response = await sandbox.client.put(CATALOG, json=body, headers=await login(sandbox))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "submitted"
    return str(response.json()["catalogImportId"])


def verify_middleware_jwt(sandbox: Sandbox, authorization: str) -> dict[str, object]:
    """Check the callback JWT the way a plugin must: HS512 signature and ``service`` claim."""
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    # Expiry is judged on the sandbox's (manual) clock, not the machine's.
    claims: dict[str, object] = jwt.decode(
        token, PLUGIN_SECRET, algorithms=["HS512"], options={"verify_exp": False}
    )
    assert claims["service"] == "middleware"
    now = sandbox.clock.now().timestamp()
    assert int(str(claims["iat"])) <= now < int(str(claims["exp"]))
    return claims


# ----- auth ---------------------------------------------------------------------------------


async def test_login_gives_a_jwt_for_1800_seconds(dh: Sandbox) -> None:
    response = await dh.client.post(
        "/v2/login", data={"username": "u", "password": "p", "grant_type": "client_credentials"}
    )
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert response.json()["expires_in"] == 1800
    assert response.json()["access_token"].count(".") == 2

    dh.clock.advance(1800)
    expired = await dh.client.put(CATALOG, json={}, headers=headers)
    other = await dh.client.get(STORE_AVAILABILITY, headers=headers)

    assert expired.status_code == 401
    assert expired.json() == {
        "errorCode": "AUTHENTICATION_ERROR",
        "message": "Invalid or expired token",
    }
    assert other.json()["code"] == "UNAUTHORIZED"


async def test_login_with_bad_credentials_is_401(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("talabat", credentials={"pos-user": "right"})
    response = await sandbox.client.post(
        "/v2/login",
        data={"username": "pos-user", "password": "wrong", "grant_type": "client_credentials"},
    )
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"}


# ----- catalog import -----------------------------------------------------------------------


async def test_valid_catalog_goes_live_with_signed_callbacks(dh: Sandbox) -> None:
    import_id = await submit(dh, valid_catalog())

    received = await dh.receiver.wait_for(2)

    progress, final = (r.json() for r in received)
    for hook in received:
        verify_middleware_jwt(dh, hook.headers["authorization"])
        assert hook.path == "/dh/catalog-callback"
    assert progress["status"] == "in_progress"
    assert progress["catalogImportId"] == import_id
    assert final["status"] == "done"
    assert final["details"] == [
        {
            "status": "done",
            "posVendorId": "branch-1",
            "platformVendorId": "tb_ae-branch-1",
            "globalEntityId": "TB_AE",
        }
    ]
    store = await dh.store("branch-1")
    assert store["menu"] == valid_catalog()
    assert store["lastImport"]["status"] == "done"  # type: ignore[index]


async def test_import_logs_record_every_state(dh: Sandbox) -> None:
    import_id = await submit(dh, valid_catalog(), callback=None)
    await dh.settle()
    headers = await login(dh)

    latest = await dh.client.get(LOGS, headers=headers)
    both = await dh.client.get(LOGS, params={"limit": 5, "sort": "asc"}, headers=headers)
    too_many = await dh.client.get(LOGS, params={"limit": 101}, headers=headers)
    too_wide = await dh.client.get(
        LOGS,
        params={"from": "2024-11-01T00:00:00+00:00", "to": "2025-01-06T00:00:00+00:00"},
        headers=headers,
    )

    entries = latest.json()["menuImportLogs"]["branch-1"]
    assert len(entries) == 1
    assert entries[0]["status"] == "done"
    assert entries[0]["message"] == "Import successful"
    assert entries[0]["menuImportId"] == import_id
    assert [e["status"] for e in both.json()["menuImportLogs"]["branch-1"]] == [
        "in_progress",
        "done",
    ]
    assert too_many.status_code == 400
    assert too_many.json()["errorCode"] == "BAD_REQUEST"
    assert too_wide.status_code == 400


async def test_a_204_reply_stops_further_callbacks(dh: Sandbox) -> None:
    dh.receiver.script.append(204)

    await submit(dh, valid_catalog())
    await dh.settle()

    assert [r.json()["status"] for r in dh.receiver.received] == ["in_progress"]
    assert (await dh.store("branch-1"))["menu"] == valid_catalog()


async def test_callbacks_are_retried_on_5xx_and_429_but_not_on_400(dh: Sandbox) -> None:
    dh.receiver.script.extend([500, 429, 200, 400])

    await submit(dh, valid_catalog())
    await dh.settle()

    statuses = [r.json()["status"] for r in dh.receiver.received]
    assert statuses == ["in_progress", "in_progress", "in_progress", "done"]


async def test_async_failures_report_per_platform_rows(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox(
        "talabat", talabat_global_entities=["TB_AE", "HS_SA"], talabat_plugin_secret=PLUGIN_SECRET
    )
    await sandbox.client.put("/__sandbox/faults", json={"asyncFailRate": 1})

    await submit(sandbox, valid_catalog())
    received = await sandbox.receiver.wait_for(2)

    final = received[1].json()
    assert final["status"] == "failed"
    assert [(d["globalEntityId"], d["status"]) for d in final["details"]] == [
        ("TB_AE", "failed"),
        ("HS_SA", "failed"),
    ]
    assert (await sandbox.store("branch-1"))["menu"] is None


async def test_partial_platform_failure_is_done_with_errors(make_sandbox: SandboxFactory) -> None:
    # With seed 0 the generator draws 0.844 then 0.758: at a 0.8 failure rate the first
    # platform succeeds and the second fails.
    sandbox = await make_sandbox("talabat", talabat_global_entities=["TB_AE", "HS_SA"], seed=0)
    await sandbox.client.put("/__sandbox/faults", json={"asyncFailRate": 0.8})

    await submit(sandbox, valid_catalog())
    final = (await sandbox.receiver.wait_for(2))[1].json()

    assert final["status"] == "done_with_errors"
    assert [d["status"] for d in final["details"]] == ["done", "failed"]


def _with(path: str, value: object) -> dict[str, object]:
    catalog = copy.deepcopy(valid_catalog())
    target: dict[str, object] = catalog["items"]  # type: ignore[assignment]
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[part]  # type: ignore[assignment]
    if value is None:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return catalog


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        (
            _with("cat-coffee", None),
            "does not belong to a category",
        ),
        (
            {
                "items": {
                    k: v for k, v in valid_catalog()["items"].items() if not k.startswith("cat")
                }
            },  # type: ignore[attr-defined]
            "Catalog must contain at least one category",
        ),
        (_with("size.quantity", {"minimum": 0, "maximum": 1}), "single mandatory choice"),
        (_with("size.quantity", {"minimum": 1, "maximum": 2}), "single mandatory choice"),
        (_with("latte.price", "18,00"), "decimal amount in major units"),
        (_with("latte.price", "-1.00"), "decimal amount in major units"),
        (_with("latte.title", {"en": "Latte"}), "non-empty 'default'"),
        (_with("latte.price", None), "Product 'latte' on menu 'menu-delivery' has no price"),
        (
            _with("latte.toppings", {"milk": {"id": "milk", "type": "Topping"}}),
            "reference to unknown item 'milk'",
        ),
        (_with("cat-coffee.products.latte.type", "Topping"), "'latte' is a Product, not a Topping"),
        (
            _with("grande.parent", {"id": "venti", "type": "Product"}),
            "cannot be in the same category",
        ),
        (_with("all-week.startTime", "8am"), "startTime and endTime must be HH:MM:SS"),
        (_with("latte.id", "other"), "id must repeat its key"),
    ],
)
async def test_invalid_catalog_fails_asynchronously(
    dh: Sandbox, catalog: dict[str, object], message: str
) -> None:
    await submit(dh, catalog)
    final = (await dh.receiver.wait_for(2))[1].json()

    assert final["status"] == "failed"
    assert message in str(final["message"])
    assert (await dh.store("branch-1"))["menu"] is None


def _nested_catalog(levels: int) -> dict[str, object]:
    """``latte`` with a chain of ``levels`` topping levels, each a 1/1 choice."""
    catalog = valid_catalog()
    items: dict[str, object] = catalog["items"]  # type: ignore[assignment]
    owner = "grande"
    hidden = items["cat-hidden-options"]["products"]  # type: ignore[index]
    for level in range(2, levels + 1):
        topping, option = f"t{level}", f"o{level}"
        items[owner]["toppings"] = {topping: {"id": topping, "type": "Topping"}}  # type: ignore[index]
        items[topping] = {
            "id": topping,
            "type": "Topping",
            "title": {"default": topping},
            "quantity": {"min": 0, "max": 1},
            "products": {option: {"id": option, "type": "Product", "price": "1.00"}},
        }
        items[option] = {"id": option, "type": "Product", "title": {"default": option}}
        hidden[option] = {"id": option, "type": "Product"}
        owner = option
    return catalog


async def test_two_topping_levels_are_accepted(dh: Sandbox) -> None:
    await submit(dh, _nested_catalog(2))
    final = (await dh.receiver.wait_for(2))[1].json()
    assert final["status"] == "done", final["message"]


async def test_a_third_topping_level_is_rejected(dh: Sandbox) -> None:
    await submit(dh, _nested_catalog(3))
    final = (await dh.receiver.wait_for(2))[1].json()
    assert "toppings can be nested at most 2 levels" in final["message"]


async def test_a_variant_of_a_variant_is_a_nested_product(dh: Sandbox) -> None:
    catalog = valid_catalog()
    items: dict[str, object] = catalog["items"]  # type: ignore[assignment]
    items["latte-large"] = {
        "id": "latte-large",
        "type": "Product",
        "title": {"default": "Large"},
        "price": "20.00",
        "parent": {"id": "latte", "type": "Product"},
    }
    items["latte-xl"] = {
        "id": "latte-xl",
        "type": "Product",
        "title": {"default": "XL"},
        "price": "22.00",
        "parent": {"id": "latte-large", "type": "Product"},
    }
    items["cat-sizes"] = {
        "id": "cat-sizes",
        "type": "Category",
        "title": {"default": "Sizes"},
        "products": {
            "latte-large": {"id": "latte-large", "type": "Product"},
            "latte-xl": {"id": "latte-xl", "type": "Product"},
        },
    }
    await submit(dh, catalog)
    final = (await dh.receiver.wait_for(2))[1].json()
    assert "products cannot be nested" in final["message"]


async def test_pandora_schedules_may_not_cross_midnight(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("talabat", talabat_rules="pandora")
    catalog = _with("all-week.endTime", "02:00:00")
    await submit(sandbox, catalog)
    final = (await sandbox.receiver.wait_for(2))[1].json()
    assert "may not cross midnight" in final["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"vendors": [], "catalog": {"items": {}}}, 400),
        ({"vendors": ["branch-1"]}, 400),
        ({"vendors": ["branch-1"], "catalog": {"items": {}}, "callbackUrl": "ftp://x"}, 400),
    ],
)
async def test_catalog_envelope_is_checked_synchronously(
    dh: Sandbox, body: dict[str, object], status: int
) -> None:
    response = await dh.client.put(CATALOG, json=body, headers=await login(dh))
    assert response.status_code == status
    assert response.json()["errorCode"] == "BAD_REQUEST"


async def test_strict_mode_knows_only_registered_chains_and_users(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("talabat", strict=True)
    body = {"vendors": ["branch-1"], "catalog": valid_catalog()}

    unknown = await sandbox.client.put(CATALOG, json=body, headers=await login(sandbox))
    await sandbox.client.post(
        "/__sandbox/stores",
        json={"storeId": "branch-1", "chainCode": "chain-1", "username": "owner"},
    )
    stranger = await sandbox.client.put(CATALOG, json=body, headers=await login(sandbox, "other"))
    owner = await sandbox.client.put(CATALOG, json=body, headers=await login(sandbox, "owner"))

    assert unknown.status_code == 404
    assert stranger.status_code == 403
    assert stranger.json()["message"] == "User not matching"
    assert owner.status_code == 202


async def test_legacy_xml_import_is_gone(dh: Sandbox) -> None:
    response = await dh.client.post(
        "/v2/chains/chain-1/remoteVendors/branch-1/menuImport", headers=await login(dh)
    )
    assert response.status_code == 410


# ----- item availability --------------------------------------------------------------------


async def live_vendor(sandbox: Sandbox) -> dict[str, str]:
    await submit(sandbox, valid_catalog(), callback=None)
    await sandbox.settle()
    return await login(sandbox)


async def test_item_availability_answers_204_and_changes_the_store(dh: Sandbox) -> None:
    headers = await live_vendor(dh)

    put = await dh.client.put(
        ITEM_AVAILABILITY,
        json={"globalEntityId": "TB_AE", "items": ["latte"], "type": "ITEM", "isAvailable": False},
        headers=headers,
    )
    post = await dh.client.post(
        ITEM_AVAILABILITY,
        json={"items": ["grande"], "type": "TOPPING", "isAvailable": False},
        headers=headers,
    )
    listed = await dh.client.get(
        "/v2/chains/chain-1/vendors/branch-1/catalog/items/unavailable", headers=headers
    )

    assert (put.status_code, post.status_code) == (204, 204)
    unavailable = listed.json()[0]["unavailableItems"][0]
    assert unavailable["items"] == [{"id": "latte", "name": "Latte"}]
    assert unavailable["toppings"] == [{"id": "grande", "name": "Grande"}]


async def test_item_availability_until_a_timestamp_expires_on_the_clock(dh: Sandbox) -> None:
    headers = await live_vendor(dh)
    response = await dh.client.put(
        ITEM_AVAILABILITY,
        json={
            "items": ["latte"],
            "type": "ITEM",
            "isAvailable": False,
            "willBeAvailable": "AT_TIMESTAMP",
            "atTimeStamp": "2025-01-06T10:00:00Z",
        },
        headers=headers,
    )
    before = (await dh.store("branch-1"))["availability"]
    dh.clock.advance(3600)
    after = (await dh.store("branch-1"))["availability"]

    assert response.status_code == 204
    assert before == {
        "unavailable": [{"type": "ITEM", "id": "latte", "until": "2025-01-06T10:00:00Z"}]
    }
    assert after == {"unavailable": []}


@pytest.mark.parametrize(
    "body",
    [
        {"items": ["latte"], "type": "DISH", "isAvailable": False},
        {"items": ["latte"], "type": "ITEM", "isAvailable": "no"},
        {"items": [], "type": "ITEM", "isAvailable": False},
        {
            "items": ["latte"],
            "type": "ITEM",
            "isAvailable": True,
            "willBeAvailable": "AT_TIMESTAMP",
        },
        {
            "items": ["latte"],
            "type": "ITEM",
            "isAvailable": False,
            "willBeAvailable": "AT_TIMESTAMP",
        },
        {
            "items": ["latte"],
            "type": "ITEM",
            "isAvailable": False,
            "atTimeStamp": "2025-02-01T00:00:00Z",
        },
        {"items": ["latte"], "type": "ITEM", "isAvailable": False, "willBeAvailable": "SOON"},
    ],
)
async def test_invalid_item_availability_is_400(dh: Sandbox, body: dict[str, object]) -> None:
    response = await dh.client.put(ITEM_AVAILABILITY, json=body, headers=await live_vendor(dh))
    assert response.status_code == 400
    assert response.json()["errorCode"] == "BAD_REQUEST"


async def test_item_availability_on_an_unsupported_platform_is_partial(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("talabat", talabat_global_entities=["TB_AE", "HS_SA"])
    headers = await live_vendor(sandbox)
    await sandbox.client.put(
        "/__sandbox/stores/branch-1/platforms/HS_SA", json={"itemAvailability": "Not Supported"}
    )

    response = await sandbox.client.put(
        ITEM_AVAILABILITY,
        json={"items": ["latte"], "type": "ITEM", "isAvailable": False},
        headers=headers,
    )

    assert response.status_code == 200
    assert response.json()["status"] == "Partial Success"
    assert [d["status"] for d in response.json()["details"]] == ["Success", "Not Supported"]


# ----- store availability -------------------------------------------------------------------


async def test_closing_for_minutes_reopens_on_the_clock(dh: Sandbox) -> None:
    headers = await login(dh)
    rows = (await dh.client.get(STORE_AVAILABILITY, headers=headers)).json()
    row = rows[0]
    assert row["changeable"] is True
    assert row["availabilityState"] == "OPEN"
    assert row["platformKey"] == "TB"

    closed = await dh.client.put(
        STORE_AVAILABILITY,
        json={
            "availabilityState": "CLOSED_UNTIL",
            "platformKey": "TB",
            "platformRestaurantId": row["platformRestaurantId"],
            "closedReason": "TOO_BUSY_KITCHEN",
            "closingMinutes": 30,
        },
        headers=headers,
    )
    dh.clock.advance(30 * 60)
    reopened = (await dh.client.get(STORE_AVAILABILITY, headers=await login(dh))).json()[0]

    assert closed.json()["availabilityState"] == "CLOSED_UNTIL"
    assert closed.json()["closedUntil"] == "2025-01-06T09:30:00Z"
    assert reopened["availabilityState"] == "OPEN"


@pytest.mark.parametrize(
    "change",
    [
        {"availabilityState": "SLEEPING"},
        {"availabilityState": "CLOSED", "closedReason": "BORED"},
        {"availabilityState": "CLOSED_UNTIL", "closedReason": "OTHER", "closingMinutes": 7},
    ],
)
async def test_store_availability_outside_the_allowed_lists_is_400(
    dh: Sandbox, change: dict[str, object]
) -> None:
    headers = await login(dh)
    row = (await dh.client.get(STORE_AVAILABILITY, headers=headers)).json()[0]
    body = {"platformKey": "TB", "platformRestaurantId": row["platformRestaurantId"], **change}
    response = await dh.client.put(STORE_AVAILABILITY, json=body, headers=headers)
    assert response.status_code == 400


async def test_vendor_closed_by_the_platform_is_not_changeable(dh: Sandbox) -> None:
    headers = await login(dh)
    row = (await dh.client.get(STORE_AVAILABILITY, headers=headers)).json()[0]
    await dh.client.post("/__sandbox/stores/branch-1/platform-closure", json={})

    current = (await dh.client.get(STORE_AVAILABILITY, headers=headers)).json()[0]
    reopen = await dh.client.put(
        STORE_AVAILABILITY,
        json={
            "availabilityState": "OPEN",
            "platformKey": "TB",
            "platformRestaurantId": row["platformRestaurantId"],
        },
        headers=headers,
    )

    assert current["changeable"] is False
    assert current["closedReason"] == "TOO_MANY_REJECTED_ORDERS"
    assert current["availabilityStates"] == []
    assert reopen.status_code == 403


async def test_availability_read_can_answer_204_pending(dh: Sandbox) -> None:
    headers = await login(dh)
    await dh.client.get(STORE_AVAILABILITY, headers=headers)
    await dh.client.put("/__sandbox/stores/branch-1/availability-pending", json={"count": 2})

    statuses = [
        (await dh.client.get(STORE_AVAILABILITY, headers=headers)).status_code for _ in range(3)
    ]

    assert statuses == [204, 204, 200]


async def test_platform_vendors_lists_one_row_per_platform(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("talabat", talabat_global_entities=["TB_AE", "HS_SA"])
    response = await sandbox.client.get(
        "/v2/chains/chain-1/vendors/branch-1/platform-vendors", headers=await login(sandbox)
    )
    assert [r["globalEntityId"] for r in response.json()] == ["TB_AE", "HS_SA"]


# ----- rate budget --------------------------------------------------------------------------


async def test_no_rate_limit_by_default_but_a_configured_budget_answers_429(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("talabat", talabat_requests_per_minute=3)
    headers = await login(sandbox)
    statuses = [
        (await sandbox.client.get(STORE_AVAILABILITY, headers=headers)).status_code
        for _ in range(3)
    ]
    sandbox.clock.advance(60)
    after = await sandbox.client.get(STORE_AVAILABILITY, headers=headers)

    assert statuses == [200, 200, 429]
    assert after.status_code == 200
