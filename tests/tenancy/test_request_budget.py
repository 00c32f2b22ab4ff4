"""The per-user request budget: 429 with ``Retry-After`` beyond it, shared through the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.clock import FrozenClock
from menusync.core.resources import Resources, build_resources
from menusync.tenancy.context import AuthContext
from menusync.tenancy.request_budget import RequestBudget, budget_key
from menusync.tenancy.roles import Role
from tests.conftest import table_count
from tests.support import auth_headers

MENUS = "/api/v1/menus"
SUMMARY = "/api/v1/platform-sync/analytics/summary"
OWNER = auth_headers()
BUDGET = RequestBudget(requests_per_minute=6, burst=2)
"""One request every 10 s, in bursts of 3."""


@dataclass
class Api:
    app: FastAPI
    client: httpx2.AsyncClient
    clock: FrozenClock


async def _client(app: FastAPI) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://menusync.test"
    )


@pytest.fixture
async def api(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Api]:
    clock = FrozenClock()
    resources = build_resources(settings, engine=engine, clock=clock)
    app = create_app(settings, resources=resources)
    app.state.request_budget = BUDGET
    async with await _client(app) as client:
        yield Api(app, client, clock)
    await resources.http.aclose()


async def _statuses(api: Api, count: int, headers: dict[str, str] = OWNER) -> list[int]:
    return [(await api.client.get(MENUS, headers=headers)).status_code for _ in range(count)]


class TestBudget:
    async def test_beyond_the_burst_is_429_with_retry_after(self, api: Api) -> None:
        assert await _statuses(api, 3) == [200, 200, 200]

        refused = await api.client.get(MENUS, headers=OWNER)

        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "10"
        error = refused.json()["error"]
        assert error["code"] == "too_many_requests"
        assert error["details"]["retryAfter"] == 10

    async def test_allowed_again_once_time_moves_on(self, api: Api) -> None:
        await _statuses(api, 4)

        api.clock.advance(9)
        still = await api.client.get(MENUS, headers=OWNER)
        api.clock.advance(1)
        again = await api.client.get(MENUS, headers=OWNER)

        assert still.status_code == 429
        assert still.headers["Retry-After"] == "1"
        assert again.status_code == 200
        assert (await api.client.get(MENUS, headers=OWNER)).status_code == 429

    async def test_a_quiet_minute_restores_the_whole_burst(self, api: Api) -> None:
        await _statuses(api, 5)

        api.clock.advance(60)

        assert await _statuses(api, 4) == [200, 200, 200, 429]

    async def test_writes_and_refusals_count_alike(self, api: Api) -> None:
        await api.client.post(MENUS, json={"menu": {}}, headers=OWNER)  # 422, still a request
        await api.client.get(f"{MENUS}/not-a-uuid", headers=OWNER)

        assert await _statuses(api, 2) == [200, 429]

    async def test_each_user_has_a_budget_of_their_own(self, api: Api) -> None:
        await _statuses(api, 4)

        other_user = await _statuses(api, 3, auth_headers(user="user-2"))
        other_company = await _statuses(api, 3, auth_headers(company="globex"))

        assert other_user == [200, 200, 200]
        assert other_company == [200, 200, 200]

    async def test_the_budget_is_shared_by_every_api_process(
        self, api: Api, settings: Settings, engine: AsyncEngine
    ) -> None:
        # A second app on the same database stands in for another API process.
        resources: Resources = build_resources(settings, engine=engine, clock=api.clock)
        second = create_app(settings, resources=resources)
        second.state.request_budget = BUDGET
        await _statuses(api, 2)

        async with await _client(second) as other:
            answers = [(await other.get(MENUS, headers=OWNER)).status_code for _ in range(2)]

        assert answers == [200, 429]
        await resources.http.aclose()

    async def test_one_limiter_row_per_user(self, api: Api, engine: AsyncEngine) -> None:
        await _statuses(api, 5)
        await _statuses(api, 1, auth_headers(user="user-2"))

        assert await table_count(engine, "rate_limit_state") == 2


class TestSqliteWriteLock:
    async def test_a_busy_write_lock_lets_requests_through_uncounted(
        self, api: Api, engine: AsyncEngine, db_url: str
    ) -> None:
        if not db_url.startswith("sqlite"):
            pytest.skip("PostgreSQL locks the user's row only; nothing else waits")
        async with engine.connect() as writer:
            await writer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: holds the write lock

            async with asyncio.timeout(5):  # analytics reads beside a writer (deferred)
                during = [
                    (await api.client.get(SUMMARY, headers=OWNER)).status_code for _ in range(5)
                ]

            await writer.rollback()

        assert during == [200] * 5
        assert await _statuses(api, 4) == [200, 200, 200, 429]


class TestExempt:
    @pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
    async def test_system_endpoints_are_not_counted(self, api: Api, path: str) -> None:
        for _ in range(5):
            await api.client.get(path, headers=OWNER)

        assert await _statuses(api, 4) == [200, 200, 200, 429]
        assert (await api.client.get(path, headers=OWNER)).status_code != 429

    async def test_platform_webhooks_are_not_counted(self, api: Api) -> None:
        for _ in range(5):
            response = await api.client.post(
                "/api/v1/platform-sync/webhook/careem", json={}, headers=OWNER
            )
            assert response.status_code != 429

        assert await _statuses(api, 3) == [200, 200, 200]

    async def test_requests_without_a_valid_token_are_not_counted(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        for _ in range(5):
            assert (await api.client.get(MENUS)).status_code == 401
            bad = {"Authorization": "Bearer not.a.jwt"}
            assert (await api.client.get(MENUS, headers=bad)).status_code == 401

        assert await table_count(engine, "rate_limit_state") == 0
        assert await _statuses(api, 3) == [200, 200, 200]


class TestShape:
    def test_the_default_is_600_a_minute_in_bursts_of_61(self) -> None:
        limit = RequestBudget().limit

        assert (limit.count, limit.period_seconds, limit.burst) == (600, 60.0, 60)

    def test_a_budget_allows_at_least_one_request(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            RequestBudget(requests_per_minute=0)

    def test_keys_name_the_company_and_user_and_always_fit(self) -> None:
        short = AuthContext(user_id="u-1", company_id="acme", role=Role.COMPANY_OWNER)
        long = AuthContext(user_id="u" * 128, company_id="c" * 64, role=Role.COMPANY_OWNER)

        assert budget_key(short) == "api:acme:u-1"
        assert len(budget_key(long)) <= 200
        assert budget_key(long) != budget_key(
            AuthContext(user_id="v" * 128, company_id="c" * 64, role=Role.COMPANY_OWNER)
        )

    async def test_api_operations_document_429_and_system_ones_do_not(self, api: Api) -> None:
        schema = (await api.client.get("/openapi.json")).json()

        assert "429" in schema["paths"][MENUS]["get"]["responses"]
        assert "Retry-After" in schema["paths"][MENUS]["post"]["responses"]["429"]["headers"]
        assert "429" not in schema["paths"]["/healthz"]["get"]["responses"]
        webhook = schema["paths"]["/api/v1/platform-sync/webhook/{platformType}"]["post"]
        assert "429" not in webhook["responses"]
