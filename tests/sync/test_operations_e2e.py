"""Configurations and schedules, preview, item availability and store status, end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from menusync.sync.maintenance import Maintenance
from menusync.sync.models import DailySyncStats, RollupProgress, SyncConfiguration, SyncJob
from tests.support import auth_headers
from tests.sync.conftest import Stack, eventually

pytestmark = pytest.mark.e2e

STORES = {"careem": "beit-zaatar-jlt", "talabat": "bz-jlt", "deliveroo": "100121"}


def _config_url(stack: Stack, platform: str) -> str:
    return f"/api/v1/platform-sync/configurations/{stack.seed.menu_id}/{platform}"


async def _store(stack: Stack, platform: str) -> dict[str, Any]:
    response = await stack.sandbox_call("GET", f"/{platform}/__sandbox/stores/{STORES[platform]}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


class TestConfigurations:
    async def test_configuration_is_validated_stored_and_read_back(self, stack: Stack) -> None:
        body = {
            "configuration": {"priceAdjustmentPercent": "5"},
            "autoSyncEnabled": True,
            "syncSchedule": "0 */6 * * *",
        }

        saved = await stack.client.put(
            _config_url(stack, "careem"), json=body, headers=stack.headers
        )
        listed = await stack.client.get(
            f"/api/v1/platform-sync/configurations/{stack.seed.menu_id}", headers=stack.headers
        )

        assert saved.status_code == 200, saved.text
        data = saved.json()["data"]
        assert data["syncSchedule"] == "0 */6 * * *"
        assert data["nextRunAt"] is not None
        assert listed.json()["data"]["configurations"]["careem"]["autoSyncEnabled"] is True

    @pytest.mark.parametrize(
        ("body", "path"),
        [
            ({"configuration": {"noSuchSetting": 1}}, "configuration.noSuchSetting"),
            ({"syncSchedule": "every day"}, "body.syncSchedule"),
            ({"syncSchedule": "61 * * * *"}, "body.syncSchedule"),
            ({"autoSyncEnabled": True}, "body.syncSchedule"),
            ({"webhookUrl": "not a url"}, "body.webhookUrl"),
        ],
    )
    async def test_invalid_configuration_is_422_with_the_path(
        self, stack: Stack, body: dict[str, Any], path: str
    ) -> None:
        response = await stack.client.put(
            _config_url(stack, "careem"), json=body, headers=stack.headers
        )

        assert response.status_code == 422, response.text
        paths = [issue["path"] for issue in response.json()["error"]["details"]["issues"]]
        assert any(p.startswith(path) for p in paths), paths

    async def test_another_companys_menu_configuration_is_404(self, stack: Stack) -> None:
        other = auth_headers(company="globex")

        response = await stack.client.put(_config_url(stack, "careem"), json={}, headers=other)
        listed = await stack.client.get(
            f"/api/v1/platform-sync/configurations/{stack.seed.menu_id}", headers=other
        )

        assert response.status_code == 404
        assert listed.status_code == 404

    async def test_call_center_may_read_but_not_write(self, stack: Stack) -> None:
        reader = auth_headers(company=stack.seed.company_id, role="call_center")

        assert (
            await stack.client.put(_config_url(stack, "careem"), json={}, headers=reader)
        ).status_code == 403
        listed = await stack.client.get(
            f"/api/v1/platform-sync/configurations/{stack.seed.menu_id}", headers=reader
        )
        assert listed.status_code == 200

    async def test_stored_configuration_applies_to_syncs(self, stack: Stack) -> None:
        body = {"configuration": {"wrapOptionalToppings": False}}
        await stack.client.put(_config_url(stack, "talabat"), json=body, headers=stack.headers)

        response = await stack.client.post(
            "/api/v1/platform-sync/single",
            json={"platformMenuId": str(stack.seed.menu_id), "platformType": "talabat"},
            headers=stack.headers,
        )

        assert response.status_code == 400  # the stored setting makes Talabat refuse this menu


class TestSchedules:
    async def test_due_schedule_is_enqueued_exactly_once_by_racing_workers(
        self, stack: Stack
    ) -> None:
        body = {"autoSyncEnabled": True, "syncSchedule": "*/5 * * * *"}
        await stack.client.put(_config_url(stack, "careem"), json=body, headers=stack.headers)
        async with stack.resources.unit_of_work() as session:
            await session.execute(
                update(SyncConfiguration).values(
                    next_run_at=datetime.now(UTC) - timedelta(seconds=1)
                )
            )
        policies = stack.app.state.engine_policies
        gateway = stack.app.state.platform_runtime.gateway(stack.resources)
        ticks = [
            Maintenance(
                stack.resources.unit_of_work,
                gateway,
                None,  # type: ignore[arg-type] - schedules need no limiter
                policies,
                stack.resources.settings.engine,
                stack.resources.clock,
                f"worker-{index}",
                1,
            )
            for index in range(4)
        ]

        await asyncio.gather(*(tick.enqueue_one_schedule() for tick in ticks))
        await asyncio.gather(*(tick.enqueue_one_schedule() for tick in ticks))

        async with stack.resources.sessions() as session:
            jobs = (
                (await session.execute(select(SyncJob).where(SyncJob.trigger == "schedule")))
                .scalars()
                .all()
            )
            config = (await session.execute(select(SyncConfiguration))).scalar_one()
        assert len(jobs) == 1
        assert jobs[0].platform == "careem"
        assert config.next_run_at is not None
        assert config.next_run_at > datetime.now(UTC)
        assert config.next_run_at.minute % 5 == 0

    async def test_scheduled_sync_runs_to_completion(self, stack: Stack) -> None:
        # A yearly schedule made due now: it fires once during the test, whatever the minute.
        body = {"autoSyncEnabled": True, "syncSchedule": "0 0 1 1 *"}
        await stack.client.put(_config_url(stack, "deliveroo"), json=body, headers=stack.headers)
        async with stack.resources.unit_of_work() as session:
            await session.execute(update(SyncConfiguration).values(next_run_at=datetime.now(UTC)))
        await stack.start_worker()

        async def scheduled_done() -> bool:
            async with stack.resources.sessions() as session:
                statuses = (
                    (
                        await session.execute(
                            select(SyncJob.status).where(SyncJob.trigger == "schedule")
                        )
                    )
                    .scalars()
                    .all()
                )
            return statuses == ["completed"]

        from tests.sync.conftest import eventually

        await eventually(scheduled_done, what="the scheduled sync to complete")

    async def test_disabling_the_schedule_stops_it(self, stack: Stack) -> None:
        await stack.client.put(
            _config_url(stack, "careem"),
            json={"autoSyncEnabled": True, "syncSchedule": "* * * * *"},
            headers=stack.headers,
        )
        response = await stack.client.put(
            _config_url(stack, "careem"),
            json={"autoSyncEnabled": False, "syncSchedule": "* * * * *"},
            headers=stack.headers,
        )

        assert response.json()["data"]["nextRunAt"] is None


class TestPreview:
    async def test_preview_shows_payload_issues_and_first_push_diff_without_calling(
        self, stack: Stack
    ) -> None:
        body = {
            "platformMenuId": str(stack.seed.menu_id),
            "platforms": ["careem", "talabat", "deliveroo"],
        }

        response = await stack.client.post(
            "/api/v1/platform-sync/preview", json=body, headers=stack.headers
        )

        assert response.status_code == 200, response.text
        previews = {entry["platformType"]: entry for entry in response.json()["data"]}
        assert set(previews) == {"careem", "talabat", "deliveroo"}
        for entry in previews.values():
            assert entry["payload"]
            assert entry["issues"] == []
            assert entry["wouldChange"] is True
            assert entry["diff"]["firstPush"] is True
        calls = (await stack.sandbox_call("GET", "/careem/__sandbox/stats")).json()
        assert calls.get("requests", 0) == 0

    async def test_preview_diff_after_a_price_change(self, stack: Stack) -> None:
        await stack.start_worker()
        done = await stack.wait_for((await stack.sync("careem"))["syncId"])
        assert done["status"] == "completed"
        menu = (
            await stack.client.get(f"/api/v1/menus/{stack.seed.menu_id}", headers=stack.headers)
        ).json()["data"]["menu"]
        menu["items"][0]["price"] = "23.00"
        removed = menu["categories"][0]["itemIds"].pop()
        menu["items"] = [item for item in menu["items"] if item["id"] != removed]
        await stack.client.put(
            f"/api/v1/menus/{stack.seed.menu_id}", json={"menu": menu}, headers=stack.headers
        )

        response = await stack.client.post(
            "/api/v1/platform-sync/preview",
            json={"platformMenuId": str(stack.seed.menu_id), "platforms": ["careem"]},
            headers=stack.headers,
        )

        diff = response.json()["data"][0]["diff"]
        assert diff["firstPush"] is False
        assert diff["removed"] == [removed]
        assert diff["changed"] == [
            {
                "id": "hummus",
                "kind": "item",
                "name": "Hummus",
                "changes": {"price": {"from": "22.00", "to": "23.00"}},
            }
        ]

    async def test_preview_reports_the_platforms_issues(self, stack: Stack) -> None:
        body = {
            "platformMenuId": str(stack.seed.menu_id),
            "platforms": ["talabat"],
            "configuration": {"talabat": {"wrapOptionalToppings": False}},
        }

        response = await stack.client.post(
            "/api/v1/platform-sync/preview", json=body, headers=stack.headers
        )

        entry = response.json()["data"][0]
        assert entry["issues"]
        assert entry["payload"] is None


class TestAvailabilityAndStoreStatus:
    async def test_item_availability_round_trip_on_every_platform(self, stack: Stack) -> None:
        await stack.start_worker()
        for platform in ("careem", "talabat", "deliveroo"):
            await stack.wait_for((await stack.sync(platform))["syncId"])

        response = await stack.client.post(
            "/api/v1/platform-sync/availability",
            json={
                "platforms": ["careem", "talabat", "deliveroo"],
                "changes": [{"itemId": "falafel", "isAvailable": False}],
            },
            headers=stack.headers,
        )
        operations = response.json()["syncOperations"]
        finals = [await stack.wait_for(op["syncId"]) for op in operations]

        assert response.status_code == 202
        assert [final["status"] for final in finals] == ["completed"] * 3, finals
        assert "falafel" in str((await _store(stack, "careem"))["availability"])
        assert "falafel" in (await _store(stack, "deliveroo"))["availability"]["unavailable_ids"]
        assert any(
            row["id"] == "falafel"
            for row in (await _store(stack, "talabat"))["availability"]["unavailable"]
        )

    async def test_store_can_be_closed_and_reopened(self, stack: Stack) -> None:
        await stack.start_worker()
        await stack.wait_for((await stack.sync("careem"))["syncId"])

        closed = await stack.client.post(
            "/api/v1/platform-sync/store-status",
            json={"platforms": ["careem"], "state": "closed"},
            headers=stack.headers,
        )
        await stack.wait_for(closed.json()["syncOperations"][0]["syncId"])
        closed_view = await _store(stack, "careem")
        opened = await stack.client.post(
            "/api/v1/platform-sync/store-status",
            json={"platforms": ["careem"], "state": "open"},
            headers=stack.headers,
        )
        opened_final = await stack.wait_for(opened.json()["syncOperations"][0]["syncId"])

        assert closed_view["status"]["status_id"] == 2
        assert opened_final["status"] == "completed"
        assert (await _store(stack, "careem"))["status"]["status_id"] == 1

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({"platforms": ["careem"], "state": "paused"}, 422),
            ({"platforms": ["careem"], "state": "sleeping"}, 422),
            ({"platforms": [], "state": "open"}, 422),
            ({"platforms": ["deliveroo"], "state": "paused", "until": "2099-01-01T00:00:00Z"}, 400),
        ],
    )
    async def test_impossible_store_changes_are_refused_and_queue_nothing(
        self, stack: Stack, body: dict[str, Any], status: int
    ) -> None:
        response = await stack.client.post(
            "/api/v1/platform-sync/store-status", json=body, headers=stack.headers
        )

        assert response.status_code == status, response.text
        async with stack.resources.sessions() as session:
            assert (
                await session.execute(select(func.count()).select_from(SyncJob))
            ).scalar_one() == 0

    async def test_availability_with_an_end_time_is_refused_where_unsupported(
        self, stack: Stack
    ) -> None:
        body = {
            "platforms": ["careem"],
            "changes": [
                {"itemId": "falafel", "isAvailable": False, "until": "2099-01-01T00:00:00Z"}
            ],
        }

        response = await stack.client.post(
            "/api/v1/platform-sync/availability", json=body, headers=stack.headers
        )

        assert response.status_code == 400
        assert response.json()["error"]["details"]["issues"][0]["code"] == "unsupported"


async def test_unavailable_items_are_marked_on_deliveroo_once_the_menu_is_live(
    stack: Stack,
) -> None:
    menu = (
        await stack.client.get(f"/api/v1/menus/{stack.seed.menu_id}", headers=stack.headers)
    ).json()["data"]["menu"]
    for item in menu["items"]:
        if item["id"] == "falafel":
            item["isAvailable"] = False
    await stack.client.put(
        f"/api/v1/menus/{stack.seed.menu_id}", json={"menu": menu}, headers=stack.headers
    )
    await stack.start_worker()

    pushed = await stack.wait_for((await stack.sync("deliveroo"))["syncId"])

    async def follow_up_done() -> SyncJob | None:
        async with stack.resources.sessions() as session:
            job = (
                await session.execute(select(SyncJob).where(SyncJob.trigger == "follow_up"))
            ).scalar_one_or_none()
        return job if job is not None and job.status == "completed" else None

    from tests.sync.conftest import eventually

    follow_up = await eventually(follow_up_done, what="the follow-up availability job")
    assert pushed["status"] == "completed"
    assert follow_up.kind == "availability"
    assert follow_up.request["changes"] == [
        {"itemId": "falafel", "isAvailable": False, "kind": "item"}
    ]
    assert "falafel" in (await _store(stack, "deliveroo"))["availability"]["unavailable_ids"]


class TestDailyRollup:
    async def test_workers_roll_past_days_up_and_analytics_read_them(self, stack: Stack) -> None:
        first = await stack.sync("careem")
        second = await stack.sync("deliveroo")
        await stack.start_worker()
        for started in (first, second):
            assert (await stack.wait_for(started["syncId"]))["status"] == "completed"
        three_days_ago = datetime.now(UTC) - timedelta(days=3)
        async with stack.resources.unit_of_work() as session:
            await session.execute(update(SyncJob).values(created_at=three_days_ago))
            await session.execute(delete(RollupProgress))  # as if the jobs had always been old

        async def rolled() -> list[DailySyncStats]:
            async with stack.resources.sessions() as session:
                progress = await session.get(RollupProgress, "sync_jobs")
                if progress is None or progress.through_day < datetime.now(UTC).date():
                    return []
                return list((await session.execute(select(DailySyncStats))).scalars())

        rows = await eventually(rolled, what="the maintenance tick rolling the past days up")

        by_platform = {row.platform: row for row in rows}
        assert by_platform.keys() >= {"careem", "deliveroo"}
        assert all(row.is_final and row.completed == row.total for row in by_platform.values())
        summary = await stack.client.get(
            "/api/v1/platform-sync/analytics/summary",
            params={"period": "week"},
            headers=stack.headers,
        )
        data = summary.json()["data"]
        assert data["totalSyncs"] == sum(row.total for row in rows)
        assert data["platformBreakdown"]["careem"]["successful"] >= 1
