"""The adapter contract, run against every registered adapter.

Each test is parametrized over ``default_registry().kinds``, so an adapter added to the registry is
held to the same contract without a line here: payloads are pure, serialisable and deterministic;
validation reports actionable issues; ``Config`` refuses bad credentials and keeps secrets secret;
the declared capabilities are exactly what works against the sandbox; errors map to the classes
the runner acts on (../shared/STYLE.md). Platform behaviour is exercised against the in-process
sandbox over ASGI (no sockets); its webhooks come back to a recorder standing in for menusync.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, get_args

import httpx2
import jwt
import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from menusync.core.clock import SystemClock
from menusync.core.http import CallLog, PlatformHttp
from menusync.demo import demo_connections
from menusync.menus.canonical import CanonicalMenu
from menusync.menus.samples import generate_menu, sample_document, sample_menu
from menusync.platforms.base import (
    AdapterContext,
    AvailabilityChange,
    Capability,
    MenuPayload,
    PlatformAdapter,
    PushReceipt,
    StoreStatusChange,
)
from menusync.platforms.errors import (
    PlatformError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from menusync.platforms.registry import default_registry
from menusync.platforms.tokens import TokenCache
from menusync.sandbox.app import create_sandbox_app, shutdown_sandbox
from menusync.sandbox.settings import SandboxSettings

REGISTRY = default_registry()
KINDS = REGISTRY.kinds
SANDBOX_URL = "http://sandbox.test"
APP_HOST = "menusync.test"


def callback_url(kind: str) -> str:
    return f"http://{APP_HOST}/api/v1/platform-sync/webhook/{kind}"


def sandbox_settings() -> SandboxSettings:
    return SandboxSettings.fast(
        deliveroo_webhook_url=callback_url("deliveroo"),
        careem_webhook_url=callback_url("careem"),
    )


def demo_config(kind: str) -> BaseModel:
    """A valid connection of ``kind``, pointing at the sandbox."""
    values = demo_connections(SANDBOX_URL, sandbox_settings())[kind]
    return REGISTRY.get(kind).Config.model_validate(values)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# ---- pure: an adapter whose HTTP fails the test if it is used ------------------------------


def _no_http(request: httpx2.Request) -> httpx2.Response:
    raise AssertionError(f"a pure method made an HTTP call: {request.method} {request.url}")


@pytest.fixture
async def offline(kind: str) -> AsyncIterator[PlatformAdapter]:
    """The adapter of ``kind`` with a transport that raises on any request."""
    clock = SystemClock()
    calls = CallLog()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(_no_http)) as client:
        context = AdapterContext(
            http=PlatformHttp(client, calls, clock),
            tokens=TokenCache(clock),
            clock=clock,
            callback_url=callback_url(kind),
        )
        yield REGISTRY.create(kind, demo_config(kind), context)
    assert calls.calls == []


def default_sync_config(adapter: PlatformAdapter) -> BaseModel:
    return type(adapter).SyncConfig()


MENUS: dict[str, Callable[[], CanonicalMenu]] = {
    "sample": sample_menu,
    "generated_2000": lambda: generate_menu(2000),
}


@pytest.mark.parametrize("menu_name", list(MENUS))
def test_payload_is_json_deterministic_and_counts_items(
    offline: PlatformAdapter, menu_name: str
) -> None:
    menu = MENUS[menu_name]()
    sync_config = default_sync_config(offline)

    first = offline.build_payload(menu, sync_config)
    second = offline.build_payload(menu, sync_config)

    assert json.dumps(first.body, sort_keys=True) == json.dumps(second.body, sort_keys=True)
    assert first == second
    assert first.items_total > 0
    assert not first.is_partial
    assert menu == MENUS[menu_name]()  # the menu it was given is left as it was


def test_sample_menu_passes_validation_with_the_default_sync_config(
    offline: PlatformAdapter,
) -> None:
    issues = offline.validate_menu(sample_menu(), default_sync_config(offline))

    assert [i for i in issues if i.severity == "error"] == []


def _hidden_everywhere(entity: dict[str, Any]) -> None:
    entity["platformOverrides"] = {k: {"isVisible": False} for k in KINDS}


def nothing_visible() -> CanonicalMenu:
    """Every item hidden on every platform: no platform takes an empty menu."""
    document = sample_document()
    for item in document["items"]:
        _hidden_everywhere(item)
    return CanonicalMenu.model_validate(document)


def required_group_without_visible_option() -> CanonicalMenu:
    """A required choice whose options are all hidden: no platform can offer it."""
    document = sample_document()
    document["modifierGroups"].append(
        {
            "id": "sauce",
            "name": {"en": "Sauce", "ar": "صلصة"},
            "minSelections": 1,
            "maxSelections": 1,
            "optionIds": ["garlic-sauce", "chili-sauce"],
        }
    )
    for option_id, en, ar in (("garlic-sauce", "Garlic", "ثوم"), ("chili-sauce", "Chili", "حار")):
        option: dict[str, Any] = {"id": option_id, "name": {"en": en, "ar": ar}, "price": "0"}
        _hidden_everywhere(option)
        document["modifierOptions"].append(option)
    document["items"][0]["modifierGroupIds"] = [*document["items"][0]["modifierGroupIds"], "sauce"]
    return CanonicalMenu.model_validate(document)


BROKEN_MENUS: dict[str, Callable[[], CanonicalMenu]] = {
    "nothing_visible": nothing_visible,
    "required_group_without_visible_option": required_group_without_visible_option,
}


@pytest.mark.parametrize("breakage", list(BROKEN_MENUS))
def test_menu_every_platform_refuses_gets_actionable_errors(
    offline: PlatformAdapter, breakage: str
) -> None:
    issues = offline.validate_menu(BROKEN_MENUS[breakage](), default_sync_config(offline))

    assert any(i.severity == "error" for i in issues), issues
    for issue in issues:
        assert issue.path.strip(), issue
        assert issue.message.strip(), issue


def test_partial_push_is_declared_exactly_when_the_payload_is_partial(
    offline: PlatformAdapter,
) -> None:
    menu = sample_menu()

    payload = offline.build_payload(menu, default_sync_config(offline), item_ids=[menu.items[0].id])

    declared = Capability.PARTIAL_MENU_PUSH in offline.capabilities
    assert payload.is_partial is declared
    assert payload.items_total > 0


def test_menu_push_and_test_connection_are_declared_by_every_adapter(kind: str) -> None:
    capabilities = REGISTRY.get(kind).capabilities

    assert {Capability.MENU_PUSH, Capability.TEST_CONNECTION} <= capabilities


# ---- Config ----------------------------------------------------------------------------------


def test_config_rejects_an_empty_connection(kind: str) -> None:
    with pytest.raises(ValidationError):
        REGISTRY.get(kind).Config.model_validate({})


def _secret_params() -> Iterator[Any]:
    for name in KINDS:
        for secret in sorted(REGISTRY.get(name).secret_fields):
            for blank in ("", "   "):
                yield pytest.param(name, secret, blank, id=f"{name}-{secret}-{len(blank)}")


@pytest.mark.parametrize(("platform", "secret", "blank"), list(_secret_params()))
def test_config_rejects_a_blank_secret(platform: str, secret: str, blank: str) -> None:
    adapter = REGISTRY.get(platform)
    values = demo_config(platform).model_dump(mode="python")
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()}
    values[secret] = blank

    with pytest.raises(ValidationError) as caught:
        adapter.Config.model_validate(values)

    assert any(
        error["loc"][0] in (secret, _alias(adapter, secret)) for error in caught.value.errors()
    )


def _alias(adapter: type[PlatformAdapter], name: str) -> str:
    return adapter.Config.model_fields[name].alias or name


def test_secret_fields_are_secret_str_fields_of_config(kind: str) -> None:
    adapter = REGISTRY.get(kind)
    config = demo_config(kind)

    assert adapter.secret_fields
    for name in adapter.secret_fields:
        annotation = adapter.Config.model_fields[name].annotation
        assert annotation is SecretStr or SecretStr in get_args(annotation), name
        value = getattr(config, name)
        assert isinstance(value, SecretStr), name
        assert value.get_secret_value() not in repr(config)


def test_store_key_is_stable_and_not_empty(kind: str) -> None:
    adapter = REGISTRY.get(kind)

    key = adapter.store_key(demo_config(kind))

    assert key.strip()
    assert adapter.store_key(demo_config(kind)) == key


# ---- webhooks: a forgery never verifies ------------------------------------------------------

_FORGED_BODY = json.dumps(
    {"event": "menu.upload_result", "request_id": "forged", "status": "COMPLETED"}
).encode()
_GUID = "5f0c2f2e-0000-4000-8000-forgedforged"
_WRONG = "not-the-secret-of-this-connection-0123456789abcdef0123456789abcdef"

FORGED_HEADERS: dict[str, dict[str, str]] = {
    "no_headers": {},
    "garbage_signatures": {
        "x-careem-api-key": "forged-api-key",
        "Authorization": "Bearer forged.jwt.token",
        "X-Deliveroo-Sequence-Guid": _GUID,
        "X-Deliveroo-Hmac-Sha256": "00" * 32,
    },
    "signed_with_another_secret": {
        "x-careem-api-key": _WRONG,
        "Authorization": "Bearer "
        + jwt.encode({"service": "middleware"}, _WRONG, algorithm="HS512"),
        "X-Deliveroo-Sequence-Guid": _GUID,
        "X-Deliveroo-Hmac-Sha256": hmac.new(
            _WRONG.encode(), _GUID.encode() + b" " + _FORGED_BODY, hashlib.sha256
        ).hexdigest(),
    },
}


@pytest.mark.parametrize("forgery", list(FORGED_HEADERS))
def test_forged_webhook_does_not_verify(offline: PlatformAdapter, forgery: str) -> None:
    assert offline.verify_webhook(FORGED_HEADERS[forgery], _FORGED_BODY) is False


# ---- against the sandbox -----------------------------------------------------------------------


@dataclass
class HookRecorder:
    """menusync's webhook intake reduced to recording what the sandbox posts (answers 200)."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class HostRouter(httpx2.AsyncBaseTransport):
    def __init__(self, routes: Mapping[str, httpx2.AsyncBaseTransport]) -> None:
        self.routes = dict(routes)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.routes[request.url.host].handle_async_request(request)


@dataclass
class Sandboxed:
    kind: str
    adapter: PlatformAdapter
    control: httpx2.AsyncClient
    hooks: HookRecorder

    async def settle(self) -> None:
        answer = await self.control.post("/settle", params={"timeout": 5})
        assert answer.json() == {"settled": True}

    async def inject(self, **faults: Any) -> None:
        answer = await self.control.put("/faults", json=faults)
        assert answer.status_code == 200, answer.text

    async def clear_faults(self) -> None:
        answer = await self.control.delete("/faults")
        assert answer.status_code == 204, answer.text

    def payload(self, menu: CanonicalMenu | None = None) -> MenuPayload:
        sync_config = type(self.adapter).SyncConfig()
        return self.adapter.build_payload(menu or sample_menu(), sync_config)

    async def push(self) -> tuple[MenuPayload, PushReceipt]:
        """Push the sample menu and wait until the sandbox has processed it."""
        payload = self.payload()
        receipt = await self.adapter.push_menu(payload)
        await self.settle()
        return payload, receipt


# Stores a platform knows only once the integrator (or the platform's ops) created them: the
# Careem simulator auto-creates a branch on the first catalog push but not on a read, as a real
# branch exists only after ``PUT /branches/{id}``. Other simulators create stores on first use.
ONBOARDING: dict[str, Callable[[Any], dict[str, Any]]] = {
    "careem": lambda config: {"storeId": config.branch_id, "brandId": config.brand_id},
}


@pytest.fixture
async def sandboxed(kind: str) -> AsyncIterator[Sandboxed]:
    hooks = HookRecorder()
    hook_client = httpx2.AsyncClient(
        transport=HostRouter({APP_HOST: httpx2.ASGITransport(app=hooks)})
    )
    sandbox = create_sandbox_app(sandbox_settings(), http_client=hook_client)
    transport = httpx2.ASGITransport(app=sandbox)
    client = httpx2.AsyncClient(transport=transport)
    control = httpx2.AsyncClient(transport=transport, base_url=f"{SANDBOX_URL}/{kind}/__sandbox")
    clock = SystemClock()
    context = AdapterContext(
        http=PlatformHttp(client, CallLog(), clock),
        tokens=TokenCache(clock),
        clock=clock,
        callback_url=callback_url(kind),
    )
    try:
        limits = await control.put("/limits", json={"requestsPerMinute": 1_000_000})
        assert limits.status_code == 200, limits.text
        config = demo_config(kind)
        if kind in ONBOARDING:
            store = await control.post("/stores", json=ONBOARDING[kind](config))
            assert store.status_code == 201, store.text
        yield Sandboxed(kind, REGISTRY.create(kind, config, context), control, hooks)
    finally:
        await shutdown_sandbox(sandbox)
        for http in (control, client, hook_client):
            await http.aclose()


@pytest.mark.parametrize(
    ("status", "error"), [(503, PlatformUnavailable), (429, PlatformRateLimited)]
)
async def test_push_error_maps_to_its_class_and_push_works_once_cleared(
    sandboxed: Sandboxed, status: int, error: type[PlatformError]
) -> None:
    await sandboxed.inject(errorRate=1, errorStatuses=[status])

    with pytest.raises(error) as caught:
        await sandboxed.adapter.push_menu(sandboxed.payload())

    assert caught.value.status_code == status
    await sandboxed.clear_faults()
    receipt = await sandboxed.adapter.push_menu(sandboxed.payload())
    assert receipt.external_ref or receipt.outcome in ("completed", "unchanged")


# Capabilities: a declared one works against the sandbox; an undeclared one refuses (raises a
# PlatformError, or for webhooks: none arrives) instead of pretending to work.


@dataclass(frozen=True)
class Exercise:
    works: Callable[[Sandboxed], Awaitable[None]]
    refused: Callable[[Sandboxed], Awaitable[None]]


async def _raises_platform_error(call: Awaitable[Any]) -> None:
    with pytest.raises(PlatformError):
        await call


async def _menu_push_works(sb: Sandboxed) -> None:
    _, receipt = await sb.push()
    assert receipt.outcome in ("accepted", "completed", "unchanged")


async def _menu_push_refused(sb: Sandboxed) -> None:
    await _raises_platform_error(sb.adapter.push_menu(sb.payload()))


async def _poll_works(sb: Sandboxed) -> None:
    payload, receipt = await sb.push()
    assert receipt.external_ref is not None
    result = await sb.adapter.get_push_result(receipt.external_ref, payload)
    assert result.state == "completed", result
    assert result.external_ref == receipt.external_ref


async def _poll_refused(sb: Sandboxed) -> None:
    payload, receipt = await sb.push()
    await _raises_platform_error(
        sb.adapter.get_push_result(receipt.external_ref or "unknown", payload)
    )


def _results(sb: Sandboxed) -> list[Any]:
    adapter = type(sb.adapter)
    messages = [adapter.parse_webhook(headers, body) for headers, body in sb.hooks.received]
    return [m for m in messages if m.result is not None]


async def _webhook_works(sb: Sandboxed) -> None:
    _, receipt = await sb.push()
    assert sb.hooks.received, "no webhook arrived"
    assert all(sb.adapter.verify_webhook(headers, body) for headers, body in sb.hooks.received)
    results = _results(sb)
    assert any(
        m.external_ref == receipt.external_ref and m.result.state == "completed" for m in results
    ), results


async def _webhook_refused(sb: Sandboxed) -> None:
    await sb.push()
    assert _results(sb) == []


def _availability(sb: Sandboxed) -> Awaitable[Any]:
    item = sample_menu().items[0].id
    return sb.adapter.set_item_availability([AvailabilityChange(item_id=item, is_available=False)])


async def _availability_works(sb: Sandboxed) -> None:
    await sb.push()
    result = await _availability(sb)
    assert result.succeeded, result
    assert result.items_processed == 1


async def _availability_refused(sb: Sandboxed) -> None:
    await sb.push()
    await _raises_platform_error(_availability(sb))


async def _store_status_works(sb: Sandboxed) -> None:
    await sb.push()
    result = await sb.adapter.set_store_status(StoreStatusChange(state="closed"))
    assert result.succeeded, result


async def _store_status_refused(sb: Sandboxed) -> None:
    await sb.push()
    await _raises_platform_error(sb.adapter.set_store_status(StoreStatusChange(state="closed")))


def _pause(sb: Sandboxed) -> Awaitable[Any]:
    until = SystemClock().now() + timedelta(minutes=30)
    return sb.adapter.set_store_status(StoreStatusChange(state="paused", until=until))


async def _store_pause_works(sb: Sandboxed) -> None:
    await sb.push()
    result = await _pause(sb)
    assert result.succeeded, result


async def _store_pause_refused(sb: Sandboxed) -> None:
    await sb.push()
    with pytest.raises(PlatformRejected):
        await _pause(sb)


async def _test_connection_works(sb: Sandboxed) -> None:
    assert (await sb.adapter.test_connection()).ok


async def _test_connection_refused(sb: Sandboxed) -> None:
    assert not (await sb.adapter.test_connection()).ok


EXERCISES: dict[Capability, Exercise] = {
    Capability.MENU_PUSH: Exercise(_menu_push_works, _menu_push_refused),
    Capability.PUSH_STATUS_POLL: Exercise(_poll_works, _poll_refused),
    Capability.PUSH_RESULT_WEBHOOK: Exercise(_webhook_works, _webhook_refused),
    Capability.ITEM_AVAILABILITY: Exercise(_availability_works, _availability_refused),
    Capability.STORE_STATUS: Exercise(_store_status_works, _store_status_refused),
    Capability.STORE_PAUSE: Exercise(_store_pause_works, _store_pause_refused),
    Capability.TEST_CONNECTION: Exercise(_test_connection_works, _test_connection_refused),
}


# Defects this suite found in an adapter, reported and not yet fixed in src/. Not strict: the
# defect shows only when the poll falls in the second of the import (almost always here).
KNOWN_DEFECTS: dict[tuple[str, Capability], str] = {}


@pytest.mark.e2e
@pytest.mark.parametrize("capability", list(EXERCISES), ids=str)
async def test_capability_is_declared_exactly_when_it_works(
    request: pytest.FixtureRequest, sandboxed: Sandboxed, capability: Capability
) -> None:
    if defect := KNOWN_DEFECTS.get((sandboxed.kind, capability)):
        request.applymarker(pytest.mark.xfail(reason=defect, strict=False))
    exercise = EXERCISES[capability]

    if capability in sandboxed.adapter.capabilities:
        await exercise.works(sandboxed)
    else:
        await exercise.refused(sandboxed)
