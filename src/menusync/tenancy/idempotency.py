"""``Idempotency-Key`` on mutating POSTs: the same key and request within 24 h returns the first
answer and creates nothing new (CONTRACT.md section 2).

A key belongs to one caller (company + user) and covers every POST under ``/api/v1`` except the
platforms' webhooks. Its record holds a fingerprint of the request (method, path and query, body
with JSON canonicalised) and, once there is one, the answer (status and body):

====================================================  ==========================================
same key, same request, answer stored                 that answer, ``Idempotent-Replayed: true``
same key, another request (body, method or path)      409 ``idempotency_key_reused``
same key while the first is still being processed     409 ``idempotency_key_in_progress``
record older than the TTL (24 h)                      ignored: the new request takes the key over
key empty or longer than 255 characters               422 ``validation_failed``
====================================================  ==========================================

Stored: 2xx and 4xx answers, except 401, 403, 408 and 429, which depend on the token or the
moment rather than on the request. Never stored: 5xx, so a retry can succeed. A request that
arrives while the first is still running gets 409 at once (no waiting inside a transaction,
which on SQLite would hold the write lock the first request needs to finish); the client retries.

Two halves, because no single place sees both the request's transaction and its answer:

1. :func:`reserve_idempotency_key`, a dependency of every ``/api/v1`` route that acts only on
   POSTs carrying the header, reserves the key **in the request's own unit of work**
   (:data:`~menusync.core.dependencies.SessionDep`) with one statement::

       INSERT INTO idempotency_keys (...) VALUES (..., status_code NULL)   -- reserved
       ON CONFLICT (company_id, user_id, key) DO UPDATE SET ...             -- take over ...
           WHERE idempotency_keys.created_at <= :now - :ttl                 -- ... expired keys only
       RETURNING id

   The reservation commits or rolls back *with the request's writes*: no crash can leave a
   created job without its key, nor a key without its job. When a live record exists (nothing
   returned), one ``SELECT`` decides between replay and 409. A concurrent request with the same
   key waits on the unique index (PostgreSQL) or on ``BEGIN IMMEDIATE`` (SQLite) until the first
   request commits, then finds its reservation: 409 ``idempotency_key_in_progress``.
2. :class:`IdempotencyMiddleware` (ASGI) sees the answer. It holds the response, writes status
   and body into the record in a short transaction of its own, then sends it: a client that has
   an answer always gets that answer replayed. When the endpoint raised (a 4xx rendered by the
   error handler) the request's transaction rolled back with the reservation, and the same
   statement inserts the record instead (unless another request took the key meanwhile).

The trade-off: the *answer* is written just after the request's commit, not inside it (FastAPI
commits the request's unit of work before any outer layer sees the response, and the
dependency's exit code never sees it). "Job and key" is atomic; "key and answer" is not: a crash
in the instant between the two commits leaves a key without an answer, which is then answered
409 ``idempotency_key_in_progress`` until it expires; the request is never run twice. The usual
alternative, a middleware with its own transactions around the request, is worse either way
round: reserving before the request can leave a key whose request never committed (the client
is locked out of its own key for 24 h), reserving after it can leave a job without its key (a
retry creates a second job).

Costs: nothing for requests without the header. With it: one statement in the request's
transaction (two on a replay or a conflict), one short transaction after it, and the response is
held in memory until recorded. Expired records are skipped on use and deleted by
:func:`prune_idempotency_keys`, which the worker's maintenance tick calls.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy import CursorResult, Table, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from menusync.core.dependencies import ResourcesDep, SessionDep
from menusync.core.errors import Conflict, ValidationFailed
from menusync.core.models import new_id
from menusync.core.resources import Resources
from menusync.tenancy.context import caller_from_authorization
from menusync.tenancy.models import IdempotencyRecord

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
DEFAULT_TTL = timedelta(hours=24)
WEBHOOK_PREFIX = "/api/v1/platform-sync/webhook/"

_NOT_STORED = frozenset({401, 403, 408, 429})
"""4xx answers that say something about the token or the moment, not about the request."""
_STATE_KEY = "idempotency"
_TABLE: Table = IdempotencyRecord.metadata.tables[IdempotencyRecord.__tablename__]
_HEADER_BYTES = IDEMPOTENCY_HEADER.lower().encode()


@dataclass(frozen=True)
class IdempotencyPolicy:
    """Which requests take a key, and how long a record lives."""

    ttl: timedelta = DEFAULT_TTL
    prefix: str = "/api/v1/"
    exempt_prefixes: tuple[str, ...] = (WEBHOOK_PREFIX,)

    def applies_to(self, method: str, path: str) -> bool:
        """POSTs under ``prefix`` except the exempt ones (``path`` may be a route template)."""
        return (
            method == "POST"
            and path.startswith(self.prefix)
            and not path.startswith(self.exempt_prefixes)
        )


@dataclass(frozen=True)
class _Reservation:
    id: uuid.UUID
    company_id: str
    user_id: str
    key: str
    method: str
    path: str
    request_hash: str
    created_at: datetime

    def values(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "company_id": self.company_id,
            "user_id": self.user_id,
            "key": self.key,
            "method": self.method,
            "path": self.path,
            "request_hash": self.request_hash,
            "created_at": self.created_at,
        }


@dataclass
class _Slot:
    """Set in the request's scope state by the middleware; filled by the dependency."""

    policy: IdempotencyPolicy
    key: str
    reservation: _Reservation | None = field(default=None)


class IdempotentReplay(Exception):
    """Raised by the dependency to answer with a stored response (rendered by its handler)."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"replay of a {status_code} answer")
        self.status_code = status_code
        self.body = body


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: JSON bodies compare by content (key order and spacing ignored)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _upsert(dialect: str) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(_TABLE)
    if dialect == "sqlite":
        return sqlite.insert(_TABLE)
    raise NotImplementedError(f"idempotency keys support PostgreSQL and SQLite, not {dialect}")


def _take_over(
    dialect: str, values: dict[str, Any], *, ours: uuid.UUID | None, cutoff: datetime
) -> Executable:
    """``INSERT`` the record, or overwrite the stored one when it expired (or is ``ours``)."""
    stmt = _upsert(dialect).values(**values)
    condition = _TABLE.c.created_at <= cutoff
    if ours is not None:
        condition = or_(_TABLE.c.id == ours, condition)
    return stmt.on_conflict_do_update(
        index_elements=[_TABLE.c.company_id, _TABLE.c.user_id, _TABLE.c.key],
        set_={
            name: stmt.excluded[name]
            for name in values
            if name not in ("company_id", "user_id", "key")
        },
        where=condition,
    ).returning(_TABLE.c.id)


async def reserve_idempotency_key(
    request: Request, session: SessionDep, resources: ResourcesDep
) -> None:
    """Reserve the request's ``Idempotency-Key`` in its unit of work, or answer from the record.

    Does nothing unless :class:`IdempotencyMiddleware` marked the request (a POST it covers,
    carrying the header) and the caller authenticates (otherwise the endpoint answers 401).
    Raises 422 for a bad key, 409 for a reused or busy key, and :class:`IdempotentReplay` to
    answer with the stored response.
    """
    slot = getattr(request.state, _STATE_KEY, None)
    if not isinstance(slot, _Slot):
        return
    caller = caller_from_authorization(request.headers.get("authorization"), resources.verifier)
    if caller is None:
        return
    if not slot.key or len(slot.key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} characters",
            issues=[
                {
                    "path": f"header.{IDEMPOTENCY_HEADER}",
                    "message": f"must be 1 to {MAX_KEY_LENGTH} characters",
                    "code": "string_too_long" if slot.key else "string_too_short",
                }
            ],
        )
    query = request.url.query
    path = request.url.path
    fingerprint = request_fingerprint(
        request.method, f"{path}?{query}" if query else path, await request.body()
    )
    now = resources.clock.now()
    reservation = _Reservation(
        id=new_id(),
        company_id=caller.company_id,
        user_id=caller.user_id,
        key=slot.key,
        method=request.method,
        path=path,
        request_hash=fingerprint,
        created_at=now,
    )
    dialect = session.get_bind().dialect.name
    values = {**reservation.values(), "status_code": None, "response_body": None}
    stmt = _take_over(dialect, values, ours=None, cutoff=now - slot.policy.ttl)
    if (await session.execute(stmt)).scalar_one_or_none() is not None:
        slot.reservation = reservation
        return
    stored = (
        await session.execute(
            select(_TABLE.c.request_hash, _TABLE.c.status_code, _TABLE.c.response_body).where(
                _TABLE.c.company_id == caller.company_id,
                _TABLE.c.user_id == caller.user_id,
                _TABLE.c.key == slot.key,
            )
        )
    ).one_or_none()
    if stored is not None and stored.request_hash != fingerprint:
        raise Conflict(
            f"This {IDEMPOTENCY_HEADER} was used for a different request",
            code="idempotency_key_reused",
        )
    if stored is None or stored.status_code is None:
        raise Conflict(
            f"A request with this {IDEMPOTENCY_HEADER} is still being processed; retry shortly",
            code="idempotency_key_in_progress",
        )
    raise IdempotentReplay(int(stored.status_code), stored.response_body or "")


IDEMPOTENCY_DEPENDENCY = Depends(reserve_idempotency_key)
"""For the ``/api/v1`` router's ``dependencies=[...]`` (``api.py``)."""


def is_stored(status_code: int) -> bool:
    """Whether an answer with this status is kept for replay."""
    return 200 <= status_code < 500 and status_code not in _NOT_STORED


async def record_answer(
    resources: Resources,
    reservation: _Reservation,
    status_code: int,
    body: bytes,
    ttl: timedelta,
) -> None:
    """Write the answer into the reservation (one statement, its own transaction).

    When the request rolled back, its reservation went with it: the record is inserted instead,
    unless a live record of another request holds the key by now.
    """
    values = {
        **reservation.values(),
        "status_code": status_code,
        "response_body": body.decode("utf-8", errors="replace"),
    }
    async with resources.unit_of_work() as session:
        stmt = _take_over(
            session.get_bind().dialect.name,
            values,
            ours=reservation.id,
            cutoff=resources.clock.now() - ttl,
        )
        await session.execute(stmt)


class IdempotencyMiddleware:
    """Marks covered requests that carry a key, and records the answer of reserved ones."""

    def __init__(self, app: ASGIApp, policy: IdempotencyPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.policy.applies_to(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        key = next(
            (value.decode("latin-1") for name, value in scope["headers"] if name == _HEADER_BYTES),
            None,
        )
        if key is None:
            await self.app(scope, receive, send)
            return
        slot = _Slot(self.policy, key)
        scope.setdefault("state", {})[_STATE_KEY] = slot
        held: list[Message] = []
        status_code = 0

        async def hold(message: Message) -> None:
            nonlocal status_code
            reservation = slot.reservation
            if reservation is None:  # not reserved (no caller, bad key, replay, 409): as is
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
                return
            if message["type"] != "http.response.body" or message.get("more_body", False):
                return
            if is_stored(status_code):
                body = b"".join(
                    m.get("body", b"") for m in held if m["type"] == "http.response.body"
                )
                try:
                    await record_answer(
                        scope["app"].state.resources,
                        reservation,
                        status_code,
                        body,
                        self.policy.ttl,
                    )
                except Exception:
                    # The answer still goes out; a retry then finds the key reserved (409).
                    log.exception("idempotency_record_failed", key=slot.key)
            for pending in held:
                await send(pending)

        await self.app(scope, receive, hold)


async def _replay(_request: Request, exc: Exception) -> Response:
    replay = cast(IdempotentReplay, exc)
    return Response(
        content=replay.body,
        status_code=replay.status_code,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )


def _document(schema: dict[str, Any], policy: IdempotencyPolicy) -> None:
    """Add the header and the 409 answer to every covered operation of the OpenAPI document."""
    for path, item in schema.get("paths", {}).items():
        operation = item.get("post")
        if not isinstance(operation, dict) or not policy.applies_to("POST", path):
            continue
        operation.setdefault("parameters", []).append(
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": (
                    "Makes the request safe to retry: the same key and request within "
                    f"{int(policy.ttl.total_seconds() // 3600)} h returns the first answer "
                    f"(with `{REPLAYED_HEADER}: true`) and creates nothing new."
                ),
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
            }
        )
        operation.setdefault("responses", {}).setdefault(
            "409",
            {
                "description": (
                    "Conflicts with the current state, or the `Idempotency-Key` was used for "
                    "another request (`idempotency_key_reused`) or is still being processed "
                    "(`idempotency_key_in_progress`)"
                ),
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                },
            },
        )


def install_idempotency(app: FastAPI, policy: IdempotencyPolicy | None = None) -> None:
    """Add the middleware, the replay handler and the OpenAPI description to ``app``.

    The routers also need :data:`IDEMPOTENCY_DEPENDENCY` (``api.py``); call this before the
    body-size and request-id middleware are added, so they wrap it.
    """
    policy = policy or IdempotencyPolicy()
    app.add_middleware(IdempotencyMiddleware, policy=policy)
    app.add_exception_handler(IdempotentReplay, _replay)
    build_openapi: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_openapi()
            _document(schema, policy)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def prune_idempotency_keys(
    session: AsyncSession, now: datetime, *, ttl: timedelta = DEFAULT_TTL
) -> int:
    """Delete records older than ``ttl`` (they are already ignored); returns how many."""
    result = await session.execute(delete(_TABLE).where(_TABLE.c.created_at <= now - ttl))
    return int(cast(CursorResult[Any], result).rowcount)
