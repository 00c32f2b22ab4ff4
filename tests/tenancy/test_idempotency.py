"""``Idempotency-Key`` on mutating POSTs: replays, conflicts, scope per user, expiry, what is kept."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from menusync.app import create_app
from menusync.config import Settings
from menusync.core.clock import FrozenClock
from menusync.core.dependencies import SessionDep
from menusync.core.resources import Resources, build_resources
from menusync.menus.samples import sample_document
from menusync.tenancy.idempotency import (
    IDEMPOTENCY_DEPENDENCY,
    prune_idempotency_keys,
)
from menusync.tenancy.models import AuditLog
from tests.conftest import table_count
from tests.support import auth_headers

MENUS = "/api/v1/menus"
OWNER = auth_headers()


def keyed(key: str, headers: dict[str, str] = OWNER) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def menu_body(name: str = "Main") -> dict[str, Any]:
    document = sample_document()
    document["name"] = {"en": name}
    return {"menu": document}


@dataclass
class Api:
    app: FastAPI
    client: httpx2.AsyncClient
    clock: FrozenClock
    resources: Resources


@pytest.fixture
async def api(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Api]:
    clock = FrozenClock()
    resources = build_resources(settings, engine=engine, clock=clock)
    app = create_app(settings, resources=resources)
    calls = {"n": 0}

    @app.post("/api/v1/test-only/flaky", dependencies=[IDEMPOTENCY_DEPENDENCY])
    async def flaky(session: SessionDep) -> dict[str, int]:
        """Writes an audit row, then fails the first time: a 500 after a write."""
        calls["n"] += 1
        session.add(
            AuditLog(
                company_id="acme",
                user_id="user-1",
                role="company_owner",
                action="flaky",
                target_type="test",
                details={},
                created_at=clock.now(),
            )
        )
        await session.flush()
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return {"call": calls["n"]}

    # raise_app_exceptions=False: a 500 is an answer here, not an exception in the test.
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://menusync.test") as client:
        yield Api(app, client, clock, resources)
    await resources.http.aclose()


class TestReplay:
    async def test_same_key_and_body_returns_the_first_answer_and_creates_nothing(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        first = await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))
        second = await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))

        assert first.status_code == 201, first.text
        assert "Idempotent-Replayed" not in first.headers
        assert second.status_code == 201
        assert second.headers["Idempotent-Replayed"] == "true"
        assert second.headers["content-type"] == "application/json"
        assert second.json() == first.json()
        assert await table_count(engine, "menus") == 1
        assert await table_count(engine, "audit_logs") == 1
        assert await table_count(engine, "idempotency_keys") == 1

    async def test_json_key_order_and_spacing_do_not_make_another_request(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        body = menu_body()
        await api.client.post(MENUS, json=body, headers=keyed("k-1"))
        reordered = dict(reversed(list(body.items())))

        again = await api.client.post(
            MENUS,
            content=httpx2.Request("POST", "/", json=reordered).content + b"\n  ",
            headers={**keyed("k-1"), "Content-Type": "application/json"},
        )

        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await table_count(engine, "menus") == 1

    async def test_a_new_key_is_a_new_request(self, api: Api, engine: AsyncEngine) -> None:
        await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))
        other = await api.client.post(MENUS, json=menu_body(), headers=keyed("k-2"))

        assert other.status_code == 201
        assert "Idempotent-Replayed" not in other.headers
        assert await table_count(engine, "menus") == 2

    async def test_requests_without_a_key_are_neither_recorded_nor_replayed(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        await api.client.post(MENUS, json=menu_body(), headers=OWNER)
        await api.client.post(MENUS, json=menu_body(), headers=OWNER)

        assert await table_count(engine, "menus") == 2
        assert await table_count(engine, "idempotency_keys") == 0


class TestConflicts:
    async def test_same_key_with_a_different_body_is_409_and_creates_nothing(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        await api.client.post(MENUS, json=menu_body("Main"), headers=keyed("k-1"))

        response = await api.client.post(MENUS, json=menu_body("Other"), headers=keyed("k-1"))

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert await table_count(engine, "menus") == 1

    async def test_same_key_on_another_path_is_409(self, api: Api) -> None:
        await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))

        response = await api.client.post(f"{MENUS}/import", json=menu_body(), headers=keyed("k-1"))

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_reused"

    async def test_a_key_still_being_processed_is_409_in_progress(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        # What a second request sees while the first is between its commit and its answer.
        await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE idempotency_keys SET status_code = NULL"))

        response = await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_in_progress"
        assert await table_count(engine, "menus") == 1

    async def test_concurrent_requests_with_one_key_create_one_menu(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        answers = await asyncio.gather(
            *(api.client.post(MENUS, json=menu_body(), headers=keyed("k-1")) for _ in range(4))
        )

        assert await table_count(engine, "menus") == 1
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(201) >= 1
        assert set(statuses) <= {201, 409}
        created = [a for a in answers if a.status_code == 201]
        assert len({a.json()["data"]["id"] for a in created}) == 1
        for answer in answers:
            if answer.status_code == 409:
                assert answer.json()["error"]["code"] == "idempotency_key_in_progress"

    @pytest.mark.parametrize(("length", "status"), [(255, 201), (256, 422)])
    async def test_keys_longer_than_255_characters_are_422(
        self, api: Api, engine: AsyncEngine, length: int, status: int
    ) -> None:
        response = await api.client.post(MENUS, json=menu_body(), headers=keyed("k" * length))

        assert response.status_code == status, response.text
        if status == 422:
            issues = response.json()["error"]["details"]["issues"]
            assert issues[0]["path"] == "header.Idempotency-Key"
            assert await table_count(engine, "menus") == 0


class TestScope:
    async def test_another_user_with_the_same_key_is_independent(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))

        other = await api.client.post(
            MENUS, json=menu_body(), headers=keyed("k-1", auth_headers(user="user-2"))
        )

        assert other.status_code == 201
        assert "Idempotent-Replayed" not in other.headers
        assert await table_count(engine, "menus") == 2

    async def test_another_company_with_the_same_key_is_independent(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        first = await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))

        other = await api.client.post(
            MENUS, json=menu_body(), headers=keyed("k-1", auth_headers(company="globex"))
        )

        assert other.status_code == 201
        assert other.json()["data"]["id"] != first.json()["data"]["id"]
        assert await table_count(engine, "menus") == 2

    async def test_platform_webhooks_take_no_key(self, api: Api, engine: AsyncEngine) -> None:
        await api.client.post(
            "/api/v1/platform-sync/webhook/careem", json={}, headers={"Idempotency-Key": "k-1"}
        )

        assert await table_count(engine, "idempotency_keys") == 0

    async def test_get_requests_are_not_covered(self, api: Api, engine: AsyncEngine) -> None:
        response = await api.client.get(MENUS, headers=keyed("k-1"))

        assert response.status_code == 200
        assert await table_count(engine, "idempotency_keys") == 0


class TestExpiry:
    async def test_after_24_hours_the_key_starts_a_new_request(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        first = await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))
        api.clock.advance(hours=23, minutes=59)
        replay = await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))
        api.clock.advance(minutes=1)

        fresh = await api.client.post(MENUS, json=menu_body("Other"), headers=keyed("k-1"))

        assert replay.headers["Idempotent-Replayed"] == "true"
        assert fresh.status_code == 201
        assert "Idempotent-Replayed" not in fresh.headers
        assert fresh.json()["data"]["id"] != first.json()["data"]["id"]
        assert await table_count(engine, "menus") == 2
        assert await table_count(engine, "idempotency_keys") == 1

    async def test_prune_deletes_only_expired_records(self, api: Api, engine: AsyncEngine) -> None:
        await api.client.post(MENUS, json=menu_body(), headers=keyed("old"))
        api.clock.advance(hours=12)
        await api.client.post(MENUS, json=menu_body(), headers=keyed("recent"))
        api.clock.advance(hours=12)

        async with api.resources.unit_of_work() as session:
            pruned = await prune_idempotency_keys(session, api.clock.now())

        assert pruned == 1
        async with api.resources.unit_of_work() as session:
            keys = (await session.execute(text("SELECT key FROM idempotency_keys"))).scalars()
            assert list(keys) == ["recent"]

    async def test_prune_takes_the_ttl(self, api: Api) -> None:
        await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))
        api.clock.advance(hours=2)

        async with api.resources.unit_of_work() as session:
            pruned = await prune_idempotency_keys(session, api.clock.now(), ttl=timedelta(hours=1))

        assert pruned == 1


class TestWhatIsStored:
    async def test_a_server_error_is_not_stored_so_a_retry_succeeds(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        failed = await api.client.post(
            "/api/v1/test-only/flaky", json={"a": 1}, headers=keyed("k-1")
        )
        assert failed.status_code == 500
        assert await table_count(engine, "idempotency_keys") == 0
        assert await table_count(engine, "audit_logs") == 0  # the request's write rolled back

        retried = await api.client.post(
            "/api/v1/test-only/flaky", json={"a": 1}, headers=keyed("k-1")
        )
        replayed = await api.client.post(
            "/api/v1/test-only/flaky", json={"a": 1}, headers=keyed("k-1")
        )

        assert retried.status_code == 200
        assert retried.json() == {"call": 2}
        assert replayed.json() == {"call": 2}
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert await table_count(engine, "audit_logs") == 1

    async def test_an_error_raised_by_the_endpoint_is_stored_and_replayed(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        body = {"platformMenuId": str(uuid.uuid4()), "platformType": "careem"}
        first = await api.client.post(
            "/api/v1/platform-sync/single", json=body, headers=keyed("k-1")
        )
        second = await api.client.post(
            "/api/v1/platform-sync/single", json=body, headers=keyed("k-1")
        )

        assert first.status_code == 404, first.text
        assert second.status_code == 404
        assert second.headers["Idempotent-Replayed"] == "true"
        assert second.json() == first.json()
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT status_code FROM idempotency_keys"))).all()
        assert [row[0] for row in stored] == [404]

    async def test_a_validation_error_is_stored(self, api: Api, engine: AsyncEngine) -> None:
        first = await api.client.post(MENUS, json={"menu": {}}, headers=keyed("k-1"))
        second = await api.client.post(MENUS, json={"menu": {}}, headers=keyed("k-1"))

        assert first.status_code == 422
        assert second.headers["Idempotent-Replayed"] == "true"
        assert await table_count(engine, "idempotency_keys") == 1

    async def test_a_forbidden_answer_is_not_stored(self, api: Api, engine: AsyncEngine) -> None:
        refused = await api.client.post(
            MENUS, json=menu_body(), headers=keyed("k-1", auth_headers(role="call_center"))
        )
        allowed = await api.client.post(
            MENUS, json=menu_body(), headers=keyed("k-1", auth_headers(role="company_owner"))
        )

        assert refused.status_code == 403
        assert allowed.status_code == 201
        assert "Idempotent-Replayed" not in allowed.headers
        assert await table_count(engine, "menus") == 1

    async def test_unauthenticated_requests_are_401_and_not_recorded(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        response = await api.client.post(
            MENUS, json=menu_body(), headers={"Idempotency-Key": "k-1"}
        )

        assert response.status_code == 401
        assert await table_count(engine, "idempotency_keys") == 0

    async def test_the_record_holds_the_caller_and_request(
        self, api: Api, engine: AsyncEngine
    ) -> None:
        await api.client.post(MENUS, json=menu_body(), headers=keyed("k-1"))

        async with api.resources.unit_of_work() as session:
            record = (
                (await session.execute(text("SELECT * FROM idempotency_keys"))).mappings().one()
            )
        assert record["company_id"] == "acme"
        assert record["user_id"] == "user-1"
        assert record["method"] == "POST"
        assert record["path"] == MENUS
        assert record["status_code"] == 201
        assert len(record["request_hash"]) == 64


class TestOpenApi:
    async def test_mutating_posts_document_the_header_and_409(self, api: Api) -> None:
        schema = (await api.client.get("/openapi.json")).json()

        create = schema["paths"][MENUS]["post"]
        header = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
        assert header[0]["in"] == "header"
        assert header[0]["schema"]["maxLength"] == 255
        assert "409" in create["responses"]
        webhook = schema["paths"]["/api/v1/platform-sync/webhook/{platformType}"]["post"]
        assert "Idempotency-Key" not in [p["name"] for p in webhook.get("parameters", [])]
        listing = schema["paths"][MENUS]["get"]
        assert "Idempotency-Key" not in [p["name"] for p in listing.get("parameters", [])]
