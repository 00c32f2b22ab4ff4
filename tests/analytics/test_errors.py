"""``GET /analytics/errors``: failures by error code and platform, against the previous period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest

from tests.analytics.conftest import AddRows, job
from tests.support import auth_headers

ERRORS = "/api/v1/platform-sync/analytics/errors"
OWNER = auth_headers()
DAY = timedelta(days=1)
TIMEOUT = "platform_unavailable"


@pytest.fixture
async def history(add: AddRows) -> None:
    await add(
        # this week
        job("failed", "careem", ago=1 * DAY, error_code=TIMEOUT, retryable=True),
        job("failed", "careem", ago=2 * DAY, error_code=TIMEOUT, retryable=True),
        job("failed", "careem", ago=3 * DAY, error_code=TIMEOUT, retryable=False),
        job("failed", "careem", ago=1 * DAY, error_code="platform_rejected", retryable=False),
        job("failed", "talabat", ago=1 * DAY, error_code=TIMEOUT, retryable=True),
        job("failed", "talabat", ago=1 * DAY),
        # not failures, though they carry a code
        job("scheduled_retry", "careem", ago=1 * DAY, error_code=TIMEOUT, retryable=True),
        job("completed", "careem", ago=1 * DAY, error_code=TIMEOUT),
        # the week before
        job("failed", "careem", ago=8 * DAY, error_code=TIMEOUT, retryable=True),
        job("failed", "talabat", ago=9 * DAY, error_code="platform_auth"),
        job("failed", "talabat", ago=13 * DAY, error_code="platform_auth"),
        # older than both windows, and another company
        job("failed", "careem", ago=15 * DAY, error_code=TIMEOUT),
        job("failed", "careem", ago=1 * DAY, error_code=TIMEOUT, company="globex"),
    )


async def _errors(api: httpx2.AsyncClient, **params: str) -> dict[str, Any]:
    response = await api.get(ERRORS, params=params, headers=OWNER)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _trend(count: int, previous: int, percent: float | None, trend: str) -> dict[str, Any]:
    return {
        "count": count,
        "previousCount": previous,
        "change": count - previous,
        "changePercent": percent,
        "trend": trend,
    }


class TestErrors:
    async def test_totals_compare_with_the_previous_week(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _errors(api)

        assert data["period"] == "week"
        assert data["previousPeriodStart"] == "2026-02-24T12:30:00Z"
        assert data["periodStart"] == "2026-03-03T12:30:00Z"
        assert {key: data[key] for key in _trend(0, 0, None, "")} == _trend(6, 3, 100.0, "up")

    async def test_groups_by_code_and_platform_largest_first(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _errors(api)

        assert data["errors"] == [
            {
                "errorCode": TIMEOUT,
                "platformType": "careem",
                "retryable": 2,
                **_trend(3, 1, 200.0, "up"),
            },
            {
                "errorCode": "platform_rejected",
                "platformType": "careem",
                "retryable": 0,
                **_trend(1, 0, None, "up"),
            },
            {
                "errorCode": TIMEOUT,
                "platformType": "talabat",
                "retryable": 1,
                **_trend(1, 0, None, "up"),
            },
            {
                "errorCode": "unknown",
                "platformType": "talabat",
                "retryable": 0,
                **_trend(1, 0, None, "up"),
            },
            {
                "errorCode": "platform_auth",
                "platformType": "talabat",
                "retryable": 0,
                **_trend(0, 2, -100.0, "down"),
            },
        ]

    async def test_rolls_up_by_code_and_by_platform(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _errors(api)

        assert data["byCode"] == [
            {"errorCode": TIMEOUT, **_trend(4, 1, 300.0, "up")},
            {"errorCode": "platform_rejected", **_trend(1, 0, None, "up")},
            {"errorCode": "unknown", **_trend(1, 0, None, "up")},
            {"errorCode": "platform_auth", **_trend(0, 2, -100.0, "down")},
        ]
        assert data["byPlatform"] == [
            {"platformType": "careem", **_trend(4, 1, 300.0, "up")},
            {"platformType": "talabat", **_trend(2, 2, 0.0, "flat")},
        ]

    async def test_day_compares_with_the_day_before(
        self, api: httpx2.AsyncClient, add: AddRows
    ) -> None:
        await add(
            job("failed", "careem", ago=timedelta(hours=2), error_code=TIMEOUT),
            job("failed", "careem", ago=timedelta(hours=30), error_code=TIMEOUT),
            job("failed", "careem", ago=timedelta(hours=40), error_code=TIMEOUT),
            job("failed", "careem", ago=timedelta(hours=49), error_code=TIMEOUT),
        )

        data = await _errors(api, period="day")

        assert {key: data[key] for key in _trend(0, 0, None, "")} == _trend(1, 2, -50.0, "down")

    async def test_platform_type_filters_the_groups(
        self, api: httpx2.AsyncClient, history: None
    ) -> None:
        data = await _errors(api, platformType="talabat")

        assert [group["platformType"] for group in data["errors"]] == ["talabat"] * 3
        assert (data["count"], data["previousCount"]) == (2, 2)
