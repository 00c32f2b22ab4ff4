"""``GET /platform-sync/audit``: the company's user actions, newest first, filtered and paged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from menusync.menus.samples import sample_document
from menusync.tenancy.models import AuditLog
from tests.support import auth_headers

AUDIT = "/api/v1/platform-sync/audit"
OWNER = auth_headers()
NOW = datetime.now(UTC).replace(microsecond=0)


def entry(
    action: str,
    *,
    ago: timedelta,
    user: str = "user-1",
    target_type: str = "menu",
    company: str = "acme",
) -> AuditLog:
    return AuditLog(
        company_id=company,
        user_id=user,
        role="company_owner",
        action=action,
        target_type=target_type,
        target_id="t-1",
        details={"version": 1},
        request_id="req-1",
        created_at=NOW - ago,
    )


@pytest.fixture
async def entries(sessions: async_sessionmaker[AsyncSession]) -> list[AuditLog]:
    rows = [
        entry("menu.created", ago=timedelta(hours=5)),
        entry("menu.updated", ago=timedelta(hours=4), user="user-2"),
        entry("sync.requested", ago=timedelta(hours=3), target_type="sync"),
        entry("connection.deleted", ago=timedelta(hours=2), target_type="connection"),
        entry("menu.deleted", ago=timedelta(hours=1), user="user-2"),
        entry("menu.created", ago=timedelta(minutes=5), company="globex"),
    ]
    async with sessions() as session, session.begin():
        session.add_all(rows)
    return rows


async def get(client: httpx2.AsyncClient, **params: Any) -> httpx2.Response:
    return await client.get(AUDIT, params=params, headers=OWNER)


class TestList:
    async def test_lists_the_company_actions_newest_first(
        self, client: httpx2.AsyncClient, entries: list[AuditLog]
    ) -> None:
        response = await get(client)

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["pagination"] == {"page": 1, "limit": 20, "total": 5, "totalPages": 1}
        assert [e["action"] for e in body["data"]] == [
            "menu.deleted",
            "connection.deleted",
            "sync.requested",
            "menu.updated",
            "menu.created",
        ]
        first = body["data"][0]
        assert first == {
            "id": str(entries[4].id),
            "userId": "user-2",
            "role": "company_owner",
            "action": "menu.deleted",
            "targetType": "menu",
            "targetId": "t-1",
            "details": {"version": 1},
            "requestId": "req-1",
            "createdAt": first["createdAt"],
        }
        assert datetime.fromisoformat(first["createdAt"]) == NOW - timedelta(hours=1)

    @pytest.mark.parametrize(
        ("params", "actions"),
        [
            pytest.param({"action": "menu.created"}, ["menu.created"], id="action"),
            pytest.param({"userId": "user-2"}, ["menu.deleted", "menu.updated"], id="user"),
            pytest.param({"targetType": "sync"}, ["sync.requested"], id="target"),
            pytest.param(
                {
                    "dateFrom": (NOW - timedelta(hours=4, minutes=30)).isoformat(),
                    "dateTo": (NOW - timedelta(hours=2, minutes=30)).isoformat(),
                },
                ["sync.requested", "menu.updated"],
                id="dates",
            ),
            pytest.param({"limit": 2, "page": 2}, ["sync.requested", "menu.updated"], id="page"),
        ],
    )
    async def test_filters(
        self,
        client: httpx2.AsyncClient,
        entries: list[AuditLog],
        params: dict[str, Any],
        actions: list[str],
    ) -> None:
        response = await get(client, **params)

        assert [e["action"] for e in response.json()["data"]] == actions

    async def test_another_company_sees_only_its_own(
        self, client: httpx2.AsyncClient, entries: list[AuditLog]
    ) -> None:
        response = await client.get(AUDIT, headers=auth_headers(company="globex"))

        assert [e["action"] for e in response.json()["data"]] == ["menu.created"]
        assert response.json()["pagination"]["total"] == 1

    async def test_a_real_action_is_recorded_with_its_request_id(
        self, client: httpx2.AsyncClient
    ) -> None:
        created = await client.post(
            "/api/v1/menus",
            json={"menu": sample_document()},
            headers={**OWNER, "X-Request-ID": "trace-42"},
        )
        assert created.status_code == 201

        data = (await get(client)).json()["data"]

        assert [(e["action"], e["targetId"], e["requestId"]) for e in data] == [
            ("menu.created", created.json()["data"]["id"], "trace-42")
        ]
        assert (data[0]["userId"], data[0]["role"]) == ("user-1", "company_owner")


class TestAccess:
    async def test_writers_may_read_others_may_not(self, client: httpx2.AsyncClient) -> None:
        statuses = {
            role: (await client.get(AUDIT, headers=auth_headers(role=role))).status_code
            for role in ("super_admin", "company_owner", "branch_manager", "call_center", "cashier")
        }

        assert statuses == {
            "super_admin": 200,
            "company_owner": 200,
            "branch_manager": 200,
            "call_center": 403,
            "cashier": 403,
        }
        assert (await client.get(AUDIT)).status_code == 401

    async def test_bad_query_is_422_with_the_field(self, client: httpx2.AsyncClient) -> None:
        cases = [
            ({"limit": 101}, "query.limit"),
            ({"page": 0}, "query.page"),
            ({"action": "x" * 65}, "query.action"),
            ({"dateFrom": "last week"}, "query.dateFrom"),
            (
                {"dateFrom": "2026-03-10T00:00:00Z", "dateTo": "2026-03-09T00:00:00Z"},
                "query.dateFrom",
            ),
        ]
        for params, path in cases:
            response = await get(client, **params)

            assert response.status_code == 422, params
            issues = response.json()["error"]["details"]["issues"]
            assert [i["path"] for i in issues] == [path], params
