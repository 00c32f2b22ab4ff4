"""Every analytics endpoint: roles, tenancy, validation and an empty history."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx2
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.sync.models import SyncJob
from tests.analytics.conftest import AddRows, call, job
from tests.support import auth_headers

BASE = "/api/v1/platform-sync/analytics"
ENDPOINTS = ["summary", "platforms", "timeline", "errors", "retries"]
endpoints = pytest.mark.parametrize("endpoint", ENDPOINTS)


class TestRoles:
    @endpoints
    @pytest.mark.parametrize("role", ["super_admin", "company_owner", "branch_manager"])
    async def test_writer_roles_may_read_analytics(
        self, api: httpx2.AsyncClient, endpoint: str, role: str
    ) -> None:
        response = await api.get(f"{BASE}/{endpoint}", headers=auth_headers(role=role))

        assert response.status_code == 200, response.text

    @endpoints
    @pytest.mark.parametrize("role", ["call_center", "cashier"])
    async def test_other_roles_are_forbidden(
        self, api: httpx2.AsyncClient, endpoint: str, role: str
    ) -> None:
        response = await api.get(f"{BASE}/{endpoint}", headers=auth_headers(role=role))

        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"

    @endpoints
    async def test_no_token_is_401(self, api: httpx2.AsyncClient, endpoint: str) -> None:
        response = await api.get(f"{BASE}/{endpoint}")

        assert response.status_code == 401
        assert response.json()["success"] is False


class TestValidation:
    @endpoints
    @pytest.mark.parametrize(
        ("params", "path"),
        [
            pytest.param({"period": "year"}, "query.period", id="period"),
            pytest.param({"period": ""}, "query.period", id="empty-period"),
            pytest.param({"platformType": "Careem!"}, "query.platformType", id="platform"),
            pytest.param({"platformType": "x" * 40}, "query.platformType", id="long-platform"),
        ],
    )
    async def test_bad_query_is_422_with_the_field(
        self, api: httpx2.AsyncClient, endpoint: str, params: dict[str, str], path: str
    ) -> None:
        response = await api.get(f"{BASE}/{endpoint}", params=params, headers=auth_headers())

        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert [issue["path"] for issue in error["details"]["issues"]] == [path]

    async def test_bad_bucket_is_422(self, api: httpx2.AsyncClient) -> None:
        response = await api.get(
            f"{BASE}/timeline", params={"bucket": "minute"}, headers=auth_headers()
        )

        assert response.status_code == 422
        assert response.json()["error"]["details"]["issues"][0]["path"] == "query.bucket"


class TestEmptyAndTenancy:
    async def test_empty_history_answers_zeros(self, api: httpx2.AsyncClient) -> None:
        headers = auth_headers()

        summary = (await api.get(f"{BASE}/summary", headers=headers)).json()["data"]
        platforms = (await api.get(f"{BASE}/platforms", headers=headers)).json()["data"]
        timeline = (await api.get(f"{BASE}/timeline", headers=headers)).json()["data"]
        errors = (await api.get(f"{BASE}/errors", headers=headers)).json()["data"]
        retries = (await api.get(f"{BASE}/retries", headers=headers)).json()["data"]

        assert summary["totalSyncs"] == summary["avgDuration"] == summary["successRate"] == 0
        assert summary["platformBreakdown"] == {}
        assert platforms["platforms"] == []
        assert len(timeline["buckets"]) == 8
        assert all(bucket["total"] == 0 for bucket in timeline["buckets"])
        assert (errors["count"], errors["previousCount"], errors["trend"]) == (0, 0, "flat")
        assert errors["changePercent"] is None
        assert errors["errors"] == errors["byCode"] == errors["byPlatform"] == []
        assert retries["totalSyncs"] == retries["retriedSyncs"] == 0
        assert retries["recoveryRate"] == retries["avgAttemptsToRecover"] == 0
        assert retries["distribution"] == []

    @endpoints
    async def test_another_companys_history_is_never_counted(
        self, api: httpx2.AsyncClient, add: AddRows, endpoint: str
    ) -> None:
        hour = timedelta(hours=1)
        await add(
            job("completed", "careem", ago=hour, duration_ms=100, attempt=2, company="globex"),
            job("failed", "careem", ago=hour, error_code="x", attempt=3, company="globex"),
            call("careem", ago=hour, duration_ms=10, company="globex"),
        )

        response = await api.get(f"{BASE}/{endpoint}", headers=auth_headers(company="acme"))

        data = response.json()["data"]
        counted = {
            "summary": lambda: data["totalSyncs"],
            "platforms": lambda: len(data["platforms"]),
            "timeline": lambda: sum(bucket["total"] for bucket in data["buckets"]),
            "errors": lambda: data["count"] + len(data["errors"]),
            "retries": lambda: data["totalSyncs"] + len(data["distribution"]),
        }[endpoint]()
        assert counted == 0


class TestOpenApi:
    async def test_every_endpoint_is_documented_with_its_response_model(
        self, api: httpx2.AsyncClient
    ) -> None:
        schema = (await api.get("/openapi.json")).json()

        for endpoint in ENDPOINTS:
            operation = schema["paths"][f"{BASE}/{endpoint}"]["get"]
            assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert {"401", "403", "422"} <= set(operation["responses"])


class TestConcurrency:
    async def test_answers_while_a_writer_holds_the_database(
        self, api: httpx2.AsyncClient, engine: AsyncEngine, add: AddRows
    ) -> None:
        await add(job("completed", "careem", ago=timedelta(hours=1), duration_ms=100))
        async with engine.connect() as writer:
            await writer.execute(
                update(SyncJob).where(SyncJob.company_id == "acme").values(status="failed")
            )

            async with asyncio.timeout(5):
                response = await api.get(f"{BASE}/summary", headers=auth_headers())

            await writer.rollback()
        assert response.status_code == 200
        assert response.json()["data"]["successfulSyncs"] == 1
