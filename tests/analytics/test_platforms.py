"""``GET /analytics/platforms``: per platform volume, outcomes, duration percentiles, API latency."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest

from tests.analytics.conftest import AddRows, call, job
from tests.support import auth_headers

PLATFORMS = "/api/v1/platform-sync/analytics/platforms"
OWNER = auth_headers()
HOUR = timedelta(hours=1)


@pytest.fixture
async def history(add: AddRows) -> None:
    await add(
        *(
            job("completed", "careem", ago=hours * HOUR, duration_ms=ms)
            for hours, ms in ((1, 300), (2, 100), (3, 1000), (4, 200), (5, 400))
        ),
        job("failed", "careem", ago=HOUR, duration_ms=5000),
        job("completed", "talabat", ago=HOUR, duration_ms=700),
        job("completed", "talabat", ago=10 * 24 * HOUR, duration_ms=9000),
        job("completed", "careem", ago=HOUR, duration_ms=99_999, company="globex"),
        call("careem", ago=HOUR, duration_ms=12),
        call("careem", ago=HOUR, duration_ms=20),
        call("careem", ago=HOUR, duration_ms=30, status_code=500),
        call("careem", ago=HOUR, duration_ms=50, status_code=None),
        call("careem", ago=10 * 24 * HOUR, duration_ms=5000),
        call("deliveroo", ago=HOUR, duration_ms=100, status_code=201),
        call("careem", ago=HOUR, duration_ms=7000, company="globex"),
    )


async def _platforms(api: httpx2.AsyncClient, **params: str) -> dict[str, Any]:
    response = await api.get(PLATFORMS, params=params, headers=OWNER)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


class TestPlatforms:
    async def test_durations_and_latency_per_platform(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _platforms(api)

        assert data["period"] == "week"
        careem, deliveroo, talabat = data["platforms"]
        assert careem == {
            "platformType": "careem",
            "totalSyncs": 6,
            "successfulSyncs": 5,
            "failedSyncs": 1,
            "cancelledSyncs": 0,
            "successRate": 83.33,
            # completed only: (100 + 200 + 300 + 400 + 1000) / 5
            "avgDuration": 400,
            # position 0.95 * 4 = 3.8 -> 400 + 0.8 * (1000 - 400)
            "p95Duration": 880,
            "apiCalls": {
                "total": 4,
                "failed": 2,
                "errorRate": 50.0,
                "avgLatency": 28,
                # position 0.95 * 3 = 2.85 -> 30 + 0.85 * (50 - 30)
                "p95Latency": 47,
            },
        }
        assert deliveroo["platformType"] == "deliveroo"
        assert deliveroo["totalSyncs"] == 0
        assert deliveroo["apiCalls"] == {
            "total": 1,
            "failed": 0,
            "errorRate": 0.0,
            "avgLatency": 100,
            "p95Latency": 100,
        }
        assert talabat["totalSyncs"] == 1
        assert talabat["avgDuration"] == 700
        assert talabat["p95Duration"] == 700

    async def test_platform_type_filters_jobs_and_calls(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _platforms(api, period="month", platformType="talabat")

        [talabat] = data["platforms"]
        assert talabat["totalSyncs"] == 2
        assert talabat["avgDuration"] == 4850
        # position 0.95 * 1 -> 700 + 0.95 * (9000 - 700)
        assert talabat["p95Duration"] == 8585
        assert talabat["apiCalls"]["total"] == 0

    async def test_another_company_sees_only_its_own_figures(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        response = await api.get(PLATFORMS, headers=auth_headers(company="globex"))

        [careem] = response.json()["data"]["platforms"]
        assert careem["totalSyncs"] == 1
        assert careem["p95Duration"] == 99_999
        assert careem["apiCalls"]["total"] == 1
        assert careem["apiCalls"]["p95Latency"] == 7000
