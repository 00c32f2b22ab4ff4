"""``/``: the dashboard page; ``/dashboard/static/...``: its script, stylesheet and vendored
socket.io client. Neither is in the OpenAPI document, and neither needs a token: the page holds
no data, it asks the operator for a token and calls the API with it.

The page is locked down by its headers: a Content-Security-Policy that admits scripts, styles,
images and connections from this origin only (plus this host's WebSocket URLs, for Socket.IO, in
browsers that do not count them as ``'self'`` yet), no inline script, no framing, and Trusted
Types required, so a stray ``innerHTML`` fails loudly in the browsers that enforce them.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

PAGE = Path(__file__).parent / "index.html"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/dashboard/static"

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (ETag, so mostly a 304): the asset names carry no version.
    "Cache-Control": "no-cache",
}
PAGE_HEADERS = {
    **COMMON_HEADERS,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MEDIA_TYPES = {
    # Pinned rather than guessed from the host's mime.types: with nosniff, a wrong type for the
    # script would break the page.
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def content_security_policy(host: str | None) -> str:
    """The page's policy; ``host`` (the request's ``Host``) adds its ``ws:``/``wss:`` URLs."""
    connect = ["'self'"]
    if host and _HOST.fullmatch(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
        ]
    )


class DashboardAssets(StaticFiles):
    """The page's files, with pinned media types and the same security headers as the page."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        media_type = MEDIA_TYPES.get(Path(path).suffix)
        if media_type is not None and response.status_code == 200:
            response.headers["Content-Type"] = media_type
        response.headers.update(COMMON_HEADERS)
        return response


router = APIRouter(include_in_schema=False)
router.mount(STATIC_PATH, DashboardAssets(directory=STATIC_DIR), name="dashboard-static")


@router.api_route("/", methods=["GET", "HEAD"], response_class=FileResponse)
async def get_dashboard(request: Request) -> FileResponse:
    headers = {
        **PAGE_HEADERS,
        "Content-Security-Policy": content_security_policy(request.headers.get("host")),
    }
    return FileResponse(PAGE, media_type="text/html; charset=utf-8", headers=headers)
