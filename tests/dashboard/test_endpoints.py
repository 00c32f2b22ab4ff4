"""The dashboard at ``/`` and its assets, served by the app ``menusync serve`` and ``api`` run (the
FastAPI app wrapped with Socket.IO), beside the API, the docs and, in demo mode, the sandbox.

No database is needed: the page and its files are static, so the app is never started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx2
import pytest
from cryptography.fernet import Fernet

from menusync.app import create_app, create_asgi_app
from menusync.cli import _build_app
from menusync.config import Settings
from menusync.dashboard.endpoints import content_security_policy
from tests.support import TEST_SECRET

BASE_URL = "http://menusync.test"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _settings() -> Settings:
    return Settings(
        database={"url": "sqlite+aiosqlite:///:memory:"},
        auth={"jwt_secret": TEST_SECRET},
        security={"encryption_key": Fernet.generate_key().decode()},
        public_url=BASE_URL,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    app = create_asgi_app(_settings())
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url=BASE_URL
    ) as http:
        yield http


class Page(HTMLParser):
    """What the page loads, and anything that a Content-Security-Policy without
    ``'unsafe-inline'`` would block."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in attributes:
            if name.startswith("on") or name == "style":
                self.inline.append(f"<{tag} {name}>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = True
            if attributes.get("src"):
                self.assets.append(str(attributes["src"]))
        if tag == "link" and attributes.get("href"):
            self.assets.append(str(attributes["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"<script>{data.strip()[:40]}")


def _parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


async def test_the_page_is_served_at_the_root_without_a_token(client: httpx2.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>menusync dashboard</title>" in response.text
    assert 'id="token-form"' in response.text


async def test_the_page_admits_only_its_own_scripts_styles_and_connections(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get("/")

    policy = dict(
        directive.split(" ", 1)
        for directive in response.headers["content-security-policy"].split("; ")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self' ws://menusync.test wss://menusync.test"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_page_has_no_inline_script_or_style(client: httpx2.AsyncClient) -> None:
    page = _parse((await client.get("/")).text)

    assert page.inline == []


async def test_the_page_loads_its_script_its_stylesheet_and_the_socket_io_client(
    client: httpx2.AsyncClient,
) -> None:
    page = _parse((await client.get("/")).text)

    assert "dashboard/static/dashboard.js" in page.assets
    assert "dashboard/static/dashboard.css" in page.assets
    assert "dashboard/static/vendor/socket.io.min.js" in page.assets


async def test_every_asset_of_the_page_is_served_with_its_type(client: httpx2.AsyncClient) -> None:
    page = _parse((await client.get("/")).text)

    for asset in page.assets:
        response = await client.get(urljoin(f"{BASE_URL}/", asset))
        suffix = asset[asset.rindex(".") :]
        assert response.status_code == 200, asset
        assert response.headers["content-type"] == TYPES[suffix], asset
        assert response.headers["x-content-type-options"] == "nosniff", asset
        assert response.content, asset


async def test_the_vendored_socket_io_client_is_the_4x_browser_build_with_its_license(
    client: httpx2.AsyncClient,
) -> None:
    script = await client.get("/dashboard/static/vendor/socket.io.min.js")
    license_text = await client.get("/dashboard/static/vendor/socket.io-client-LICENSE.txt")

    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "Socket.IO v4." in script.text[:400]
    assert "Released under the MIT License." in script.text[:400]
    assert license_text.status_code == 200
    assert license_text.text.startswith("The MIT License")


async def test_an_unchanged_asset_is_answered_304(client: httpx2.AsyncClient) -> None:
    first = await client.get("/dashboard/static/dashboard.js")

    again = await client.get(
        "/dashboard/static/dashboard.js", headers={"If-None-Match": first.headers["etag"]}
    )

    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/missing.js",
        "/dashboard/static/",
        "/dashboard/static/vendor",
        "/dashboard/static/%2e%2e/endpoints.py",
        "/dashboard/static/%2e%2e/index.html",
    ],
)
async def test_an_unknown_static_path_is_404(client: httpx2.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.json()["success"] is False


async def test_a_forged_host_header_stays_out_of_the_policy(client: httpx2.AsyncClient) -> None:
    response = await client.get("/", headers={"Host": "evil.test; script-src *"})

    assert "evil" not in response.headers["content-security-policy"]
    assert "connect-src 'self';" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("host", "connect"),
    [
        ("127.0.0.1:8000", "'self' ws://127.0.0.1:8000 wss://127.0.0.1:8000"),
        ("[::1]:8000", "'self' ws://[::1]:8000 wss://[::1]:8000"),
        (None, "'self'"),
        ("a b", "'self'"),
    ],
)
def test_the_policy_adds_the_hosts_websocket_urls(host: str | None, connect: str) -> None:
    assert f"connect-src {connect};" in content_security_policy(host)


def test_the_dashboard_is_not_in_the_openapi_document() -> None:
    paths: dict[str, Any] = create_app(_settings()).openapi()["paths"]

    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/dashboard")]


async def test_the_docs_health_and_socket_io_still_answer(client: httpx2.AsyncClient) -> None:
    health = await client.get("/healthz")
    docs = await client.get("/docs")
    schema = await client.get("/openapi.json")
    handshake = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})

    assert health.json() == {"status": "ok"}
    assert "swagger" in docs.text.lower()
    assert schema.json()["info"]["title"] == "menusync"
    assert handshake.status_code == 200
    assert handshake.text.startswith("0{")  # engine.io's open packet


async def test_serve_demo_serves_the_dashboard_beside_the_sandbox() -> None:
    app = _build_app(_settings(), demo=True, embedded_worker=False)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        page = await http.get("/")
        sandbox = await http.get("/sandbox/")

    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    assert sandbox.json() == {
        "platforms": {"careem": "/careem", "talabat": "/talabat", "deliveroo": "/deliveroo"}
    }
