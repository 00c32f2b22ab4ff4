"""``GET /analytics/retries``: of the jobs that needed a retry, how many succeeded and when."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest

from tests.analytics.conftest import AddRows, job
from tests.support import auth_headers

RETRIES = "/api/v1/platform-sync/analytics/retries"
OWNER = auth_headers()
DAY = timedelta(days=1)


@pytest.fixture
async def history(add: AddRows) -> None:
    plan = [
        ("completed", 1, 3),
        ("pending", 0, 1),
        ("completed", 2, 2),
        ("failed", 2, 1),
        ("completed", 3, 1),
        ("scheduled_retry", 3, 1),
        ("failed", 4, 2),
        ("cancelled", 4, 1),
    ]
    await add(
        *(
            job(status, "careem", ago=DAY, attempt=attempt)
            for status, attempt, copies in plan
            for _ in range(copies)
        ),
        job("completed", "talabat", ago=DAY, attempt=5),
        job("completed", "careem", ago=8 * DAY, attempt=2),
        job("completed", "careem", ago=DAY, attempt=2, company="globex"),
    )


async def _retries(api: httpx2.AsyncClient, **params: str) -> dict[str, Any]:
    response = await api.get(RETRIES, params=params, headers=OWNER)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


class TestRetries:
    async def test_effectiveness_of_retries(self, api: httpx2.AsyncClient, history: None) -> None:
        data = await _retries(api, platformType="careem")

        assert data["totalSyncs"] == 12
        assert data["retriedSyncs"] == 8
        assert data["retryRate"] == 66.67
        assert data["recoveredSyncs"] == 3
        assert data["failedAfterRetry"] == 3
        assert data["cancelledAfterRetry"] == 1
        assert data["stillRetrying"] == 1
        assert data["recoveryRate"] == 50.0
        # (2 + 2 + 3) / 3
        assert data["avgAttemptsToRecover"] == 2.33

    async def test_distribution_by_attempts(self, api: httpx2.AsyncClient, history: None) -> None:
        data = await _retries(api, platformType="careem")

        assert data["distribution"] == [
            {"attempts": 2, "total": 3, "completed": 2, "failed": 1, "cancelled": 0, "active": 0},
            {"attempts": 3, "total": 2, "completed": 1, "failed": 0, "cancelled": 0, "active": 1},
            {"attempts": 4, "total": 3, "completed": 0, "failed": 2, "cancelled": 1, "active": 0},
        ]

    async def test_every_platform_without_a_filter(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _retries(api)

        assert (data["totalSyncs"], data["retriedSyncs"], data["recoveredSyncs"]) == (13, 9, 4)
        assert data["distribution"][-1] == {
            "attempts": 5,
            "total": 1,
            "completed": 1,
            "failed": 0,
            "cancelled": 0,
            "active": 0,
        }
        # (2 + 2 + 3 + 5) / 4
        assert data["avgAttemptsToRecover"] == 3.0

    async def test_month_includes_older_jobs(self, api: httpx2.AsyncClient, history: None) -> None:
        data = await _retries(api, period="month", platformType="careem")

        assert data["retriedSyncs"] == 9
        assert data["distribution"][0]["completed"] == 3
