"""HTTP plumbing shared by every router: the error envelope, request ids, the body size limit.

One handler renders every ``MenusyncError`` as ``{"success": false, "error": {...}}``; request
validation errors become 422 with field paths; anything unexpected is a 500 that names the request
id to look up in the logs (and is logged with its traceback).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from menusync.core.errors import MenusyncError, PayloadTooLarge

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """The envelope of every error answer."""

    success: bool = False
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses, all with the error envelope."""
    descriptions = {
        400: "Rejected by the platform's rules",
        401: "Missing, invalid or expired token",
        403: "The caller's role may not do this",
        404: "Not found (or owned by another company)",
        409: "Conflicts with the current state",
        413: "Request body too large",
        422: "Invalid input; `details.issues` lists each field path",
        429: "Too many requests; see `Retry-After`",
    }
    return {
        status: {"model": ErrorResponse, "description": descriptions.get(status, "Error")}
        for status in statuses
    }


def _location(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def validation_issues(errors: Sequence[Any]) -> list[dict[str, Any]]:
    issues = []
    for error in errors:
        issues.append(
            {
                "path": _location(error.get("loc", ())),
                "message": error.get("msg", "invalid"),
                "code": error.get("type", "invalid"),
            }
        )
    return issues


def _render(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"success": False, "error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MenusyncError)
    async def _menusync_error(_request: Request, exc: MenusyncError) -> JSONResponse:
        return _render(exc.status_code, exc.error_code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = validation_issues(exc.errors())
        return _render(422, "validation_failed", "The request is invalid", {"issues": issues})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's own answer to a body it cannot decode (not UTF-8, say): bad input is 422.
            issue = {
                "path": "body",
                "message": "The body is not valid JSON text",
                "code": "json_invalid",
            }
            return _render(422, "validation_failed", "The request is invalid", {"issues": [issue]})
        codes = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthenticated",
            403: "forbidden",
        }
        code = codes.get(exc.status_code, "http_error")
        return _render(exc.status_code, code, str(exc.detail), {}, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = request.headers.get(REQUEST_ID_HEADER) or getattr(
            request.state, "request_id", None
        )
        log.exception("unhandled_error", path=request.url.path, error=repr(exc))
        return _render(
            500,
            "internal_error",
            "An internal error occurred; it has been logged",
            {"requestId": request_id},
        )


class RequestContextMiddleware:
    """Gives every request an id (kept from ``X-Request-ID`` when sent), binds it to the logs and
    returns it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")[:64]
        request_id = incoming or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        received = 0

        async def limited_receive() -> Message:
            # Raised inside the app, so the error handler renders the usual 413 envelope.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(
                        f"Request body exceeds {self.max_bytes} bytes",
                        details={"maxBytes": self.max_bytes},
                    )
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send: Send) -> None:
        response = _render(
            413,
            "payload_too_large",
            f"Request body exceeds {self.max_bytes} bytes",
            {"maxBytes": self.max_bytes},
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(response.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
