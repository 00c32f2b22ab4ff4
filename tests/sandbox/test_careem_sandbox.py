"""The Careem simulator (identity host + POS API), exercised over HTTP."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import Sandbox, SandboxFactory

API_KEY = "careem-static-key-test"
API = "/pos/api/v1"


def valid_catalog() -> dict[str, object]:
    return {
        "diff": False,
        "catalog": {"id": "cat-1", "name": "Main", "currency_id": 1, "category_ids": ["mains"]},
        "categories": [
            {
                "id": "mains",
                "name": "Mains",
                "name_localized": {"en": "Mains", "ar": "أطباق رئيسية"},
                "items": ["shawarma"],
            }
        ],
        "items": [
            {
                "id": "shawarma",
                "name": "Shawarma",
                "name_localized": {"en": "Shawarma", "ar": "شاورما"},
                "active": True,
                "price": 25,
                "groups": ["sauce"],
            }
        ],
        "groups": [
            {
                "id": "sauce",
                "name": "Sauce",
                "name_localized": {"en": "Sauce"},
                "multi_select": False,
                "min": 1,
                "max": 1,
                "options": ["garlic", "tahini"],
            }
        ],
        "options": [
            {"id": "garlic", "name": "Garlic", "active": True, "price": 0},
            {"id": "tahini", "name": "Tahini", "active": True, "price": 1},
        ],
    }


@pytest.fixture
async def careem(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox("careem", careem_webhook_api_key=API_KEY)


async def bearer(sandbox: Sandbox) -> dict[str, str]:
    response = await sandbox.client.post(
        "/token",
        files={
            "client_id": (None, "client"),
            "client_secret": (None, "secret"),
            "grant_type": (None, "client_credentials"),
            "scope": (None, "pos"),
        },
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}", "User-Agent": "menusync"}


async def push(
    sandbox: Sandbox, body: dict[str, object], branch: str = "branch-1"
) -> dict[str, object]:
    response = await sandbox.client.put(
        f"{API}/catalogs", json=body, headers={**await bearer(sandbox), "Branch-Id": branch}
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert isinstance(data, dict)
    return data


async def push_and_wait(sandbox: Sandbox, body: dict[str, object]) -> dict[str, object]:
    before = len(sandbox.receiver.received)
    await push(sandbox, body)
    hook = (await sandbox.receiver.wait_for(before + 1))[before]
    details = hook.json()["details"]
    assert isinstance(details, dict)
    return details


# ----- identity -----------------------------------------------------------------------------


async def test_multipart_token_lives_24_hours_and_old_tokens_stay_valid(careem: Sandbox) -> None:
    first = await bearer(careem)
    response = await careem.client.post(
        "/token",
        files={
            "client_id": (None, "client"),
            "client_secret": (None, "secret"),
            "grant_type": (None, "client_credentials"),
            "scope": (None, "pos"),
        },
    )
    assert response.json()["expires_in"] == 86399
    assert response.json()["scope"] == "pos"
    assert (await careem.client.get(f"{API}/brands", headers=first)).status_code == 200

    careem.clock.advance(86399)
    expired = await careem.client.get(f"{API}/brands", headers=first)

    assert expired.status_code == 401
    assert expired.json()["code"] == "UNAUTHORIZED_ERROR"
    assert set(expired.json()) == {"message", "code", "error_type", "errors"}


async def test_token_request_must_be_multipart_with_scope_pos(careem: Sandbox) -> None:
    form = {"client_id": "c", "client_secret": "s", "grant_type": "client_credentials"}
    urlencoded = await careem.client.post("/token", data={**form, "scope": "pos"})
    no_scope = await careem.client.post("/token", files={k: (None, v) for k, v in form.items()})
    assert urlencoded.status_code == 400
    assert no_scope.status_code == 400
    assert no_scope.json()["error"] == "invalid_scope"


async def test_bad_client_credentials(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("careem", credentials={"client": "right"})
    response = await sandbox.client.post(
        "/token",
        files={
            "client_id": (None, "client"),
            "client_secret": (None, "wrong"),
            "grant_type": (None, "client_credentials"),
            "scope": (None, "pos"),
        },
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Bad client credentials",
    }


async def test_user_agent_and_branch_id_headers_are_required(careem: Sandbox) -> None:
    headers = await bearer(careem)
    no_agent = await careem.client.put(
        f"{API}/catalogs",
        json=valid_catalog(),
        headers={**headers, "User-Agent": "", "Branch-Id": "branch-1"},
    )
    no_branch = await careem.client.put(f"{API}/catalogs", json=valid_catalog(), headers=headers)
    assert no_agent.status_code == 400
    assert no_agent.json()["errors"][0]["field"] == "User-Agent"
    assert no_branch.status_code == 400
    assert no_branch.json()["code"] == "VALIDATION_ERROR"


# ----- catalog ------------------------------------------------------------------------------


async def test_valid_catalog_completes_with_a_keyed_webhook_and_goes_live(careem: Sandbox) -> None:
    accepted = await push(careem, valid_catalog())
    hook = (await careem.receiver.wait_for(1))[0]

    assert accepted["url"] == f"/catalogs/status/{accepted['request_id']}"
    assert hook.headers["x-careem-api-key"] == API_KEY
    event = hook.json()
    assert event["event_type"] == "CATALOG_REQUEST_STATUS_UPDATED"
    assert event["details"]["status"] == "COMPLETED"  # type: ignore[index]
    assert event["details"]["request_id"] == accepted["request_id"]  # type: ignore[index]
    assert event["details"]["vendor_branch_id"] == "branch-1"  # type: ignore[index]
    assert str(event["occurred_at"]).endswith("Z")
    status = await careem.client.get(
        f"{API}/catalogs/status/{accepted['request_id']}", headers=await bearer(careem)
    )
    assert status.json() == {"catalog_id": "cat-1", "status": "COMPLETED", "reason": None}
    store = await careem.store("branch-1")
    menu = store["menu"]
    assert isinstance(menu, dict)
    assert menu["catalog"] == valid_catalog()["catalog"]
    assert menu["items"] == valid_catalog()["items"]


async def test_status_is_pending_and_pushes_conflict_while_a_job_runs(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("careem", processing_delay_seconds=0.2)
    await sandbox.client.put("/__sandbox/limits", json={})
    accepted = await push(sandbox, valid_catalog())
    headers = await bearer(sandbox)

    pending = await sandbox.client.get(
        f"{API}/catalogs/status/{accepted['request_id']}", headers=headers
    )
    conflict = await sandbox.client.put(
        f"{API}/catalogs", json=valid_catalog(), headers={**headers, "Branch-Id": "branch-1"}
    )
    await sandbox.settle()
    again = await sandbox.client.put(
        f"{API}/catalogs", json=valid_catalog(), headers={**headers, "Branch-Id": "branch-1"}
    )

    assert pending.json()["status"] == "PENDING"
    assert conflict.status_code == 409
    assert again.status_code == 200


async def test_one_sync_per_branch_every_two_minutes(careem: Sandbox) -> None:
    await push(careem, valid_catalog())
    await careem.settle()
    headers = {**await bearer(careem), "Branch-Id": "branch-1"}

    careem.clock.advance(119)
    too_soon = await careem.client.put(f"{API}/catalogs", json=valid_catalog(), headers=headers)
    careem.clock.advance(1)
    on_time = await careem.client.put(f"{API}/catalogs", json=valid_catalog(), headers=headers)

    assert too_soon.status_code == 429
    assert too_soon.json()["code"] == "RATE_LIMIT_ERROR"
    assert on_time.status_code == 200


async def test_fifty_syncs_per_minute_across_branches(careem: Sandbox) -> None:
    headers = await bearer(careem)
    statuses = [
        (
            await careem.client.put(
                f"{API}/catalogs", json=valid_catalog(), headers={**headers, "Branch-Id": f"b{i}"}
            )
        ).status_code
        for i in range(51)
    ]
    careem.clock.advance(60)
    after = await careem.client.put(
        f"{API}/catalogs", json=valid_catalog(), headers={**headers, "Branch-Id": "b-late"}
    )
    assert statuses[:50] == [200] * 50
    assert statuses[50] == 429
    assert after.status_code == 200


def _changed(mutate: str, value: object) -> dict[str, object]:
    body = copy.deepcopy(valid_catalog())
    target: object = body
    parts = mutate.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]  # type: ignore[index]
    target[parts[-1]] = value  # type: ignore[index]
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_changed("catalog.currency_id", 15), "currency_id must be between 1 and 14"),
        (_changed("catalog.currency_id", 0), "currency_id must be between 1 and 14"),
        (_changed("items.0.name", "  "), "Name cannot be blank!"),
        (_changed("groups.0.name", ""), "Name cannot be blank!"),
        (_changed("items.0.name_localized", {"en": "x", "fr": "y"}), "Arabic and English"),
        (_changed("items.0.price", "25"), "price must be a non-negative number"),
        (_changed("items.0.price", -1), "price must be a non-negative number"),
        ({"diff": True}, "a diff request must change at least one entity"),
        (
            _changed(
                "items",
                [{"id": f"i{n}", "name": "x", "active": True, "price": 1} for n in range(8501)],
            ),
            "at most 8500 items",
        ),
    ],
)
async def test_invalid_catalog_is_refused_synchronously(
    careem: Sandbox, body: dict[str, object], message: str
) -> None:
    response = await careem.client.put(
        f"{API}/catalogs", json=body, headers={**await bearer(careem), "Branch-Id": "branch-1"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert message in response.json()["message"]


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"min": 1, "max": 3}, "max must be between group min and number of group options"),
        ({"min": 2, "max": 1}, "max must be between group min and number of group options"),
        ({"min": 3, "max": 3}, "min must be between 0 and number of group options"),
        ({"multi_select": True, "min": 1, "max": 2}, "min must be greater than 1"),
        ({"multi_select": True, "min": 2, "max": 3}, "max must equal min"),
    ],
)
async def test_group_rules_fail_the_request_asynchronously(
    careem: Sandbox, group: dict[str, object], message: str
) -> None:
    body = valid_catalog()
    body["groups"][0].update(group)  # type: ignore[index]

    details = await push_and_wait(careem, body)

    assert details["status"] == "FAILED"
    assert "validation error, customization group" in str(details["reason"])
    assert message in str(details["reason"])
    assert (await careem.store("branch-1"))["menu"] is None


async def test_nested_groups_cannot_be_multi_select(careem: Sandbox) -> None:
    body = valid_catalog()
    body["groups"][0].update({"multi_select": True, "min": 2, "max": 2})  # type: ignore[index]
    body["groups"].append(  # type: ignore[attr-defined]
        {"id": "extra", "name": "Extra", "min": 0, "max": 1, "options": ["tahini"]}
    )
    body["options"][0]["groups"] = ["extra"]  # type: ignore[index]
    details = await push_and_wait(careem, body)
    assert "nested groups cannot be multiSelect" in str(details["reason"])


async def test_unknown_references_fail_the_request(careem: Sandbox) -> None:
    details = await push_and_wait(careem, _changed("categories.0.items", ["ghost"]))
    assert details["status"] == "FAILED"
    assert "references unknown item ghost" in str(details["reason"])


async def test_diff_merges_and_deletes_while_full_push_replaces(careem: Sandbox) -> None:
    await push_and_wait(careem, valid_catalog())
    careem.clock.advance(120)
    diff = {
        "diff": True,
        "items": [{"id": "falafel", "name": "Falafel", "active": True, "price": 12}],
        "categories": [{"id": "mains", "items": ["shawarma", "falafel"]}],
        "options": [{"id": "tahini", "deleted": True}],
        "groups": [{"id": "sauce", "options": ["garlic"]}],
    }
    merged = await push_and_wait(careem, diff)
    merged_menu = (await careem.store("branch-1"))["menu"]
    careem.clock.advance(120)
    replaced = await push_and_wait(careem, valid_catalog())
    replaced_menu = (await careem.store("branch-1"))["menu"]

    assert merged["status"] == "COMPLETED"
    assert [i["id"] for i in merged_menu["items"]] == ["shawarma", "falafel"]  # type: ignore[index]
    assert [o["id"] for o in merged_menu["options"]] == ["garlic"]  # type: ignore[index]
    assert replaced["status"] == "COMPLETED"
    assert [i["id"] for i in replaced_menu["items"]] == ["shawarma"]  # type: ignore[index]


async def test_read_lag_hides_a_completed_catalog_for_a_while(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("careem", careem_read_lag_seconds=300)
    await push_and_wait(sandbox, valid_catalog())
    before = (await sandbox.store("branch-1"))["menu"]
    sandbox.clock.advance(300)
    after = (await sandbox.store("branch-1"))["menu"]
    assert before is None
    assert after is not None


async def test_deprecated_catalog_reset(careem: Sandbox) -> None:
    response = await careem.client.delete(
        f"{API}/catalogs", headers={**await bearer(careem), "Branch-Id": "branch-1"}
    )
    assert response.json()["code"] == "API_DEPRECATED_ERROR"


# ----- item availability --------------------------------------------------------------------


async def test_item_availability_in_batches_of_at_most_40(careem: Sandbox) -> None:
    await push_and_wait(careem, valid_catalog())
    headers = await bearer(careem)

    too_many = await careem.client.patch(
        f"{API}/catalogs/cat-1/items",
        json={"items": [{"id": "shawarma", "status": "inactive"}] * 41},
        headers=headers,
    )
    ok = await careem.client.patch(
        f"{API}/catalogs/cat-1/items",
        json={"items": [{"id": "shawarma", "status": "inactive"}]},
        headers=headers,
    )
    unknown = await careem.client.patch(
        f"{API}/catalogs/cat-1/items",
        json={"items": [{"id": "ghost", "status": "inactive"}]},
        headers=headers,
    )
    bad_status = await careem.client.patch(
        f"{API}/catalogs/cat-1/items",
        json={"items": [{"id": "shawarma", "status": "sold-out"}]},
        headers=headers,
    )

    assert too_many.status_code == 400
    assert ok.status_code == 204
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "NOT_FOUND_ERROR"
    assert bad_status.status_code == 400
    availability = (await careem.store("branch-1"))["availability"]
    assert availability == {"items": {"shawarma": "inactive"}, "unavailableItems": ["shawarma"]}


async def test_an_item_is_unavailable_when_its_group_lacks_active_options(careem: Sandbox) -> None:
    body = valid_catalog()
    body["groups"][0].update({"min": 2, "max": 2})  # type: ignore[index]
    body["options"][1]["active"] = False  # type: ignore[index]

    await push_and_wait(careem, body)

    availability = (await careem.store("branch-1"))["availability"]
    assert availability == {"items": {"shawarma": "active"}, "unavailableItems": ["shawarma"]}


# ----- branches -----------------------------------------------------------------------------


async def test_strict_branches_are_unmapped_until_careem_maps_them(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("careem", strict=True)
    headers = await bearer(sandbox)
    created = await sandbox.client.put(
        f"{API}/branches/branch-1", json={"name": "Marina", "brand_id": "brand-1"}, headers=headers
    )
    catalog_headers = {**headers, "Branch-Id": "branch-1"}

    unmapped = await sandbox.client.put(
        f"{API}/catalogs", json=valid_catalog(), headers=catalog_headers
    )
    hidden = await sandbox.client.post(
        f"{API}/branches/branch-1/visibility/status", json={"status_id": 1}, headers=headers
    )
    await sandbox.client.post("/__sandbox/stores/branch-1/map")
    mapped = await sandbox.client.put(
        f"{API}/catalogs", json=valid_catalog(), headers=catalog_headers
    )

    assert created.json()["state"] == "UNMAPPED"
    assert unmapped.status_code == 400
    assert unmapped.json()["errors"] == [
        {"field": "branch_id", "errors": [{"message": "branch_id is not mapped"}]}
    ]
    assert hidden.status_code == 404
    assert mapped.status_code == 200


async def test_timed_pause_reverts_on_the_clock(careem: Sandbox) -> None:
    headers = await bearer(careem)
    offline = await careem.client.post(
        f"{API}/branches/branch-1/visibility/status", json={"status_id": 2}, headers=headers
    )
    online = await careem.client.post(
        f"{API}/branches/branch-1/visibility/status", json={"status_id": 1}, headers=headers
    )
    paused = await careem.client.post(
        f"{API}/branches/branch-1/visibility/status/expiries",
        json={"status_id": 2, "till_time": 30},
        headers=headers,
    )
    during = (await careem.store("branch-1"))["status"]
    careem.clock.advance(30 * 60)
    after = (await careem.store("branch-1"))["status"]

    assert (offline.status_code, online.status_code, paused.status_code) == (204, 204, 201)
    assert paused.json()["end_date"] == "2025-01-06T09:30:00Z"
    assert during["status_id"] == 2  # type: ignore[index]
    assert after["status_id"] == 1  # type: ignore[index]


async def test_pos_integration_toggle_and_duplicate_names(careem: Sandbox) -> None:
    headers = await bearer(careem)
    await careem.client.put(f"{API}/branches/b1", json={"name": "Marina"}, headers=headers)
    duplicate = await careem.client.put(
        f"{API}/branches/b2", json={"name": "Marina"}, headers=headers
    )
    toggled = await careem.client.patch(
        f"{API}/branches/b1/status", json={"active": True}, headers=headers
    )
    brand = await careem.client.post(
        f"{API}/brands", json={"id": "x", "name": "Grill"}, headers=headers
    )
    brand_again = await careem.client.post(
        f"{API}/brands", json={"id": "y", "name": "Grill"}, headers=headers
    )
    assert duplicate.status_code == 409
    assert toggled.json()["active"] is True
    assert brand.status_code == 201
    assert brand_again.status_code == 409


@pytest.mark.parametrize(
    ("shift", "day"),
    [
        ({"start_time": "18:00", "end_time": "00:00"}, 1),
        ({"start_time": "09:00", "end_time": "17:00"}, 8),
    ],
)
async def test_invalid_operational_hours_are_refused(
    careem: Sandbox, shift: dict[str, str], day: int
) -> None:
    response = await careem.client.put(
        f"{API}/operational-hours",
        json={"operational_hours": [{"day_of_week": day, "active": True, "shifts": [shift]}]},
        headers={**await bearer(careem), "Brand-Id": "brand-1", "Branch-Id": "branch-1"},
    )
    assert response.status_code == 400


async def test_operational_hours_round_trip(careem: Sandbox) -> None:
    headers = {**await bearer(careem), "Brand-Id": "brand-1", "Branch-Id": "branch-1"}
    hours = [
        {"day_of_week": 1, "active": True, "shifts": [{"start_time": "11:00", "end_time": "23:59"}]}
    ]
    saved = await careem.client.put(
        f"{API}/operational-hours", json={"operational_hours": hours}, headers=headers
    )
    read = await careem.client.get(f"{API}/operational-hours", headers=headers)
    assert saved.status_code == 201
    assert read.json() == {"operational_hours": hours}


# ----- webhook delivery ---------------------------------------------------------------------


async def test_webhook_is_lost_after_five_attempts(careem: Sandbox) -> None:
    careem.receiver.script.extend([500] * 10)

    await push(careem, valid_catalog())
    await careem.settle()

    received = careem.receiver.received
    assert len(received) == 5
    assert len({r.json()["event_id"] for r in received}) == 1
    stats = (await careem.client.get("/__sandbox/stats")).json()
    assert stats["webhooks"] == {"sent": 5, "delivered": 0, "failed": 5, "dropped": 1}
