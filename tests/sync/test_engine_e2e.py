"""The whole path against the sandbox: request -> worker -> adapter -> sandbox -> webhook or poll.

Every test runs on SQLite and PostgreSQL, with the sandbox's delays compressed to zero and the
engine's timings shortened (see conftest); assertions are about outcomes, never about time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from menusync.core.resilience.models import CircuitBreakerState
from menusync.realtime.models import SyncEvent
from menusync.sync.models import SyncJob, WebhookEvent
from menusync.sync.queue import JobQueue
from tests.sync.conftest import Stack, eventually

pytestmark = pytest.mark.e2e


async def _details(stack: Stack, sync_id: str) -> dict[str, Any]:
    response = await stack.client.get(
        f"/api/v1/platform-sync/history/{sync_id}/details", headers=stack.headers
    )
    assert response.status_code == 200
    data: dict[str, Any] = response.json()["data"]
    return data


async def _faults(stack: Stack, platform: str, **faults: Any) -> None:
    response = await stack.sandbox_call("PUT", f"/{platform}/__sandbox/faults", json=faults)
    assert response.status_code in (200, 204), response.text


async def _sandbox_requests(stack: Stack, platform: str, path_part: str) -> int:
    calls = (
        await stack.sandbox_call("GET", f"/{platform}/__sandbox/calls", params={"limit": 1000})
    ).json()
    rows = calls if isinstance(calls, list) else calls.get("calls", [])
    return sum(
        1
        for call in rows
        if path_part in call["path"] and not call["path"].startswith("/__sandbox")
    )


@pytest.mark.parametrize("platform", ["careem", "talabat", "deliveroo"])
async def test_sample_menu_reaches_every_platform(stack: Stack, platform: str) -> None:
    await stack.start_worker()

    accepted = await stack.sync(platform)
    final = await stack.wait_for(accepted["syncId"])

    assert final["status"] == "completed", final
    assert final["progress"] == 100
    assert final["itemsProcessed"] == final["itemsTotal"] > 0
    assert final["attempt"] == 1
    details = await _details(stack, accepted["syncId"])
    types = [event["type"] for event in details["timeline"]]
    assert types[0] == "sync-started"
    assert types[-1] == "sync-completed"
    assert "sync-progress" in types
    assert details["integrationLogs"], "every platform call is logged"
    assert all("secret" not in (log["requestBody"] or "") for log in details["integrationLogs"])


@pytest.mark.parametrize("platform", ["careem", "deliveroo", "talabat"])
async def test_push_is_confirmed_by_the_platforms_webhook(stack: Stack, platform: str) -> None:
    stack.resources.settings.engine.status_poll_seconds = 3600  # only the webhook can confirm
    await stack.start_worker()

    accepted = await stack.sync(platform)
    await stack.wait_for(accepted["syncId"])

    async with stack.resources.sessions() as session:
        applied = (
            (
                await session.execute(
                    select(WebhookEvent).where(
                        WebhookEvent.platform == platform, WebhookEvent.outcome == "applied"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(applied) == 1
    assert applied[0].signature_valid
    assert str(applied[0].sync_id) == accepted["syncId"]


async def test_push_is_confirmed_by_polling_when_the_webhook_is_lost(stack: Stack) -> None:
    await _faults(stack, "careem", webhook={"drop": 1})
    await stack.start_worker()

    accepted = await stack.sync("careem")
    final = await stack.wait_for(accepted["syncId"])

    assert final["status"] == "completed"
    assert "polling" in final["message"]


async def test_unchanged_menu_is_not_pushed_again_unless_forced(stack: Stack) -> None:
    await stack.start_worker()
    first = await stack.sync("careem")
    await stack.wait_for(first["syncId"])

    second = await stack.sync("careem")
    again = await stack.wait_for(second["syncId"])
    forced = await stack.wait_for((await stack.sync("careem", forceSync=True))["syncId"])

    assert again["status"] == "completed"
    assert again["unchanged"] is True
    assert forced["unchanged"] is False
    assert await _sandbox_requests(stack, "careem", "/catalogs") >= 2
    assert not (await _details(stack, second["syncId"]))["integrationLogs"], "no platform call"


async def test_duplicate_request_returns_the_queued_job(stack: Stack) -> None:
    first = await stack.sync("careem")
    second = await stack.sync("careem")
    forced = await stack.sync("careem", forceSync=True)

    assert second["syncId"] == first["syncId"]
    assert forced["syncId"] != first["syncId"]


async def test_transient_errors_are_retried_to_success(stack: Stack) -> None:
    from menusync.core.resilience.retry import RetryPolicy

    # Enough retries that the job is still retrying when the test looks (delays are short here).
    policy = stack.app.state.engine_policies["talabat"]
    object.__setattr__(policy, "retry", RetryPolicy(max_retries=50, base_delay=0.05, max_delay=0.2))
    await _faults(stack, "talabat", errorRate=1, errorStatuses=[503])
    await stack.start_worker()

    accepted = await stack.sync("talabat")
    waiting = await stack.wait_for(accepted["syncId"], ("scheduled_retry",))
    await stack.sandbox_call("DELETE", "/talabat/__sandbox/faults")
    final = await stack.wait_for(accepted["syncId"])

    assert waiting["error"]["code"] == "platform_unavailable"
    assert waiting["error"]["retryable"] is True
    assert waiting["nextRetryAt"] is not None
    assert final["status"] == "completed"
    assert final["attempt"] >= 2
    logs = (await _details(stack, accepted["syncId"]))["integrationLogs"]
    assert any(log["statusCode"] == 503 for log in logs)


async def test_retries_give_up_after_max_attempts(stack: Stack) -> None:
    await _faults(stack, "talabat", errorRate=1, errorStatuses=[502])
    await stack.start_worker()

    accepted = await stack.sync("talabat")
    final = await stack.wait_for(accepted["syncId"], timeout=30)

    assert final["status"] == "failed"
    assert final["attempt"] == final["maxAttempts"] == 4
    assert final["error"]["retryable"] is True
    timeline = [event["type"] for event in (await _details(stack, accepted["syncId"]))["timeline"]]
    assert timeline.count("sync-retry-scheduled") == 3


async def test_asynchronous_rejection_fails_at_once_with_the_platforms_issues(stack: Stack) -> None:
    await _faults(stack, "careem", asyncFailRate=1)
    await stack.start_worker()

    accepted = await stack.sync("careem")
    final = await stack.wait_for(accepted["syncId"])

    assert final["status"] == "failed"
    assert final["attempt"] == 1
    assert final["error"]["code"] == "platform_rejected"
    assert final["error"]["retryable"] is False


async def test_menu_the_platform_would_reject_is_refused_before_any_call(stack: Stack) -> None:
    body = {
        "platformMenuId": str(stack.seed.menu_id),
        "platformType": "talabat",
        "configuration": {"wrapOptionalToppings": False},
    }

    response = await stack.client.post(
        "/api/v1/platform-sync/single", json=body, headers=stack.headers
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "platform_validation_failed"
    assert error["details"]["issues"]
    assert all({"path", "message"} <= set(issue) for issue in error["details"]["issues"])
    async with stack.resources.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(SyncJob))).scalar_one() == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"platformType": "careem", "platformMenuId": None}, 422),
        ({"platformType": None}, 422),
        ({"platformType": "uber", "platformMenuId": "00000000-0000-0000-0000-000000000000"}, 404),
        ({"platformType": "careem", "platformMenuId": "00000000-0000-0000-0000-000000000000"}, 404),
        ({"platformType": "careem", "platformMenuId": "not-a-uuid"}, 422),
        ({"platformType": "careem", "priority": 11}, 422),
        ({"platformType": "careem", "configuration": {"unknownSetting": 1}}, 422),
        ({"platformType": "careem", "itemIds": ["ghost"]}, 422),
    ],
)
async def test_bad_sync_requests_are_refused_and_queue_nothing(
    stack: Stack, body: dict[str, Any], status: int
) -> None:
    body = {"platformMenuId": str(stack.seed.menu_id), **body}

    response = await stack.client.post(
        "/api/v1/platform-sync/single", json=body, headers=stack.headers
    )

    assert response.status_code == status, response.text
    assert response.json()["success"] is False
    async with stack.resources.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(SyncJob))).scalar_one() == 0


async def test_another_companys_sync_is_404(stack: Stack) -> None:
    from tests.support import auth_headers

    accepted = await stack.sync("careem")
    other = auth_headers(company="globex")

    assert (
        await stack.client.get(f"/api/v1/platform-sync/status/{accepted['syncId']}", headers=other)
    ).status_code == 404
    assert (
        await stack.client.delete(
            f"/api/v1/platform-sync/cancel/{accepted['syncId']}", headers=other
        )
    ).status_code == 404
    retry = await stack.client.post(
        "/api/v1/platform-sync/retry", json={"syncIds": [accepted["syncId"]]}, headers=other
    )
    assert retry.json()["skippedOperations"][0]["reason"] == "not found"
    history = await stack.client.get("/api/v1/platform-sync/history", headers=other)
    assert history.json()["pagination"]["total"] == 0
    assert (await stack.status(accepted["syncId"]))["status"] == "pending"


async def test_queued_sync_is_cancelled_at_once_and_cancelling_twice_is_409(stack: Stack) -> None:
    accepted = await stack.sync("careem")
    url = f"/api/v1/platform-sync/cancel/{accepted['syncId']}"

    first = await stack.client.delete(url, headers=stack.headers)
    second = await stack.client.delete(url, headers=stack.headers)
    await stack.start_worker()

    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert second.status_code == 409
    assert (await stack.status(accepted["syncId"]))["status"] == "cancelled"


async def test_running_sync_is_cancelled_in_flight(stack: Stack) -> None:
    await _faults(stack, "deliveroo", latencyMs=30_000)
    await stack.start_worker()
    accepted = await stack.sync("deliveroo")

    await eventually(
        lambda: _stage_is(stack, accepted["syncId"], "calling_platform"),
        what="the platform call to start",
    )
    response = await stack.client.delete(
        f"/api/v1/platform-sync/cancel/{accepted['syncId']}", headers=stack.headers
    )
    final = await stack.wait_for(accepted["syncId"])

    assert response.json()["status"] == "in_progress"
    assert final["status"] == "cancelled"
    assert "while calling the platform" in final["message"]


async def _stage_is(stack: Stack, sync_id: str, stage: str) -> bool:
    return (await stack.status(sync_id))["stage"] == stage


async def test_failed_sync_is_retried_as_the_same_job(stack: Stack) -> None:
    await _faults(stack, "careem", asyncFailRate=1)
    await stack.start_worker()
    accepted = await stack.sync("careem")
    await stack.wait_for(accepted["syncId"])
    await stack.sandbox_call("DELETE", "/careem/__sandbox/faults")

    response = await stack.client.post(
        "/api/v1/platform-sync/retry", json={"syncIds": [accepted["syncId"]]}, headers=stack.headers
    )
    final = await stack.wait_for(accepted["syncId"], ("completed",))

    assert response.json()["retriedOperations"] == [accepted["syncId"]]
    assert final["status"] == "completed"


async def test_completed_sync_is_not_retried_without_force(stack: Stack) -> None:
    await stack.start_worker()
    accepted = await stack.sync("careem")
    await stack.wait_for(accepted["syncId"])

    response = await stack.client.post(
        "/api/v1/platform-sync/retry", json={"syncIds": [accepted["syncId"]]}, headers=stack.headers
    )

    assert response.json()["retriedOperations"] == []
    assert "forceRetry" in response.json()["skippedOperations"][0]["reason"]


async def _batch(stack: Stack, **body: Any) -> dict[str, Any]:
    payload = {
        "platformMenuId": str(stack.seed.menu_id),
        "platforms": [{"platformType": p} for p in ("careem", "talabat", "deliveroo")],
        **body,
    }
    response = await stack.client.post(
        "/api/v1/platform-sync/batch", json=payload, headers=stack.headers
    )
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def _batch_status(stack: Stack, batch_id: str, *, final: bool = True) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await stack.client.get(
            f"/api/v1/platform-sync/batch/{batch_id}/status", headers=stack.headers
        )
        data: dict[str, Any] = response.json()["data"]
        done = data["overallStatus"] in ("completed", "partial", "failed", "cancelled")
        return data if done or not final else None

    result: dict[str, Any] = await eventually(probe, what=f"batch {batch_id} to finish")
    return result


async def test_parallel_batch_completes_on_every_platform(stack: Stack) -> None:
    await stack.start_worker()

    batch = await _batch(stack)
    status = await _batch_status(stack, batch["batchId"])

    assert status["overallStatus"] == "completed"
    assert status["overallProgress"] == 100
    assert (status["completedOperations"], status["failedOperations"]) == (3, 0)
    assert {op["platformType"] for op in status["operations"]} == {"careem", "talabat", "deliveroo"}
    async with stack.resources.sessions() as session:
        types = (
            (
                await session.execute(
                    select(SyncEvent.type)
                    .where(SyncEvent.batch_id == uuid.UUID(batch["batchId"]))
                    .order_by(SyncEvent.id)
                )
            )
            .scalars()
            .all()
        )
    assert types[0] == "batch-sync-started"
    assert types[-1] == "batch-sync-completed"
    assert types.count("batch-sync-completed") == 1


async def test_sequence_batch_runs_in_order_and_partial_when_one_fails(stack: Stack) -> None:
    await _faults(stack, "careem", asyncFailRate=1)
    await stack.start_worker()

    batch = await _batch(stack, executionMode="sequence")
    status = await _batch_status(stack, batch["batchId"])

    assert status["overallStatus"] == "partial"
    assert (status["completedOperations"], status["failedOperations"]) == (2, 1)
    by_platform = {op["platformType"]: op for op in status["operations"]}
    assert by_platform["careem"]["completedAt"] <= by_platform["talabat"]["startedAt"]
    assert by_platform["talabat"]["completedAt"] <= by_platform["deliveroo"]["startedAt"]


async def test_fail_fast_sequence_cancels_the_rest(stack: Stack) -> None:
    await _faults(stack, "careem", asyncFailRate=1)
    await stack.start_worker()

    batch = await _batch(stack, executionMode="sequence", failFast=True)
    status = await _batch_status(stack, batch["batchId"])

    assert status["overallStatus"] == "failed"
    assert [op["status"] for op in status["operations"]] == ["failed", "cancelled", "cancelled"]


async def test_batch_with_a_repeated_platform_is_422(stack: Stack) -> None:
    payload = {
        "platformMenuId": str(stack.seed.menu_id),
        "platforms": [{"platformType": "careem"}, {"platformType": "careem"}],
    }

    response = await stack.client.post(
        "/api/v1/platform-sync/batch", json=payload, headers=stack.headers
    )

    assert response.status_code == 422


async def test_batch_cancel_and_retry(stack: Stack) -> None:
    batch = await _batch(stack)

    cancelled = await stack.client.delete(
        f"/api/v1/platform-sync/batch/{batch['batchId']}/cancel", headers=stack.headers
    )
    status = await _batch_status(stack, batch["batchId"])

    assert len(cancelled.json()["cancelledOperations"]) == 3
    assert status["overallStatus"] == "cancelled"


async def test_worker_that_died_mid_job_has_its_job_finished_by_another(stack: Stack) -> None:
    accepted = await stack.sync("careem")
    # A worker claimed the job and died: its (very short) lease expires unrenewed.
    queue = JobQueue(stack.resources.sessions, stack.resources.clock, lease_seconds=0.01)
    claimed = await queue.claim("dead-worker")
    assert str(claimed) == accepted["syncId"]
    assert (await stack.status(accepted["syncId"]))["status"] == "in_progress"

    await stack.start_worker()
    final = await stack.wait_for(accepted["syncId"])

    assert final["status"] == "completed"


def _sign_deliveroo(secret: str, guid: str, body: bytes) -> str:
    return hmac.new(secret.encode(), guid.encode() + b" " + body, hashlib.sha256).hexdigest()


async def test_forged_and_replayed_webhooks_change_nothing(stack: Stack) -> None:
    await _faults(stack, "deliveroo", webhook={"drop": 1})
    stack.resources.settings.engine.status_poll_seconds = 3600
    await stack.start_worker()
    accepted = await stack.sync("deliveroo")
    waiting = await stack.wait_for(accepted["syncId"], ("awaiting_confirmation",))
    brand, menu = waiting["externalId"].split("/")
    body = json.dumps(
        {
            "event": "menu.upload_result",
            "body": {
                "menu_upload_result": {
                    "http_status": 200,
                    "brand_id": brand,
                    "menu_id": menu,
                    "site_ids": ["100121"],
                    "errors": {},
                }
            },
        }
    ).encode()
    guid = str(uuid.uuid4())
    url = "/api/v1/platform-sync/webhook/deliveroo"
    headers = {"X-Deliveroo-Sequence-Guid": guid, "Content-Type": "application/json"}

    forged = await stack.client.post(
        url, content=body, headers={**headers, "X-Deliveroo-Hmac-Sha256": "0" * 64}
    )
    after_forgery = await stack.status(accepted["syncId"])
    signature = _sign_deliveroo(stack.sandbox_settings.deliveroo_webhook_secret, guid, body)
    genuine = await stack.client.post(
        url, content=body, headers={**headers, "X-Deliveroo-Hmac-Sha256": signature}
    )
    replay = await stack.client.post(
        url, content=body, headers={**headers, "X-Deliveroo-Hmac-Sha256": signature}
    )

    assert forged.status_code == 401
    assert after_forgery["status"] == "awaiting_confirmation"
    assert genuine.status_code == 200
    assert replay.status_code == 200
    final = await stack.status(accepted["syncId"])
    assert final["status"] == "completed"
    async with stack.resources.sessions() as session:
        outcomes = (
            (await session.execute(select(WebhookEvent.outcome).order_by(WebhookEvent.received_at)))
            .scalars()
            .all()
        )
    assert sorted(outcomes) == ["applied", "rejected"]


async def test_webhook_for_an_unknown_platform_is_404_and_garbage_is_400(stack: Stack) -> None:
    unknown = await stack.client.post("/api/v1/platform-sync/webhook/uber", content=b"{}")
    garbage = await stack.client.post("/api/v1/platform-sync/webhook/careem", content=b"not json")

    assert unknown.status_code == 404
    assert garbage.status_code == 400


async def test_outage_opens_the_breaker_and_only_probes_reach_the_platform(
    stack: Stack,
) -> None:
    settings = stack.resources.settings.engine
    settings.breaker.failure_threshold = 2
    settings.breaker.open_seconds = 0.3
    policies = stack.app.state.engine_policies
    from menusync.core.resilience.circuit_breaker import BreakerPolicy
    from menusync.core.resilience.retry import RetryPolicy

    policies.breaker = BreakerPolicy(failure_threshold=2, open_seconds=0.3, success_threshold=1)
    policy = policies["talabat"]
    object.__setattr__(
        policy, "retry", RetryPolicy(max_retries=50, base_delay=0.01, max_delay=0.02)
    )
    await _faults(stack, "talabat", errorRate=1, errorStatuses=[503])
    await stack.start_worker()
    accepted = await stack.sync("talabat")

    async def opened_twice() -> bool:
        async with stack.resources.sessions() as session:
            events = (
                (
                    await session.execute(
                        select(SyncEvent.data).where(SyncEvent.type == "circuit-breaker-changed")
                    )
                )
                .scalars()
                .all()
            )
        return [e["state"] for e in events].count("open") >= 3

    await eventually(opened_twice, what="the breaker to open and re-open")
    await stack.sandbox_call("DELETE", "/talabat/__sandbox/faults")
    final = await stack.wait_for(accepted["syncId"])

    async with stack.resources.sessions() as session:
        states = [
            e["state"]
            for e in (
                await session.execute(
                    select(SyncEvent.data)
                    .where(SyncEvent.type == "circuit-breaker-changed")
                    .order_by(SyncEvent.id)
                )
            )
            .scalars()
            .all()
        ]
        breaker = await session.get(CircuitBreakerState, "talabat")
    assert final["status"] == "completed"
    assert states[0] == "open"
    assert states[-1] == "closed"
    # closed: 2 failures open it; after that each half-open admits exactly one probe.
    assert final["attempt"] == 2 + states.count("half_open")
    assert breaker is not None
    assert breaker.state == "closed"
