"""The control API shared by the three simulators, the mounted app, and a real server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from menusync.sandbox.app import create_sandbox_app
from menusync.sandbox.settings import ManualClock, SandboxSettings

if TYPE_CHECKING:
    from tests.sandbox.conftest import Sandbox, SandboxFactory

SECRET = "sandbox-deliveroo-webhook-secret"
MENU_PATH = "/menu/v1/brands/brand-1/menus/main"


def valid_menu() -> dict[str, object]:
    """A small valid Deliveroo menu for site-1 (market AE)."""
    return {
        "name": "Main",
        "site_ids": ["site-1"],
        "menu": {
            "mealtimes": [
                {
                    "id": "all-day",
                    "name": {"en": "All day"},
                    "image": {"url": "https://cdn.example/cover.jpg"},
                    "category_ids": ["mains"],
                }
            ],
            "categories": [{"id": "mains", "name": {"en": "Mains"}, "item_ids": ["shawarma"]}],
            "items": [
                {
                    "id": "shawarma",
                    "type": "ITEM",
                    "name": {"en": "Shawarma"},
                    "plu": "SH-1",
                    "tax_rate": "5",
                    "price_info": {"price": 2500},
                }
            ],
            "modifiers": [],
        },
    }


async def token(sandbox: Sandbox) -> str:
    response = await sandbox.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"},
    )
    return str(response.json()["access_token"])


async def upload(sandbox: Sandbox) -> httpx2.Response:
    return await sandbox.client.put(
        MENU_PATH, json=valid_menu(), headers={"Authorization": f"Bearer {await token(sandbox)}"}
    )


def expected_signature(guid: str, body: bytes) -> str:
    expected = hmac.new(SECRET.encode(), guid.encode() + b" " + body, hashlib.sha256).hexdigest()
    return expected


# ----- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "path", "envelope_key"),
    [
        ("deliveroo", "/site/v1/brands", "error"),
        ("talabat", "/v2/chains/c/remoteVendors/v/availability", "code"),
        ("careem", "/pos/api/v1/brands", "code"),
    ],
)
async def test_error_rate_answers_the_chosen_status_in_the_platform_envelope(
    make_sandbox: SandboxFactory, platform: str, path: str, envelope_key: str
) -> None:
    sandbox = await make_sandbox(platform)
    await sandbox.client.put("/__sandbox/faults", json={"errorRate": 1, "errorStatuses": [502]})

    response = await sandbox.client.get(path)

    assert response.status_code == 502
    assert envelope_key in response.json()


async def test_outage_fails_every_call_until_it_ends(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("careem")
    await sandbox.client.put("/__sandbox/faults", json={"outageSeconds": 30})

    during = await sandbox.client.get("/pos/api/v1/brands")
    sandbox.clock.advance(30)
    after = await sandbox.client.get("/pos/api/v1/brands")

    assert during.status_code == 503
    assert after.status_code == 401  # the outage is over: the call reaches the API (no token)


async def test_timeout_fault_holds_the_request(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo", timeout_hang_seconds=60)
    await sandbox.client.put("/__sandbox/faults", json={"timeoutRate": 1})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sandbox.client.get("/site/v1/brands"), 0.1)


async def test_timeout_fault_ends_in_a_gateway_timeout(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo", timeout_hang_seconds=0)
    await sandbox.client.put("/__sandbox/faults", json={"timeoutRate": 1})
    response = await sandbox.client.get("/site/v1/brands")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "gateway_timeout"


async def test_latency_is_added_to_every_call(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    await sandbox.client.put("/__sandbox/faults", json={"latencyMs": 50})
    await sandbox.client.get("/site/v1/brands")
    calls = (await sandbox.client.get("/__sandbox/calls")).json()["calls"]
    assert calls[-1]["durationMs"] >= 50


async def test_clearing_faults_restores_normal_answers(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("careem")
    await sandbox.client.put("/__sandbox/faults", json={"errorRate": 1, "errorStatuses": [500]})
    cleared = await sandbox.client.delete("/__sandbox/faults")
    response = await sandbox.client.get("/pos/api/v1/brands")
    assert cleared.status_code == 204
    assert response.status_code == 401


async def test_invalid_faults_are_refused(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("careem")
    response = await sandbox.client.put("/__sandbox/faults", json={"errorRate": 2})
    assert response.status_code == 422


async def test_duplicate_webhooks_carry_the_same_sequence_guid(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("deliveroo")
    await sandbox.client.put("/__sandbox/faults", json={"webhook": {"duplicate": 1}})

    await upload(sandbox)
    first, second = await sandbox.receiver.wait_for(2)

    assert first.headers["x-deliveroo-sequence-guid"] == second.headers["x-deliveroo-sequence-guid"]
    assert first.body == second.body


async def test_duplicate_careem_webhooks_carry_the_same_event_id(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("careem")
    await sandbox.client.put("/__sandbox/faults", json={"webhook": {"duplicate": 1}})
    token_response = await sandbox.client.post(
        "/token",
        files={
            "client_id": (None, "c"),
            "client_secret": (None, "s"),
            "grant_type": (None, "client_credentials"),
            "scope": (None, "pos"),
        },
    )
    headers = {
        "Authorization": f"Bearer {token_response.json()['access_token']}",
        "Branch-Id": "b1",
    }
    body = {"catalog": {"id": "c", "name": "Main", "currency_id": 1}}

    await sandbox.client.put("/pos/api/v1/catalogs", json=body, headers=headers)
    first, second = await sandbox.receiver.wait_for(2)

    assert first.json()["event_id"] == second.json()["event_id"]


async def test_dropped_webhooks_never_arrive(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    await sandbox.client.put("/__sandbox/faults", json={"webhook": {"drop": 1}})

    await upload(sandbox)
    await sandbox.settle()

    assert sandbox.receiver.received == []
    stats = (await sandbox.client.get("/__sandbox/stats")).json()
    assert stats["webhooks"]["dropped"] == 1
    assert (await sandbox.store("site-1"))["menu"] == valid_menu()


async def test_bad_signature_fault_breaks_the_hmac(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    await sandbox.client.put("/__sandbox/faults", json={"webhook": {"badSignature": 1}})

    await upload(sandbox)
    hook = (await sandbox.receiver.wait_for(1))[0]

    guid = hook.headers["x-deliveroo-sequence-guid"]
    assert hook.headers["x-deliveroo-hmac-sha256"] != expected_signature(guid, hook.body)


async def test_webhook_delay_holds_the_first_attempt(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    await sandbox.client.put("/__sandbox/faults", json={"webhook": {"delayMs": 100}})

    await upload(sandbox)
    await asyncio.sleep(0.03)
    early = len(sandbox.receiver.received)
    await sandbox.receiver.wait_for(1)

    assert early == 0


async def test_async_fail_rate_accepts_then_fails_in_processing(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("deliveroo")
    await sandbox.client.put("/__sandbox/faults", json={"asyncFailRate": 1})

    accepted = await upload(sandbox)
    hook = (await sandbox.receiver.wait_for(1))[0]

    assert accepted.status_code == 200
    assert hook.json()["body"]["menu_upload_result"]["http_status"] == 500  # type: ignore[index]


# ----- calls, stats, limits, stores, reset --------------------------------------------------


async def test_calls_and_stats_count_platform_calls_not_control_calls(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("deliveroo")
    await upload(sandbox)
    await upload(sandbox)  # 429: one upload per minute per site
    await sandbox.settle()

    calls = (await sandbox.client.get("/__sandbox/calls", params={"limit": 2})).json()["calls"]
    stats = (await sandbox.client.get("/__sandbox/stats")).json()

    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("POST", "/oauth2/token", 200),
        ("PUT", MENU_PATH, 429),
    ]
    assert stats["requests"] == 4
    assert stats["responses"] == {"200": 3, "429": 1}
    assert stats["webhooks"] == {"sent": 1, "delivered": 1, "failed": 0, "dropped": 0}


async def test_limits_can_be_replaced_and_restored(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    replaced = await sandbox.client.put("/__sandbox/limits", json={"requestsPerMinute": 600})
    first, second = await upload(sandbox), await upload(sandbox)
    restored = await sandbox.client.delete("/__sandbox/limits")
    third = await upload(sandbox)
    current = (await sandbox.client.get("/__sandbox/limits")).json()

    assert replaced.json()["menuUploadsPerMinute"] is None
    assert (first.status_code, second.status_code) == (200, 200)
    assert restored.status_code == 204
    assert third.status_code == 200
    assert current["menuUploadsPerMinute"] == 1
    assert (await upload(sandbox)).status_code == 429


async def test_per_store_limits_override_the_platform_budget(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    await sandbox.client.put(
        "/__sandbox/limits",
        json={"menuUploadsPerMinute": 1, "stores": {"site-1": {"menuUploadsPerMinute": 2}}},
    )
    statuses = [(await upload(sandbox)).status_code for _ in range(3)]
    bad = await sandbox.client.put("/__sandbox/limits", json={"stores": {"s": {"nope": 1}}})
    assert statuses == [200, 200, 429]
    assert bad.status_code == 422


async def test_stores_are_listed_and_reset_forgets_everything(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    await upload(sandbox)
    await sandbox.settle()
    await sandbox.client.put("/__sandbox/faults", json={"latencyMs": 1})

    listed = (await sandbox.client.get("/__sandbox/stores")).json()
    reset = await sandbox.client.post("/__sandbox/reset")
    after = (await sandbox.client.get("/__sandbox/stores")).json()
    missing = await sandbox.client.get("/__sandbox/stores/site-1")
    faults = (await sandbox.client.get("/__sandbox/faults")).json()
    calls = (await sandbox.client.get("/__sandbox/calls")).json()

    assert listed == {"stores": [{"id": "site-1"}]}
    assert reset.status_code == 204
    assert after == {"stores": []}
    assert missing.status_code == 404
    assert faults["latencyMs"] == 0
    assert calls == {"calls": []}


async def test_revoked_tokens_stop_working_early(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("deliveroo")
    headers = {"Authorization": f"Bearer {await token(sandbox)}"}
    await sandbox.client.post("/__sandbox/tokens/revoke")
    response = await sandbox.client.get("/site/v1/brands", headers=headers)
    assert response.status_code == 401


async def test_the_manual_clock_can_be_moved_through_the_control_api(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox("careem")
    moved = await sandbox.client.post("/__sandbox/clock", json={"advanceSeconds": 90})
    assert moved.json() == {"now": "2025-01-06T09:01:30Z"}


async def test_unknown_paths_answer_in_the_platform_envelope(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox("careem")
    response = await sandbox.client.get("/pos/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND_ERROR"


# ----- the mounted app and a real server ----------------------------------------------------


async def test_one_app_mounts_all_three_platforms() -> None:
    app = create_sandbox_app(SandboxSettings.fast(clock=ManualClock()))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        index = await client.get("/")
        roo = await client.post(
            "/deliveroo/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"},
        )
        dh = await client.post(
            "/talabat/v2/login",
            data={"username": "u", "password": "p", "grant_type": "client_credentials"},
        )
        careem = await client.get("/careem/__sandbox/stats")
        calls = await client.get("/deliveroo/__sandbox/calls")
    for simulator in app.state.simulators.values():
        await simulator.aclose()

    assert index.json()["platforms"] == {
        "careem": "/careem",
        "talabat": "/talabat",
        "deliveroo": "/deliveroo",
    }
    assert roo.json()["expires_in"] == 300
    assert dh.json()["expires_in"] == 1800
    assert careem.json()["requests"] == 0
    assert calls.json()["calls"][0]["path"] == "/oauth2/token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _serve(app: Starlette, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(5):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task


async def test_real_server_delivers_a_signed_webhook_over_tcp() -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    arrived = asyncio.Event()

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        arrived.set()
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    sandbox_port, hook_port = _free_port(), _free_port()
    settings = SandboxSettings.fast(deliveroo_webhook_url=f"http://127.0.0.1:{hook_port}/hook")

    async with (
        _serve(receiver, hook_port),
        _serve(create_sandbox_app(settings), sandbox_port),
        httpx2.AsyncClient(base_url=f"http://127.0.0.1:{sandbox_port}/deliveroo") as client,
    ):
        basic = base64.b64encode(b"c:s").decode()
        issued = await client.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        accepted = await client.put(MENU_PATH, json=valid_menu(), headers=headers)
        async with asyncio.timeout(5):
            await arrived.wait()

    hook_headers, body = received[0]
    guid = hook_headers["x-deliveroo-sequence-guid"]
    assert accepted.status_code == 200
    assert hook_headers["x-deliveroo-hmac-sha256"] == expected_signature(guid, body)
