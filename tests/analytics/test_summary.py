"""``GET /analytics/summary``: totals, outcomes, success rate and mean duration per period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest

from tests.analytics.conftest import AddRows, job
from tests.support import auth_headers

SUMMARY = "/api/v1/platform-sync/analytics/summary"
OWNER = auth_headers()

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
async def history(add: AddRows) -> None:
    await add(
        # careem, all inside the last week
        job("completed", "careem", ago=HOUR, duration_ms=1000),
        job("completed", "careem", ago=2 * DAY, duration_ms=3000),
        job("failed", "careem", ago=3 * DAY, duration_ms=500),
        job("cancelled", "careem", ago=23 * HOUR),
        job("pending", "careem", ago=timedelta(minutes=10), attempt=0),
        # talabat: two in the week, one more in the month
        job("completed", "talabat", ago=6 * DAY, duration_ms=2600),
        job("failed", "talabat", ago=5 * DAY),
        job("completed", "talabat", ago=8 * DAY, duration_ms=4000),
        # deliveroo: only in the quarter
        job("completed", "deliveroo", ago=40 * DAY, duration_ms=1500),
        # older than any period
        job("completed", "careem", ago=91 * DAY, duration_ms=7),
        # another company, inside every period
        job("completed", "careem", ago=HOUR, duration_ms=9999, company="globex"),
        job("failed", "careem", ago=HOUR, company="globex"),
    )


async def _summary(api: httpx2.AsyncClient, **params: str) -> dict[str, Any]:
    response = await api.get(SUMMARY, params=params, headers=OWNER)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    data: dict[str, Any] = response.json()["data"]
    return data


class TestSummary:
    async def test_week_is_the_default_and_counts_by_outcome(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _summary(api)

        assert data["period"] == "week"
        assert data["periodStart"] == "2026-03-03T12:30:00Z"
        assert data["periodEnd"] == "2026-03-10T12:30:00Z"
        assert data["totalSyncs"] == 7
        assert data["successfulSyncs"] == 3
        assert data["failedSyncs"] == 2
        assert data["cancelledSyncs"] == 1
        # 3 completed of 5 finished (cancelled and pending are neither success nor failure)
        assert data["successRate"] == 60.0
        # completed durations only: (1000 + 3000 + 2600) / 3
        assert data["avgDuration"] == 2200

    async def test_breakdown_has_each_platform_with_jobs(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _summary(api, period="week")

        assert data["platformBreakdown"] == {
            "careem": {
                "total": 5,
                "successful": 2,
                "failed": 1,
                "cancelled": 1,
                "successRate": 66.67,
                "avgDuration": 2000,
            },
            "talabat": {
                "total": 2,
                "successful": 1,
                "failed": 1,
                "cancelled": 0,
                "successRate": 50.0,
                "avgDuration": 2600,
            },
        }

    @pytest.mark.parametrize(
        ("period", "total", "successful", "failed", "rate", "avg"),
        [
            pytest.param("day", 3, 1, 0, 100.0, 1000, id="day"),
            pytest.param("month", 8, 4, 2, 66.67, 2650, id="month"),
            pytest.param("quarter", 9, 5, 2, 71.43, 2420, id="quarter"),
        ],
    )
    async def test_period_sets_the_window(
        self,
        api: httpx2.AsyncClient,
        history: None,
        period: str,
        total: int,
        successful: int,
        failed: int,
        rate: float,
        avg: int,
    ) -> None:
        data = await _summary(api, period=period)

        assert data["period"] == period
        assert (data["totalSyncs"], data["successfulSyncs"], data["failedSyncs"]) == (
            total,
            successful,
            failed,
        )
        assert data["successRate"] == rate
        assert data["avgDuration"] == avg

    async def test_platform_type_filters_every_figure(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _summary(api, period="month", platformType="talabat")

        assert data["totalSyncs"] == 3
        assert data["successfulSyncs"] == 2
        assert data["successRate"] == 66.67
        assert data["avgDuration"] == 3300
        assert list(data["platformBreakdown"]) == ["talabat"]

    async def test_another_company_sees_only_its_own_jobs(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        response = await api.get(SUMMARY, headers=auth_headers(company="globex"))

        data = response.json()["data"]
        assert data["totalSyncs"] == 2
        assert data["successfulSyncs"] == 1
        assert data["avgDuration"] == 9999
