"""Health, circuit breakers, rate limits, received webhooks and the history export.

Rows are written directly at fixed ages under a frozen clock, so every number is exact; one test
per view runs a real sync through the sandbox. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.clock import FrozenClock
from menusync.core.models import Base
from menusync.core.resilience.models import CircuitBreakerState
from menusync.core.resilience.rate_limit import Limit, RateLimiter
from menusync.core.resources import build_resources
from menusync.platforms.models import IntegrationLog, PlatformConnection
from menusync.platforms.registry import default_registry
from menusync.realtime.models import SyncEvent
from menusync.sync.models import SyncJob, WebhookEvent
from menusync.sync.operations import WEBHOOK_BODY_LIMIT
from menusync.sync.operations_repository import EXPORT_COLUMNS
from menusync.sync.policy import EnginePolicies
from tests.support import auth_headers
from tests.sync.conftest import Stack, eventually

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
BASE = "/api/v1/platform-sync"
OWNER = auth_headers()
GLOBEX = auth_headers(company="globex")
PLATFORMS = ["careem", "deliveroo", "talabat"]
READ_ENDPOINTS = [("GET", "/health"), ("GET", "/circuit-breakers"), ("GET", "/rate-limits")]
WRITE_ENDPOINTS = [("GET", "/webhooks/events"), ("GET", "/history/export")]
RESET = ("POST", "/circuit-breakers/careem/reset")
ROLES = ["super_admin", "company_owner", "branch_manager", "call_center", "cashier"]
READERS = {"super_admin", "company_owner", "branch_manager", "call_center"}
WRITERS = {"super_admin", "company_owner", "branch_manager"}
ADMINS = {"super_admin", "company_owner"}


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def job(
    status: str = "completed",
    platform: str = "careem",
    *,
    ago: timedelta,
    company: str = "acme",
    **fields: Any,
) -> SyncJob:
    created = NOW - ago
    values: dict[str, Any] = {
        "company_id": company,
        "platform": platform,
        "store_key": f"{platform}-store",
        "kind": "menu",
        "status": status,
        "attempt": 1,
        "request": {},
        "created_at": created,
        "updated_at": created,
        "next_attempt_at": created,
        **fields,
    }
    return SyncJob(**values)


def call(duration_ms: int, *, ago: timedelta, company: str = "acme") -> IntegrationLog:
    return IntegrationLog(
        company_id=company,
        platform="careem",
        operation="push_menu",
        method="POST",
        url="https://careem.test/catalogs",
        status_code=200,
        duration_ms=duration_ms,
        created_at=NOW - ago,
    )


def webhook(
    platform: str = "deliveroo",
    *,
    ago: timedelta,
    company: str | None = "acme",
    outcome: str = "applied",
    body: str = '{"event": "menu.upload_result"}',
    **fields: Any,
) -> WebhookEvent:
    values: dict[str, Any] = {
        "platform": platform,
        "event_id": f"evt-{uuid.uuid4()}",
        "company_id": company,
        "event_type": "menu.upload_result",
        "external_ref": "ref-1",
        "signature_valid": outcome != "rejected",
        "headers": {"authorization": "Bearer platform-secret", "x-request-id": "abc"},
        "body": body,
        "outcome": outcome,
        "received_at": NOW - ago,
        "processed_at": NOW - ago,
        **fields,
    }
    return WebhookEvent(**values)


def open_breaker(name: str = "deliveroo") -> CircuitBreakerState:
    return CircuitBreakerState(
        name=name,
        state="open",
        consecutive_failures=5,
        probe_successes=0,
        total_failures=7,
        total_successes=2,
        opened_at=NOW - timedelta(seconds=10),
        opened_until=NOW + timedelta(seconds=50),
        last_failure_at=NOW - timedelta(seconds=10),
        last_error="HTTP 503 from Deliveroo",
        updated_at=NOW - timedelta(seconds=10),
    )


def connection(platform: str, store_key: str, company: str = "acme") -> PlatformConnection:
    return PlatformConnection(
        company_id=company,
        platform=platform,
        credentials_encrypted="x",
        settings={},
        store_key=store_key,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The documented budgets exactly (no safety margin), so the figures read as documented."""
    engine = settings.engine.model_copy(update={"rate_safety_margin": 0.0})
    return settings.model_copy(update={"engine": engine})


@pytest.fixture
async def api(
    settings: Settings, engine: AsyncEngine, clock: FrozenClock
) -> AsyncIterator[httpx2.AsyncClient]:
    resources = build_resources(settings, engine=engine, clock=clock)
    app = create_app(settings, resources=resources)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://menusync.test"
    ) as http:
        yield http
    await resources.http.aclose()


@pytest.fixture
def policies(settings: Settings) -> EnginePolicies:
    return EnginePolicies(default_registry(), settings.engine)


async def add(sessions: async_sessionmaker[AsyncSession], *rows: Base) -> None:
    async with sessions() as session, session.begin():
        session.add_all(rows)


async def request(
    api: httpx2.AsyncClient, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx2.Response:
    return await api.request(method, f"{BASE}{path}", headers=headers)


class TestRoles:
    @pytest.mark.parametrize(
        ("method", "path", "allowed"),
        [
            *[(method, path, READERS) for method, path in READ_ENDPOINTS],
            *[(method, path, WRITERS) for method, path in WRITE_ENDPOINTS],
            (*RESET, ADMINS),
        ],
    )
    async def test_role_matrix(
        self, api: httpx2.AsyncClient, method: str, path: str, allowed: set[str]
    ) -> None:
        statuses = {
            role: (await request(api, method, path, auth_headers(role=role))).status_code
            for role in ROLES
        }
        anonymous = await request(api, method, path)

        assert statuses == {role: 200 if role in allowed else 403 for role in ROLES}
        assert anonymous.status_code == 401
        assert anonymous.json()["success"] is False


class TestHealth:
    async def test_scores_the_company_last_day(
        self,
        api: httpx2.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
    ) -> None:
        hour = timedelta(hours=1)
        await add(
            sessions,
            *[job("completed", ago=hour) for _ in range(8)],
            *[job("failed", ago=hour) for _ in range(2)],
            job("failed", ago=timedelta(hours=25)),  # outside the window
            job("pending", "talabat", ago=timedelta(minutes=5)),  # due for 300 s
            *[job("failed", ago=hour, company="globex") for _ in range(5)],
            job("pending", ago=timedelta(minutes=20), company="globex"),
            call(100, ago=hour),
            call(201, ago=hour),
            call(9_999, ago=timedelta(days=2)),
            call(5_000, ago=hour, company="globex"),
            open_breaker("deliveroo"),
        )
        async with sessions() as session, session.begin():
            for _ in range(3):
                await RateLimiter(clock).reserve(session, {"careem": Limit(60, 60.0)})

        response = await api.get(f"{BASE}/health", headers=OWNER)

        assert response.status_code == 200, response.text
        data = response.json()["data"]
        # S = 8 / 10 = 80; B = (100 + 100 + 0) / 3; Q = 100 * (600 - 300) / 540.
        assert data["scoreComponents"] == {"successRate": 80.0, "breakers": 66.67, "backlog": 55.56}
        assert data["healthScore"] == 74  # round((480 + 200.01 + 55.56) / 10)
        assert data["status"] == "degraded"
        assert data["activeSyncs"] == 1
        assert data["failedSyncsLast24h"] == 2
        assert data["recentSyncCount"] == 11
        assert data["avgResponseTime"] == 151  # (100 + 201) / 2, half up
        assert data["backlog"] == {"dueSyncs": 1, "oldestDueSeconds": 300.0}
        assert sorted(data["platformStatus"]) == PLATFORMS
        careem = data["platformStatus"]["careem"]
        assert {k: v for k, v in careem.items() if k != "rateLimit"} == {
            "total": 10,
            "successful": 8,
            "failed": 2,
            "successRate": 80.0,
            "status": "healthy",
            "circuitState": "closed",
        }
        assert careem["rateLimit"]["budget"] == {"count": 60, "periodSeconds": 60.0, "burst": 0}
        assert (careem["rateLimit"]["used"], careem["rateLimit"]["remaining"]) == (3, 57)
        assert at(careem["rateLimit"]["nextFreeAt"]) > NOW
        talabat = data["platformStatus"]["talabat"]
        assert (talabat["total"], talabat["successRate"], talabat["status"]) == (1, None, "healthy")
        deliveroo = data["platformStatus"]["deliveroo"]
        assert (deliveroo["total"], deliveroo["circuitState"], deliveroo["status"]) == (
            0,
            "open",
            "unhealthy",
        )
        assert deliveroo["rateLimit"]["used"] == 0
        assert at(deliveroo["rateLimit"]["nextFreeAt"]) == NOW

    async def test_a_company_without_syncs_is_healthy_on_every_platform(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        await add(sessions, job("failed", ago=timedelta(hours=1), company="globex"))

        data = (await api.get(f"{BASE}/health", headers=OWNER)).json()["data"]

        assert (data["healthScore"], data["status"]) == (100, "healthy")
        assert (data["recentSyncCount"], data["failedSyncsLast24h"]) == (0, 0)
        assert sorted(data["platformStatus"]) == PLATFORMS
        assert all(p["successRate"] is None for p in data["platformStatus"].values())

    async def test_every_breaker_open_is_unhealthy(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        await add(sessions, *[open_breaker(name) for name in PLATFORMS])

        data = (await api.get(f"{BASE}/health", headers=OWNER)).json()["data"]

        assert data["healthScore"] == 70  # (600 + 0 + 100) / 10
        assert data["status"] == "unhealthy"


class TestCircuitBreakers:
    async def test_lists_every_platform_with_its_counters(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        await add(sessions, open_breaker("deliveroo"))

        response = await api.get(
            f"{BASE}/circuit-breakers", headers=auth_headers(role="call_center")
        )

        assert response.status_code == 200
        breakers = {b["platformType"]: b for b in response.json()["data"]}
        assert sorted(breakers) == PLATFORMS
        deliveroo = breakers["deliveroo"]
        assert deliveroo["state"] == "open"
        assert (deliveroo["consecutiveFailures"], deliveroo["probeSuccesses"]) == (5, 0)
        assert (deliveroo["totalFailures"], deliveroo["totalSuccesses"]) == (7, 2)
        assert at(deliveroo["openedAt"]) == NOW - timedelta(seconds=10)
        assert at(deliveroo["halfOpenAt"]) == NOW + timedelta(seconds=50)
        assert deliveroo["lastError"] == "HTTP 503 from Deliveroo"
        assert deliveroo["probeInProgress"] is False
        assert (deliveroo["failureThreshold"], deliveroo["successThreshold"]) == (5, 3)
        assert deliveroo["openSeconds"] == 60.0
        careem = breakers["careem"]
        assert (careem["state"], careem["totalFailures"], careem["halfOpenAt"]) == (
            "closed",
            0,
            None,
        )

    async def test_reset_closes_audits_and_tells_the_company(
        self,
        api: httpx2.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        await add(sessions, open_breaker("deliveroo"))

        response = await api.post(f"{BASE}/circuit-breakers/deliveroo/reset", headers=OWNER)

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["changed"], body["previousState"]) == (True, "open")
        assert body["data"]["state"] == "closed"
        assert body["data"]["consecutiveFailures"] == 0
        assert body["data"]["totalFailures"] == 7  # totals are kept
        assert body["data"]["halfOpenAt"] is None
        async with sessions() as session:
            events = (await session.execute(select(SyncEvent))).scalars().all()
        assert [(e.company_id, e.type, e.data) for e in events] == [
            ("acme", "circuit-breaker-changed", {"platformType": "deliveroo", "state": "closed"})
        ]
        audit = (await api.get("/api/v1/platform-sync/audit", headers=OWNER)).json()["data"]
        assert [(a["action"], a["targetType"], a["targetId"], a["details"]) for a in audit] == [
            (
                "circuit_breaker.reset",
                "circuit_breaker",
                "deliveroo",
                {"previousState": "open", "changed": True},
            )
        ]
        listed = (await api.get(f"{BASE}/circuit-breakers", headers=OWNER)).json()["data"]
        assert {b["platformType"]: b["state"] for b in listed}["deliveroo"] == "closed"

    async def test_resetting_a_closed_breaker_changes_nothing_but_is_audited(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        response = await api.post(
            f"{BASE}/circuit-breakers/talabat/reset", headers=auth_headers(role="super_admin")
        )

        assert response.status_code == 200
        assert (response.json()["changed"], response.json()["previousState"]) == (False, "closed")
        async with sessions() as session:
            assert (await session.execute(select(SyncEvent))).scalars().all() == []
        audit = (await api.get("/api/v1/platform-sync/audit", headers=OWNER)).json()
        assert audit["pagination"]["total"] == 1

    async def test_unknown_platform_is_404_and_a_malformed_one_422(
        self, api: httpx2.AsyncClient
    ) -> None:
        unknown = await api.post(f"{BASE}/circuit-breakers/uber/reset", headers=OWNER)
        malformed = await api.post(f"{BASE}/circuit-breakers/Careem!/reset", headers=OWNER)

        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_platform"
        assert malformed.status_code == 422


class TestRateLimits:
    async def test_lists_platform_keys_and_the_callers_store_keys(
        self,
        api: httpx2.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        policies: EnginePolicies,
    ) -> None:
        await add(
            sessions,
            connection("careem", "branch-1"),
            connection("deliveroo", "brand-7:site-9"),
            connection("careem", "branch-globex", company="globex"),
        )
        per_branch = "careem:careem_catalog_sync_per_branch:branch-1"
        async with sessions() as session, session.begin():
            await RateLimiter(clock).reserve(session, {per_branch: Limit(1, 120.0)})

        response = await api.get(f"{BASE}/rate-limits", headers=auth_headers(role="call_center"))

        assert response.status_code == 200
        keys = {k["key"]: k for k in response.json()["data"]}
        assert list(keys) == [
            "careem",
            "careem:careem_catalog_sync_overall",
            per_branch,
            "deliveroo",
            "deliveroo:deliveroo_menu_upload_per_site:brand-7:site-9",
            "deliveroo:deliveroo_unavailability_replace_per_site:brand-7:site-9",
            "deliveroo:deliveroo_unavailability_update_per_site:brand-7:site-9",
            "talabat",
        ]
        for key, entry in keys.items():
            limit = policies.limit_of(key)
            assert limit is not None, key
            assert entry["budget"] == {
                "count": limit.count,
                "periodSeconds": limit.period_seconds,
                "burst": limit.burst,
            }
        branch = keys[per_branch]
        assert (branch["scope"], branch["storeKey"], branch["operations"]) == (
            "store",
            "branch-1",
            ["push_menu"],
        )
        assert (branch["used"], branch["remaining"]) == (1, 0)
        assert at(branch["nextFreeAt"]) == NOW + timedelta(seconds=120.000002)
        assert (keys["careem"]["scope"], keys["careem"]["rule"]) == ("platform", None)
        assert (keys["careem"]["used"], keys["careem"]["remaining"]) == (0, 60)
        assert keys["careem:careem_catalog_sync_overall"]["scope"] == "operation"
        assert at(keys["talabat"]["nextFreeAt"]) == NOW


class TestWebhookEvents:
    async def test_lists_the_company_webhooks_newest_first_masked_and_capped(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        sync_id = uuid.uuid4()
        big = "x" * (WEBHOOK_BODY_LIMIT + 100)
        await add(
            sessions,
            webhook(ago=timedelta(minutes=3), sync_id=sync_id),
            webhook("careem", ago=timedelta(minutes=2), outcome="rejected", error="bad signature"),
            webhook(ago=timedelta(minutes=1), body=big, outcome="ignored"),
            webhook(ago=timedelta(seconds=5), company=None, outcome="unmatched"),
            webhook(ago=timedelta(seconds=1), company="globex"),
        )

        response = await api.get(f"{BASE}/webhooks/events", headers=OWNER)

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["pagination"] == {"page": 1, "limit": 20, "total": 3, "totalPages": 1}
        events = body["data"]
        assert [e["outcome"] for e in events] == ["ignored", "rejected", "applied"]
        ignored, rejected, applied = events
        assert (ignored["bodySize"], ignored["bodyTruncated"]) == (len(big), True)
        assert ignored["body"] == big[:WEBHOOK_BODY_LIMIT]
        assert (rejected["signatureValid"], rejected["error"]) == (False, "bad signature")
        assert applied["syncId"] == str(sync_id)
        assert applied["signatureValid"] is True
        assert applied["headers"] == {"authorization": "********", "x-request-id": "abc"}
        assert applied["body"] == '{"event": "menu.upload_result"}'
        assert applied["bodyTruncated"] is False
        assert at(applied["receivedAt"]) == NOW - timedelta(minutes=3)
        assert applied["eventType"] == "menu.upload_result"
        assert applied["externalId"] == "ref-1"
        other = (await api.get(f"{BASE}/webhooks/events", headers=GLOBEX)).json()
        assert other["pagination"]["total"] == 1

    async def test_filters_and_pages(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        await add(
            sessions,
            *[webhook(ago=timedelta(hours=h)) for h in range(1, 6)],
            webhook("careem", ago=timedelta(hours=2), outcome="rejected"),
        )

        def get(**params: Any) -> Any:
            return api.get(f"{BASE}/webhooks/events", params=params, headers=OWNER)

        careem = (await get(platformType="careem")).json()
        rejected = (await get(outcome="rejected")).json()
        window = (
            await get(
                dateFrom=(NOW - timedelta(hours=3, minutes=30)).isoformat(),
                dateTo=(NOW - timedelta(hours=1, minutes=30)).isoformat(),
            )
        ).json()
        page = (await get(platformType="deliveroo", limit=2, page=2)).json()

        assert [e["platformType"] for e in careem["data"]] == ["careem"]
        assert [e["outcome"] for e in rejected["data"]] == ["rejected"]
        assert window["pagination"]["total"] == 3  # deliveroo at 2 h and 3 h, careem at 2 h
        assert page["pagination"] == {"page": 2, "limit": 2, "total": 5, "totalPages": 3}
        assert [at(e["receivedAt"]) for e in page["data"]] == [
            NOW - timedelta(hours=3),
            NOW - timedelta(hours=4),
        ]

    async def test_bad_query_is_422_with_the_field(self, api: httpx2.AsyncClient) -> None:
        cases = [
            ({"outcome": "exploded"}, "query.outcome"),
            ({"platformType": "Careem!"}, "query.platformType"),
            ({"limit": 0}, "query.limit"),
            ({"dateFrom": "yesterday"}, "query.dateFrom"),
            (
                {"dateFrom": "2026-03-10T00:00:00Z", "dateTo": "2026-03-09T00:00:00Z"},
                "query.dateFrom",
            ),
        ]
        for params, path in cases:
            response = await api.get(f"{BASE}/webhooks/events", params=params, headers=OWNER)

            assert response.status_code == 422, params
            issues = response.json()["error"]["details"]["issues"]
            assert [i["path"] for i in issues] == [path], params


def parse_csv(response: httpx2.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


class TestHistoryExport:
    async def test_exports_only_the_filtered_rows_of_the_company(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        failed = job(
            "failed",
            ago=timedelta(hours=2),
            error_code="platform_rejected",
            error_message='=HYPERLINK("http://evil")',
            error_retryable=False,
            duration_ms=1500,
            initiated_by="user-7",
        )
        done = job("completed", ago=timedelta(hours=1), duration_ms=900, external_ref="ext-1")
        await add(
            sessions,
            failed,
            done,
            job("completed", "talabat", ago=timedelta(hours=1)),
            job("completed", ago=timedelta(days=3)),
            job("completed", ago=timedelta(hours=1), company="globex"),
        )

        response = await api.get(
            f"{BASE}/history/export",
            params={"platformType": "careem", "dateFrom": (NOW - timedelta(days=1)).isoformat()},
            headers=OWNER,
        )

        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"] == (
            'attachment; filename="sync-history-20260310T123000Z.csv"'
        )
        assert response.text.splitlines()[0].split(",") == list(EXPORT_COLUMNS)
        rows = parse_csv(response)
        assert [row["syncId"] for row in rows] == [str(done.id), str(failed.id)]  # newest first
        assert rows[0]["externalId"] == "ext-1"
        assert (rows[0]["errorCode"], rows[0]["errorRetryable"]) == ("", "")
        assert rows[1]["status"] == "failed"
        assert rows[1]["errorMessage"] == '\'=HYPERLINK("http://evil")'  # no formula
        assert (rows[1]["errorRetryable"], rows[1]["duration"]) == ("false", "1500")
        assert rows[1]["initiatedBy"] == "user-7"
        assert at(rows[1]["createdAt"]) == NOW - timedelta(hours=2)
        assert rows[1]["unchanged"] == "false"

    async def test_streams_a_long_history_in_order(
        self, api: httpx2.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        jobs = [job("completed", ago=timedelta(seconds=i + 1)) for i in range(450)]
        await add(sessions, *jobs)

        response = await api.get(
            f"{BASE}/history/export", params={"sortOrder": "asc"}, headers=OWNER
        )

        rows = parse_csv(response)
        assert len(rows) == 450
        assert [row["syncId"] for row in rows] == [str(j.id) for j in reversed(jobs)]

    async def test_empty_history_is_just_the_header(self, api: httpx2.AsyncClient) -> None:
        response = await api.get(f"{BASE}/history/export", headers=GLOBEX)

        assert response.status_code == 200
        assert response.text == ",".join(EXPORT_COLUMNS) + "\r\n"

    async def test_bad_query_is_422_with_the_field(self, api: httpx2.AsyncClient) -> None:
        cases = [
            ({"status": "exploded"}, "query.status"),
            ({"sortBy": "secret"}, "query.sortBy"),
            ({"dateTo": "soon"}, "query.dateTo"),
            (
                {"dateFrom": "2026-03-10T00:00:00Z", "dateTo": "2026-03-09T00:00:00Z"},
                "query.dateFrom",
            ),
        ]
        for params, path in cases:
            response = await api.get(f"{BASE}/history/export", params=params, headers=OWNER)

            assert response.status_code == 422, params
            issues = response.json()["error"]["details"]["issues"]
            assert [i["path"] for i in issues] == [path], params

    async def test_openapi_documents_csv(self, api: httpx2.AsyncClient) -> None:
        spec = (await api.get("/openapi.json")).json()

        export = spec["paths"][f"{BASE}/history/export"]["get"]
        assert "text/csv" in export["responses"]["200"]["content"]
        assert "403" in export["responses"]
        reset = spec["paths"][f"{BASE}/circuit-breakers/{{platformType}}/reset"]["post"]
        assert "404" in reset["responses"]


@pytest.mark.e2e
async def test_a_real_sync_shows_in_health_limits_and_export(stack: Stack) -> None:
    await stack.start_worker()
    accepted = await stack.sync("deliveroo")

    async def finished() -> Any:
        # Polled gently: the API's per-user request budget applies to tests too.
        status = await stack.status(accepted["syncId"])
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    final = await eventually(finished, interval=0.25, what="the sync to finish")
    health = (await stack.client.get(f"{BASE}/health", headers=stack.headers)).json()["data"]
    limits = (await stack.client.get(f"{BASE}/rate-limits", headers=stack.headers)).json()["data"]
    export = await stack.client.get(f"{BASE}/history/export", headers=stack.headers)

    assert final["status"] == "completed", final
    deliveroo = health["platformStatus"]["deliveroo"]
    assert (deliveroo["total"], deliveroo["successful"], deliveroo["successRate"]) == (1, 1, 100.0)
    assert (health["recentSyncCount"], health["activeSyncs"]) == (1, 0)
    store_scoped = {(k["platformType"], k["rule"]) for k in limits if k["scope"] == "store"}
    assert ("deliveroo", "deliveroo_menu_upload_per_site") in store_scoped
    assert ("careem", "careem_catalog_sync_per_branch") in store_scoped
    rows = parse_csv(export)
    assert [(r["syncId"], r["status"], r["platformType"]) for r in rows] == [
        (accepted["syncId"], "completed", "deliveroo")
    ]
