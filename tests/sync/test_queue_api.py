"""What is waiting: /active, /queue and /retry-queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from menusync.sync.models import SyncJob
from tests.support import auth_headers
from tests.sync.conftest import Stack

BASE = "/api/v1/platform-sync"


async def test_active_queue_and_retry_queue_show_waiting_work(stack: Stack) -> None:
    careem = await stack.sync("careem")
    talabat = await stack.sync("talabat")
    retry_at = datetime.now(UTC) + timedelta(minutes=5)
    async with stack.resources.unit_of_work() as session:
        await session.execute(
            update(SyncJob)
            .where(SyncJob.id == uuid.UUID(talabat["syncId"]))
            .values(
                status="scheduled_retry",
                attempt=1,
                next_attempt_at=retry_at,
                error_code="platform_unavailable",
                error_message="503 from Talabat",
                error_retryable=True,
            )
        )

    active = (await stack.client.get(f"{BASE}/active", headers=stack.headers)).json()["data"]
    queue = (await stack.client.get(f"{BASE}/queue", headers=stack.headers)).json()["data"]
    retries = (await stack.client.get(f"{BASE}/retry-queue", headers=stack.headers)).json()["data"]

    assert {row["syncId"] for row in active} == {careem["syncId"], talabat["syncId"]}
    depth = {(row["platformType"], row["status"]): row["count"] for row in queue["depth"]}
    assert depth == {("careem", "pending"): 1, ("talabat", "scheduled_retry"): 1}
    assert [row["syncId"] for row in retries] == [talabat["syncId"]]
    assert retries[0]["error"]["code"] == "platform_unavailable"
    assert retries[0]["nextRetryAt"].startswith(retry_at.strftime("%Y-%m-%dT%H:%M"))


async def test_workers_seen_appear_in_the_queue_view(stack: Stack) -> None:
    await stack.start_worker()
    await stack.wait_for((await stack.sync("careem"))["syncId"])

    queue = (await stack.client.get(f"{BASE}/queue", headers=stack.headers)).json()["data"]

    assert len(queue["workers"]) == 1
    assert queue["workers"][0]["concurrency"] == 4


async def test_another_company_sees_none_of_it(stack: Stack) -> None:
    await stack.sync("careem")
    other = auth_headers(company="globex")

    assert (await stack.client.get(f"{BASE}/active", headers=other)).json()["data"] == []
    assert (await stack.client.get(f"{BASE}/queue", headers=other)).json()["data"]["depth"] == []
    assert (await stack.client.get(f"{BASE}/retry-queue", headers=other)).json()["data"] == []


@pytest.mark.parametrize(
    ("path", "status"), [("active", 200), ("queue", 403), ("retry-queue", 403)]
)
async def test_call_center_reads_active_only(stack: Stack, path: str, status: int) -> None:
    headers = auth_headers(company=stack.seed.company_id, role="call_center")

    assert (await stack.client.get(f"{BASE}/{path}", headers=headers)).status_code == status
