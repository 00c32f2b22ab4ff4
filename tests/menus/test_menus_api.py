"""The menus API: CRUD with versions, pagination bounds, error shapes, tenancy and roles."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.menus.samples import sample_document
from tests.conftest import table_count
from tests.support import auth_headers

MENUS = "/api/v1/menus"
OWNER = auth_headers()
OTHER_COMPANY = auth_headers(company="globex")


async def _create(client: httpx2.AsyncClient, **extra: Any) -> dict[str, Any]:
    response = await client.post(MENUS, json={"menu": sample_document(), **extra}, headers=OWNER)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


class TestCreateAndRead:
    async def test_create_returns_the_stored_menu_at_version_1(
        self, client: httpx2.AsyncClient
    ) -> None:
        created = await _create(client, externalId="pos-42")

        assert created["version"] == 1
        assert created["name"] == "Beit Zaatar - Main Menu"
        assert created["externalId"] == "pos-42"
        assert created["itemCount"] == 60
        assert len(created["contentHash"]) == 64
        fetched = await client.get(f"{MENUS}/{created['id']}", headers=OWNER)
        assert fetched.status_code == 200
        assert fetched.json()["data"]["menu"]["items"][0]["price"] == "22.00"

    async def test_create_is_audited(self, client: httpx2.AsyncClient, engine: AsyncEngine) -> None:
        await _create(client)

        assert await table_count(engine, "audit_logs") == 1

    async def test_invalid_body_is_422_with_field_paths_and_creates_nothing(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        document = sample_document()
        document["items"][2]["price"] = "-3"

        response = await client.post(MENUS, json={"menu": document}, headers=OWNER)

        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert "body.menu.items[2].price" in [issue["path"] for issue in error["details"]["issues"]]
        assert await table_count(engine, "menus") == 0

    async def test_inconsistent_menu_is_422_with_document_paths(
        self, client: httpx2.AsyncClient
    ) -> None:
        document = sample_document()
        document["categories"][0]["itemIds"].append("ghost")

        response = await client.post(MENUS, json={"menu": document}, headers=OWNER)

        assert response.status_code == 422
        assert response.json()["error"]["code"] == "menu_invalid"
        issues = response.json()["error"]["details"]["issues"]
        assert issues[0]["path"] == "body.menu.categories[0].itemIds[10]"

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"{not json", id="malformed-json"),
            pytest.param(b"[]", id="array"),
            pytest.param(b'{"menu": {}, "extra": 1}', id="unknown-field"),
        ],
    )
    async def test_malformed_bodies_are_422(self, client: httpx2.AsyncClient, body: bytes) -> None:
        response = await client.post(
            MENUS, content=body, headers={**OWNER, "Content-Type": "application/json"}
        )

        assert response.status_code == 422
        assert response.json()["success"] is False

    async def test_oversized_body_is_413(self, client: httpx2.AsyncClient) -> None:
        response = await client.post(
            MENUS,
            content=b'{"menu": "' + b"x" * (6 * 1024 * 1024) + b'"}',
            headers={**OWNER, "Content-Type": "application/json"},
        )

        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

    async def test_unknown_menu_is_404(self, client: httpx2.AsyncClient) -> None:
        response = await client.get(f"{MENUS}/{uuid.uuid4()}", headers=OWNER)

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "menu_not_found"

    async def test_malformed_menu_id_is_422(self, client: httpx2.AsyncClient) -> None:
        response = await client.get(f"{MENUS}/not-a-uuid", headers=OWNER)

        assert response.status_code == 422


class TestReplace:
    async def test_changed_content_bumps_the_version(self, client: httpx2.AsyncClient) -> None:
        created = await _create(client)
        document = sample_document()
        document["items"][0]["price"] = "23.00"

        response = await client.put(
            f"{MENUS}/{created['id']}", json={"menu": document}, headers=OWNER
        )

        assert response.status_code == 200
        data = response.json()["data"]
        assert data["version"] == 2
        assert data["contentHash"] != created["contentHash"]
        assert data["menu"]["items"][0]["price"] == "23.00"

    async def test_identical_content_keeps_the_version(self, client: httpx2.AsyncClient) -> None:
        created = await _create(client)

        response = await client.put(
            f"{MENUS}/{created['id']}",
            json={"menu": sample_document(), "name": "Renamed"},
            headers=OWNER,
        )

        assert response.json()["data"]["version"] == 1
        assert response.json()["data"]["name"] == "Renamed"


class TestDelete:
    async def test_deleted_menu_is_gone(self, client: httpx2.AsyncClient) -> None:
        created = await _create(client)

        response = await client.delete(f"{MENUS}/{created['id']}", headers=OWNER)

        assert response.status_code == 200
        assert (await client.get(f"{MENUS}/{created['id']}", headers=OWNER)).status_code == 404


class TestList:
    async def test_pages_are_bounded_and_counted(self, client: httpx2.AsyncClient) -> None:
        for index in range(3):
            await _create(client, externalId=f"m{index}")

        first = await client.get(MENUS, params={"page": 1, "limit": 2}, headers=OWNER)
        second = await client.get(MENUS, params={"page": 2, "limit": 2}, headers=OWNER)

        assert first.json()["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2}
        assert len(first.json()["data"]) == 2
        assert len(second.json()["data"]) == 1
        ids = {row["id"] for row in first.json()["data"] + second.json()["data"]}
        assert len(ids) == 3

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"page": 0}, {"page": "x"}])
    async def test_out_of_bounds_paging_is_422(
        self, client: httpx2.AsyncClient, params: dict[str, Any]
    ) -> None:
        response = await client.get(MENUS, params=params, headers=OWNER)

        assert response.status_code == 422


class TestTenancy:
    async def test_another_companys_menu_is_404_everywhere(
        self, client: httpx2.AsyncClient
    ) -> None:
        created = await _create(client)
        url = f"{MENUS}/{created['id']}"

        assert (await client.get(url, headers=OTHER_COMPANY)).status_code == 404
        replaced = await client.put(url, json={"menu": sample_document()}, headers=OTHER_COMPANY)
        assert replaced.status_code == 404
        assert (await client.delete(url, headers=OTHER_COMPANY)).status_code == 404
        listed = await client.get(MENUS, headers=OTHER_COMPANY)
        assert listed.json()["pagination"]["total"] == 0
        # And nothing changed for the owner.
        assert (await client.get(url, headers=OWNER)).json()["data"]["version"] == 1

    @pytest.mark.parametrize("role", ["cashier", "call_center"])
    async def test_roles_that_may_not_write_get_403(
        self, client: httpx2.AsyncClient, role: str
    ) -> None:
        created = await _create(client)
        headers = auth_headers(role=role)

        assert (
            await client.put(
                f"{MENUS}/{created['id']}", json={"menu": sample_document()}, headers=headers
            )
        ).status_code == 403
        assert (await client.delete(f"{MENUS}/{created['id']}", headers=headers)).status_code == 403


class TestImport:
    async def test_import_creates_then_upserts_by_external_id(
        self, client: httpx2.AsyncClient
    ) -> None:
        body = {
            "menus": [
                {"menu": sample_document(), "externalId": "a"},
                {"menu": sample_document(), "externalId": "b"},
            ]
        }

        first = await client.post(f"{MENUS}/import", json=body, headers=OWNER)
        changed = sample_document()
        changed["items"][0]["price"] = "30.00"
        body["menus"][0]["menu"] = changed
        second = await client.post(f"{MENUS}/import", json=body, headers=OWNER)

        assert first.json()["data"]["created"] == 2
        assert second.json()["data"] | {"menus": None} == {
            "created": 0,
            "updated": 1,
            "unchanged": 1,
            "menus": None,
        }
        assert (await client.get(MENUS, headers=OWNER)).json()["pagination"]["total"] == 2

    async def test_one_invalid_menu_imports_nothing(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        bad = sample_document()
        bad["modifierGroups"][0]["minSelections"] = 5
        body = {"menus": [{"menu": sample_document()}, {"menu": bad}]}

        response = await client.post(f"{MENUS}/import", json=body, headers=OWNER)

        assert response.status_code == 422
        paths = [issue["path"] for issue in response.json()["error"]["details"]["issues"]]
        assert "body.menus[1].menu.modifierGroups[0].minSelections" in paths
        assert await table_count(engine, "menus") == 0
