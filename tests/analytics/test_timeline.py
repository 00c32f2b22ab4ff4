"""``GET /analytics/timeline``: syncs by outcome per hour or day, every bucket present."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest

from tests.analytics.conftest import AddRows, job
from tests.support import auth_headers

TIMELINE = "/api/v1/platform-sync/analytics/timeline"
OWNER = auth_headers()
MINUTE = timedelta(minutes=1)
EMPTY = {"total": 0, "completed": 0, "failed": 0, "cancelled": 0, "active": 0}


@pytest.fixture
async def history(add: AddRows) -> None:
    # NOW is 2026-03-10 12:30 UTC
    await add(
        job("completed", "careem", ago=10 * MINUTE),  # 12:20
        job("failed", "talabat", ago=25 * MINUTE),  # 12:05
        job("in_progress", "careem", ago=31 * MINUTE),  # 11:59
        job("cancelled", "careem", ago=(23 * 60 + 50) * MINUTE),  # 03-09 12:40
        job("completed", "careem", ago=(24 * 60 + 20) * MINUTE),  # 03-09 12:10, before the day
        job("completed", "careem", ago=3 * 24 * 60 * MINUTE),  # 03-07 12:30
        job("failed", "careem", ago=10 * MINUTE, company="globex"),
    )


async def _timeline(api: httpx2.AsyncClient, **params: str) -> dict[str, Any]:
    response = await api.get(TIMELINE, params=params, headers=OWNER)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _counts(bucket: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in bucket.items() if key != "start"}


class TestTimeline:
    async def test_hourly_buckets_cover_the_day(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _timeline(api, period="day", bucket="hour")

        buckets = data["buckets"]
        assert data["bucket"] == "hour"
        assert len(buckets) == 25
        assert buckets[0]["start"] == "2026-03-09T12:00:00Z"
        assert buckets[-1]["start"] == "2026-03-10T12:00:00Z"
        assert _counts(buckets[0]) == {**EMPTY, "total": 1, "cancelled": 1}
        assert _counts(buckets[-2]) == {**EMPTY, "total": 1, "active": 1}
        assert _counts(buckets[-1]) == {**EMPTY, "total": 2, "completed": 1, "failed": 1}
        assert all(_counts(bucket) == EMPTY for bucket in buckets[1:-2])

    async def test_daily_buckets_cover_the_week(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _timeline(api, period="week", bucket="day")

        buckets = {bucket["start"][:10]: _counts(bucket) for bucket in data["buckets"]}
        assert list(buckets) == [f"2026-03-{day:02d}" for day in range(3, 11)]
        assert buckets["2026-03-10"] == {
            **EMPTY,
            "total": 3,
            "completed": 1,
            "failed": 1,
            "active": 1,
        }
        assert buckets["2026-03-09"] == {**EMPTY, "total": 2, "completed": 1, "cancelled": 1}
        assert buckets["2026-03-07"] == {**EMPTY, "total": 1, "completed": 1}
        assert sum(bucket["total"] for bucket in buckets.values()) == 6

    async def test_defaults_are_a_week_by_day(self, api: httpx2.AsyncClient) -> None:
        data = await _timeline(api)

        assert (data["period"], data["bucket"], len(data["buckets"])) == ("week", "day", 8)

    async def test_platform_type_filters_the_buckets(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _timeline(api, period="day", bucket="hour", platformType="talabat")

        assert sum(bucket["total"] for bucket in data["buckets"]) == 1
        assert _counts(data["buckets"][-1]) == {**EMPTY, "total": 1, "failed": 1}
