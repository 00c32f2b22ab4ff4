"""``/api/v1/platform-sync/connections``: a company's platform connections.

Settings are validated by the adapter's ``Config``, secrets sealed and never returned (masked),
a connection test reaches the platform (the in-process sandbox, through the app's HTTP client),
every change is audited, roles and tenancy are enforced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from menusync.config import Settings
from menusync.core.resources import Resources, build_resources
from menusync.demo import demo_connections
from menusync.platforms.registry import default_registry
from menusync.sandbox.app import create_sandbox_app, shutdown_sandbox
from menusync.sandbox.settings import SandboxSettings
from tests.conftest import table_count
from tests.support import auth_headers

CONNECTIONS = "/api/v1/platform-sync/connections"
SANDBOX_URL = "http://sandbox.test"
KINDS = default_registry().kinds
MASK = "********"
OWNER = auth_headers()
OTHER_COMPANY = auth_headers(company="globex")


def _demo(sandbox: SandboxSettings) -> dict[str, dict[str, Any]]:
    return demo_connections(SANDBOX_URL, sandbox)


def _sandbox_settings() -> SandboxSettings:
    """The sandbox accepts exactly the demo credentials (any other secret gets a 401)."""
    pairs = {
        str(values.get("clientId") or values["username"]): str(
            values.get("clientSecret") or values["password"]
        )
        for values in _demo(SandboxSettings.fast()).values()
    }
    return SandboxSettings.fast(credentials=pairs)


SANDBOX = _sandbox_settings()
DEMO = _demo(SANDBOX)
DELIVEROO = DEMO["deliveroo"]
DELIVEROO_SECRETS = ("clientSecret", "webhookSecret")

# Careem knows a branch only once it was created (``PUT /branches/{id}``, here the control API);
# the other simulators create stores on first use.
ONBOARDING = {
    "careem": {"storeId": DEMO["careem"]["branchId"], "brandId": DEMO["careem"]["brandId"]},
}


class HostRouter(httpx2.AsyncBaseTransport):
    """Sends each request to the in-process app that owns its host."""

    def __init__(self, routes: dict[str, httpx2.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.routes[request.url.host].handle_async_request(request)


@pytest.fixture
async def sandbox() -> AsyncIterator[Starlette]:
    app = create_sandbox_app(SANDBOX)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url=SANDBOX_URL
    ) as control:
        for platform, store in ONBOARDING.items():
            answer = await control.post(f"/{platform}/__sandbox/stores", json=store)
            assert answer.status_code == 201, answer.text
    try:
        yield app
    finally:
        await shutdown_sandbox(app)


@pytest.fixture
async def resources(
    settings: Settings, engine: AsyncEngine, sandbox: Starlette
) -> AsyncIterator[Resources]:
    """The app's resources, with platform HTTP routed to the sandbox (overrides conftest's)."""
    router = HostRouter({"sandbox.test": httpx2.ASGITransport(app=sandbox)})
    http = httpx2.AsyncClient(transport=router, timeout=10)
    built = build_resources(settings, engine=engine, http=http)
    yield built
    await http.aclose()


async def put(
    client: httpx2.AsyncClient,
    credentials: dict[str, Any],
    platform: str = "deliveroo",
    headers: dict[str, str] = OWNER,
    **body: Any,
) -> httpx2.Response:
    return await client.put(
        f"{CONNECTIONS}/{platform}", json={"credentials": credentials, **body}, headers=headers
    )


async def create(client: httpx2.AsyncClient, platform: str = "deliveroo") -> dict[str, Any]:
    response = await put(client, DEMO[platform], platform)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def check(
    client: httpx2.AsyncClient, platform: str = "deliveroo", headers: dict[str, str] = OWNER
) -> httpx2.Response:
    return await client.post(f"{CONNECTIONS}/{platform}/test", headers=headers)


async def listed(client: httpx2.AsyncClient, headers: dict[str, str] = OWNER) -> list[Any]:
    response = await client.get(CONNECTIONS, headers=headers)
    assert response.status_code == 200, response.text
    data: list[Any] = response.json()["data"]
    return data


async def stored_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM platform_connections"))
        return [dict(row._mapping) for row in rows]


async def audit_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT company_id, user_id, role, action, target_type, target_id, details "
                "FROM audit_logs ORDER BY created_at, id"
            )
        )
        return [dict(row._mapping) for row in rows]


class TestSave:
    async def test_put_creates_the_connection_with_camel_case_keys_and_secrets_masked(
        self, client: httpx2.AsyncClient
    ) -> None:
        response = await put(client, DELIVEROO)

        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["platformType"] == "deliveroo"
        assert data["storeKey"] == f"{DELIVEROO['brandId']}:{DELIVEROO['siteId']}"
        assert data["isEnabled"] is True
        assert data["status"] == "untested"
        assert data["lastTestedAt"] is None
        assert data["settings"]["siteId"] == DELIVEROO["siteId"]
        assert data["settings"]["apiBaseUrl"] == DELIVEROO["apiBaseUrl"]
        assert {data["settings"][name] for name in DELIVEROO_SECRETS} == {MASK}
        for name in DELIVEROO_SECRETS:
            assert DELIVEROO[name] not in response.text

    async def test_secrets_are_stored_sealed_never_in_clear(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        await create(client)

        (row,) = await stored_rows(engine)
        assert row["credentials_encrypted"]
        for name in DELIVEROO_SECRETS:
            assert DELIVEROO[name] not in str(row)
        assert row["store_key"] == f"{DELIVEROO['brandId']}:{DELIVEROO['siteId']}"

    async def test_put_again_without_the_secrets_keeps_the_stored_ones(
        self, client: httpx2.AsyncClient
    ) -> None:
        await create(client)
        without = {k: v for k, v in DELIVEROO.items() if k not in DELIVEROO_SECRETS}

        response = await put(client, {**without, "menuId": "lunch"}, isEnabled=False)

        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["isEnabled"] is False
        assert data["settings"]["menuId"] == "lunch"
        assert data["settings"]["clientSecret"] == MASK
        verdict = await check(client)
        assert verdict.json()["data"]["ok"] is True, verdict.text

    async def test_masked_settings_sent_back_keep_the_stored_secrets(
        self, client: httpx2.AsyncClient
    ) -> None:
        created = await create(client)

        response = await put(client, created["settings"])

        assert response.status_code == 200, response.text
        verdict = await check(client)
        assert verdict.json()["data"]["ok"] is True, verdict.text

    async def test_invalid_settings_are_422_with_credential_paths_and_store_nothing(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        invalid = {**DELIVEROO, "clientSecret": "   "}
        del invalid["siteId"]

        response = await put(client, invalid)

        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        paths = {issue["path"] for issue in error["details"]["issues"]}
        assert {"body.credentials.clientSecret", "body.credentials.siteId"} <= paths
        assert "   " not in str(error["details"])
        assert await table_count(engine, "platform_connections") == 0
        assert await table_count(engine, "audit_logs") == 0

    async def test_unknown_field_is_422(self, client: httpx2.AsyncClient) -> None:
        response = await put(client, {**DELIVEROO, "favouriteColour": "teal"})

        assert response.status_code == 422, response.text
        paths = {issue["path"] for issue in response.json()["error"]["details"]["issues"]}
        assert "body.credentials.favouriteColour" in paths

    async def test_unknown_platform_is_404(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        for method, suffix in (("PUT", ""), ("DELETE", ""), ("POST", "/test")):
            response = await client.request(
                method,
                f"{CONNECTIONS}/ubereats{suffix}",
                json={"credentials": DELIVEROO} if method == "PUT" else None,
                headers=OWNER,
            )

            assert response.status_code == 404, (method, response.text)
            assert response.json()["error"]["code"] == "unknown_platform"
        assert await table_count(engine, "platform_connections") == 0


class TestList:
    async def test_no_connection_lists_nothing(self, client: httpx2.AsyncClient) -> None:
        assert await listed(client) == []

    async def test_lists_every_platform_with_its_secrets_masked(
        self, client: httpx2.AsyncClient
    ) -> None:
        for platform in KINDS:
            await create(client, platform)

        connections = await listed(client)

        assert sorted(c["platformType"] for c in connections) == KINDS
        adapters = default_registry()
        for connection in connections:
            platform = connection["platformType"]
            settings = connection["settings"]
            secrets = {
                name for name, value in DEMO[platform].items() if value and settings[name] == MASK
            }
            aliases = {
                adapters.get(platform).Config.model_fields[name].alias or name
                for name in adapters.get(platform).secret_fields
            }
            assert secrets == aliases
            for name in aliases:
                assert str(DEMO[platform][name]) not in str(connection)


class TestDelete:
    async def test_deleted_connection_is_gone_and_a_second_delete_is_404(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        await create(client)

        first = await client.delete(f"{CONNECTIONS}/deliveroo", headers=OWNER)
        second = await client.delete(f"{CONNECTIONS}/deliveroo", headers=OWNER)

        assert first.status_code == 200, first.text
        assert await listed(client) == []
        assert await table_count(engine, "platform_connections") == 0
        assert second.status_code == 404
        assert second.json()["error"]["code"] == "connection_not_found"


class TestConnectionCheck:
    @pytest.mark.parametrize("platform", KINDS)
    async def test_demo_connection_reaches_the_platform(
        self, client: httpx2.AsyncClient, platform: str
    ) -> None:
        await create(client, platform)

        response = await check(client, platform)

        assert response.status_code == 200, response.text
        verdict = response.json()["data"]
        assert verdict["ok"] is True, verdict
        (connection,) = await listed(client)
        assert connection["status"] == "connected"
        assert connection["lastTestedAt"] is not None
        assert connection["lastError"] is None

    async def test_wrong_secret_is_reported_not_raised(self, client: httpx2.AsyncClient) -> None:
        await put(client, {**DELIVEROO, "clientSecret": "not-the-secret"})

        response = await check(client)

        assert response.status_code == 200, response.text
        verdict = response.json()["data"]
        assert verdict["ok"] is False
        assert verdict["message"]
        assert "not-the-secret" not in response.text
        (connection,) = await listed(client)
        assert connection["status"] == "error"
        assert connection["lastError"] == verdict["message"]

    async def test_platform_outage_is_reported(
        self, client: httpx2.AsyncClient, sandbox: Starlette
    ) -> None:
        await create(client)
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=sandbox), base_url=SANDBOX_URL
        ) as control:
            faults = {"errorRate": 1, "errorStatuses": [503]}
            answer = await control.put("/deliveroo/__sandbox/faults", json=faults)
            assert answer.status_code == 200, answer.text

        response = await check(client)

        assert response.status_code == 200, response.text
        assert response.json()["data"]["ok"] is False
        (connection,) = await listed(client)
        assert connection["status"] == "error"

    async def test_missing_connection_is_404(self, client: httpx2.AsyncClient) -> None:
        response = await check(client)

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "connection_not_found"


class TestAudit:
    async def test_every_change_and_check_is_audited_without_secrets(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        await create(client)
        await put(client, {k: v for k, v in DELIVEROO.items() if k not in DELIVEROO_SECRETS})
        await check(client)
        await client.delete(f"{CONNECTIONS}/deliveroo", headers=OWNER)

        rows = await audit_rows(engine)

        assert [row["action"] for row in rows] == [
            "connection.created",
            "connection.updated",
            "connection.tested",
            "connection.deleted",
        ]
        for row in rows:
            assert (row["company_id"], row["user_id"], row["role"]) == (
                "acme",
                "user-1",
                "company_owner",
            )
            assert (row["target_type"], row["target_id"]) == ("connection", "deliveroo")
            for name in DELIVEROO_SECRETS:
                assert DELIVEROO[name] not in str(row["details"])


class TestRoles:
    @pytest.mark.parametrize("role", ["super_admin", "company_owner", "branch_manager"])
    async def test_writers_may_save_check_and_delete(
        self, client: httpx2.AsyncClient, role: str
    ) -> None:
        headers = auth_headers(role=role)

        saved = await put(client, DELIVEROO, headers=headers)
        checked = await check(client, headers=headers)
        deleted = await client.delete(f"{CONNECTIONS}/deliveroo", headers=headers)

        assert (saved.status_code, checked.status_code, deleted.status_code) == (200, 200, 200)

    async def test_call_center_may_read_only(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        await create(client)
        headers = auth_headers(role="call_center")

        assert len(await listed(client, headers)) == 1
        assert (await put(client, DELIVEROO, headers=headers)).status_code == 403
        assert (await check(client, headers=headers)).status_code == 403
        deleted = await client.delete(f"{CONNECTIONS}/deliveroo", headers=headers)
        assert deleted.status_code == 403
        assert await table_count(engine, "platform_connections") == 1

    async def test_cashier_may_not_even_read(self, client: httpx2.AsyncClient) -> None:
        headers = auth_headers(role="cashier")

        response = await client.get(CONNECTIONS, headers=headers)

        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert (await put(client, DELIVEROO, headers=headers)).status_code == 403

    async def test_no_token_is_401(self, client: httpx2.AsyncClient) -> None:
        calls = [("GET", ""), ("PUT", "/deliveroo"), ("DELETE", "/deliveroo")]
        for method, suffix in [*calls, ("POST", "/deliveroo/test")]:
            response = await client.request(
                method,
                f"{CONNECTIONS}{suffix}",
                json={"credentials": DELIVEROO} if method == "PUT" else None,
            )

            assert response.status_code == 401, (method, suffix)
            assert response.json()["error"]["code"] == "unauthenticated"


class TestTenancy:
    async def test_another_company_neither_sees_checks_nor_deletes_it(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        await create(client)

        assert await listed(client, OTHER_COMPANY) == []
        assert (await check(client, headers=OTHER_COMPANY)).status_code == 404
        deleted = await client.delete(f"{CONNECTIONS}/deliveroo", headers=OTHER_COMPANY)
        assert deleted.status_code == 404
        assert len(await listed(client)) == 1

    async def test_another_company_cannot_inherit_the_stored_secrets(
        self, client: httpx2.AsyncClient, engine: AsyncEngine
    ) -> None:
        await create(client)
        without = {k: v for k, v in DELIVEROO.items() if k not in DELIVEROO_SECRETS}

        response = await put(client, without, headers=OTHER_COMPANY)

        assert response.status_code == 422, response.text
        assert await table_count(engine, "platform_connections") == 1

    async def test_another_company_saving_the_same_platform_leaves_ours_alone(
        self, client: httpx2.AsyncClient
    ) -> None:
        await create(client)

        response = await put(client, {**DELIVEROO, "siteId": "200"}, headers=OTHER_COMPANY)

        assert response.status_code == 200, response.text
        (ours,) = await listed(client)
        (theirs,) = await listed(client, OTHER_COMPANY)
        assert (ours["settings"]["siteId"], theirs["settings"]["siteId"]) == ("100121", "200")
        verdict = await check(client)
        assert verdict.json()["data"]["ok"] is True
