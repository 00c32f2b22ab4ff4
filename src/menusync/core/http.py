"""The one HTTP client adapters use to talk to platforms: every call timed, redacted and recorded.

Adapters never hold an ``httpx2.AsyncClient`` of their own; they get a ``PlatformHttp`` bound to
a recorder. The runner's recorder turns each ``CallRecord`` into a ``platform_integration_logs``
row in the job's transaction. Tests inject an ``httpx2.AsyncClient`` whose transport is an ASGI app
(the sandbox) or a ``MockTransport``; nothing is patched.

Timeouts and connection failures are raised as ``httpx2`` errors; adapters map them to platform
errors.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx2

from menusync.core.clock import Clock

BODY_CAP = 16 * 1024
"""Bytes of a request or response body kept in an integration log."""

_REDACT_KEYS = re.compile(
    r"(password|secret|token|authorization|api[-_]?key|client[-_]?id|credential)", re.IGNORECASE
)
REDACTED = "********"


@dataclass
class CallRecord:
    operation: str
    method: str
    url: str
    status_code: int | None
    duration_ms: int
    request_body: str | None
    response_body: str | None
    error: str | None
    started_at: datetime


class CallRecorder(Protocol):
    def record(self, call: CallRecord) -> None: ...


@dataclass
class CallLog:
    """A recorder that keeps calls in memory until someone drains them."""

    calls: list[CallRecord] = field(default_factory=list)

    def record(self, call: CallRecord) -> None:
        self.calls.append(call)

    def drain(self) -> list[CallRecord]:
        calls, self.calls = self.calls, []
        return calls


class NullRecorder:
    def record(self, call: CallRecord) -> None:  # noqa: ARG002 - discards by design
        return None


def redact(value: Any) -> Any:
    """Mask every value whose key looks like a secret, recursively."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _REDACT_KEYS.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _capped_text(raw: bytes | str | None) -> str | None:
    if raw is None or raw == b"" or raw == "":
        return None
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        text = json.dumps(redact(json.loads(text)), ensure_ascii=False)
    except ValueError:
        # Form bodies: mask secret-looking fields.
        text = re.sub(r"((?:client_secret|password|secret)=)[^&\s]*", rf"\1{REDACTED}", text)
    if len(text) > BODY_CAP:
        return text[:BODY_CAP] + f"... [{len(text) - BODY_CAP} more characters]"
    return text


def _redacted_url(url: httpx2.URL) -> str:
    params = [(k, REDACTED if _REDACT_KEYS.search(k) else v) for k, v in url.params.multi_items()]
    return str(url.copy_with(params=params)) if params else str(url)


class PlatformHttp:
    """Sends platform requests through a shared client and records each one."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        recorder: CallRecorder,
        clock: Clock,
        *,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self._recorder = recorder
        self._clock = clock
        self._timeout = timeout

    def with_recorder(
        self, recorder: CallRecorder, *, timeout: float | None = None
    ) -> PlatformHttp:
        return PlatformHttp(self._client, recorder, self._clock, timeout=timeout or self._timeout)

    async def request(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[None, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        """Send one request; record it whatever happens (answer, timeout, connection error)."""
        started_at = self._clock.now()
        started = time.perf_counter()
        request = self._client.build_request(
            method,
            url,
            json=json_body,
            data=data,
            files=files,
            headers=headers,
            params=params,
            timeout=timeout
            if timeout is not None
            else (self._timeout or httpx2.USE_CLIENT_DEFAULT),
        )
        request_body = (
            None
            if files
            else _capped_text(
                request.content if data is None else "&".join(f"{k}={v}" for k, v in data.items())
            )
        )
        try:
            response = await self._client.send(request)
        except httpx2.HTTPError as exc:
            self._recorder.record(
                CallRecord(
                    operation=operation,
                    method=method,
                    url=_redacted_url(request.url),
                    status_code=None,
                    duration_ms=int((time.perf_counter() - started) * 1000),
                    request_body=request_body,
                    response_body=None,
                    error=f"{type(exc).__name__}: {exc}",
                    started_at=started_at,
                )
            )
            raise
        self._recorder.record(
            CallRecord(
                operation=operation,
                method=method,
                url=_redacted_url(request.url),
                status_code=response.status_code,
                duration_ms=int((time.perf_counter() - started) * 1000),
                request_body=request_body,
                response_body=_capped_text(response.content),
                error=None,
                started_at=started_at,
            )
        )
        return response
