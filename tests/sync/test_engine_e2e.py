"""The whole path against the sandbox: request -> worker -> adapter -> sandbox -> result."""

from __future__ import annotations

import pytest
from tests.sync.conftest import Stack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("platform", ["careem", "talabat", "deliveroo"])
async def test_sample_menu_reaches_every_platform(stack: Stack, platform: str) -> None:
    await stack.start_worker()

    accepted = await stack.sync(platform)
    final = await stack.wait_for(accepted["syncId"])

    assert final["status"] == "completed", final
    assert final["progress"] == 100
    assert final["itemsProcessed"] == final["itemsTotal"] > 0
    stores = (await stack.sandbox_call("GET", f"/{platform}/__sandbox/stores")).json()
    assert stores, "the sandbox knows the store"


async def _confirmed_by(stack: Stack, sync_id: str) -> str:
    details = (
        await stack.client.get(
            f"/api/v1/platform-sync/history/{sync_id}/details", headers=stack.headers
        )
    ).json()
    completed = [e for e in details["data"]["timeline"] if e["type"] == "sync-completed"]
    return str(completed[-1]["data"]["message"])


@pytest.mark.parametrize("platform", ["careem", "deliveroo"])
async def test_push_is_confirmed_by_the_signed_webhook(stack: Stack, platform: str) -> None:
    await stack.start_worker()

    accepted = await stack.sync(platform)
    final = await stack.wait_for(accepted["syncId"])

    assert final["status"] == "completed"
    assert "webhook" in await _confirmed_by(stack, accepted["syncId"])
    events = await stack.client.get("/api/v1/platform-sync/webhooks/events", headers=stack.headers)
    assert events.status_code in (200, 404)
