"""The Socket.IO namespace ``/sync-progress`` (CONTRACT.md section 3) and its wiring.

A socket authenticates on connect with the REST API's JWT in ``auth.token`` and joins its
company's room, ``company:<id>``. ``subscribe-sync`` / ``subscribe-multi-sync`` check ownership
(``subscriptions.py``), join ``sync:<id>`` / ``batch:<id>`` and replay what the client missed.

Delivery: the relay hands each outbox event to ``ProgressHub.deliver``, which emits it once to the
union of the company's room and the event's sync and batch rooms (python-socketio merges a list of
rooms into one set of sockets, so a socket in several of them gets the event once). Every socket
is in its company's room, so every socket of the company receives every event of the company;
subscriptions decide what is replayed, not what is delivered.

Replay without gap or duplicate: when a socket joins, it is told the relay's position (``feed``).
The relay emits to it live exactly the events above that position (and the gaps still open below
it), so a replay sends the requested sync's or batch's events up to that position and no further.
Live events start at connect, so events that arrive before a replay's are newer ones: clients
order by ``eventId``. A batch and one of its syncs share events; each is replayed once per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import socketio
import structlog
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp

from menusync.config import Settings
from menusync.core.errors import MenusyncError, PermissionDenied, Unauthenticated
from menusync.core.resources import Resources
from menusync.realtime.errors import BatchNotFound, SyncNotFound
from menusync.realtime.feed import OutboxEvent, Position
from menusync.realtime.relay import EventRelay
from menusync.realtime.repository import EventRepository, read_connection
from menusync.realtime.schemas import (
    ConnectionStats,
    SubscribeBatch,
    SubscribeSync,
    UnsubscribeBatch,
    UnsubscribeSync,
)
from menusync.realtime.subscriptions import OutboxSubscriptions, SubscriptionChecker
from menusync.tenancy.context import AuthContext
from menusync.tenancy.roles import WRITE_ROLES

log = structlog.get_logger(__name__)

NAMESPACE = "/sync-progress"
SOCKETIO_PATH = "socket.io"
MAX_REPLAY = 2_000
"""Events replayed for one subscription at most (a sync writes a few dozen)."""

Ack = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


def company_room(company_id: str) -> str:
    return f"company:{company_id}"


def sync_room(sync_id: uuid.UUID) -> str:
    return f"sync:{sync_id}"


def batch_room(batch_id: uuid.UUID) -> str:
    return f"batch:{batch_id}"


def envelope(event_type: str, data: dict[str, Any], event_id: int | None = None) -> dict[str, Any]:
    """A server-to-client payload that is not an outbox row (``connected``, ``error``)."""
    return {
        "type": event_type,
        "eventId": event_id,
        "data": data,
        "timestamp": datetime.now(UTC).isoformat(),
    }


def _failure(error: MenusyncError) -> Ack:
    body: dict[str, Any] = {"code": error.error_code, "message": error.message}
    if error.details:
        body["details"] = error.details
    return {"ok": False, "error": body}


def bearer_token(auth: object) -> str:
    """The JWT from the handshake's ``auth.token``, with or without the ``Bearer `` prefix."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise Unauthenticated("Missing token: connect with auth {token: '<JWT>'}")
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


@dataclass(eq=False)
class Connection:
    """One authenticated socket of this process."""

    sid: str
    auth: AuthContext
    joined_at: Position
    """The relay's position when the socket joined its company's room."""
    syncs: set[uuid.UUID] = field(default_factory=set)
    batches: set[uuid.UUID] = field(default_factory=set)
    replayed: set[int] = field(default_factory=set)
    """Ids already replayed to this socket (a batch and one of its syncs share events)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    expiry: asyncio.TimerHandle | None = None


class ProgressHub:
    """The handlers of ``/sync-progress`` and the delivery of relayed events to sockets."""

    def __init__(self, server: Any, *, max_replay: int = MAX_REPLAY) -> None:
        self._server = server
        self.max_replay = max_replay
        self._resources: Resources | None = None
        self._relay: EventRelay | None = None
        self._subscriptions: SubscriptionChecker | None = None
        self._connections: dict[str, Connection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "connect": self.on_connect,
            "disconnect": self.on_disconnect,
            "subscribe-sync": self.on_subscribe_sync,
            "unsubscribe-sync": self.on_unsubscribe_sync,
            "subscribe-multi-sync": self.on_subscribe_batch,
            "unsubscribe-multi-sync": self.on_unsubscribe_batch,
            "get-connection-stats": self.on_connection_stats,
        }
        for name, handler in handlers.items():
            server.on(name, handler, namespace=NAMESPACE)

    def bind(
        self, resources: Resources, relay: EventRelay, subscriptions: SubscriptionChecker
    ) -> None:
        self._resources = resources
        self._relay = relay
        self._subscriptions = subscriptions

    def unbind(self) -> None:
        self._resources = None
        self._relay = None
        for connection in self._connections.values():
            if connection.expiry is not None:
                connection.expiry.cancel()
        for task in self._tasks:
            task.cancel()

    @property
    def connections(self) -> int:
        return len(self._connections)

    # ---- delivery (called by the relay) -------------------------------------------------------

    async def deliver(self, event: OutboxEvent) -> None:
        """Emit one outbox event once to every socket of its company (and its rooms)."""
        rooms = [company_room(event.company_id)]
        if event.sync_id is not None:
            rooms.append(sync_room(event.sync_id))
        if event.batch_id is not None:
            rooms.append(batch_room(event.batch_id))
        await self._server.emit(event.type, event.payload(), room=rooms, namespace=NAMESPACE)

    # ---- handlers ----------------------------------------------------------------------------

    async def on_connect(self, sid: str, _environ: dict[str, Any], auth: object = None) -> None:
        # No await before joining the room and taking the relay's position: the two must happen
        # between two emits of the relay, or the replay could miss or repeat an event.
        resources, relay = self._resources, self._relay
        if resources is None or relay is None:
            raise socketio.exceptions.ConnectionRefusedError("The server is starting; retry")
        try:
            claims = resources.verifier.decode(bearer_token(auth))
            context = AuthContext.from_claims(claims)
        except Unauthenticated as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.error_code}
            ) from exc
        await self._server.enter_room(sid, company_room(context.company_id), namespace=NAMESPACE)
        connection = Connection(sid=sid, auth=context, joined_at=relay.position())
        self._connections[sid] = connection
        expires = claims.get("exp")
        if isinstance(expires, int | float):
            delay = max(0.0, float(expires) - time.time())
            connection.expiry = asyncio.get_running_loop().call_later(
                delay, self._spawn, self._expire, sid
            )
        self._spawn(self._greet, sid, context)

    async def on_disconnect(self, sid: str, _reason: object = None) -> None:
        connection = self._connections.pop(sid, None)
        if connection is None:
            return
        if connection.expiry is not None:
            connection.expiry.cancel()

    async def on_subscribe_sync(self, sid: str, data: object = None) -> Ack:
        return await self._handle(sid, SubscribeSync, data, self._subscribe_sync)

    async def on_unsubscribe_sync(self, sid: str, data: object = None) -> Ack:
        return await self._handle(sid, UnsubscribeSync, data, self._unsubscribe_sync)

    async def on_subscribe_batch(self, sid: str, data: object = None) -> Ack:
        return await self._handle(sid, SubscribeBatch, data, self._subscribe_batch)

    async def on_unsubscribe_batch(self, sid: str, data: object = None) -> Ack:
        return await self._handle(sid, UnsubscribeBatch, data, self._unsubscribe_batch)

    async def on_connection_stats(self, sid: str, _data: object = None) -> Ack:
        connection = self._connections.get(sid)
        if connection is None:
            return _failure(Unauthenticated("Not connected"))
        try:
            connection.auth.require(WRITE_ROLES)
        except PermissionDenied as exc:
            return _failure(exc)
        company = connection.auth.company_id
        peers = [c for c in self._connections.values() if c.auth.company_id == company]
        rooms = {company_room(company)}
        for peer in peers:
            rooms.update(sync_room(s) for s in peer.syncs)
            rooms.update(batch_room(b) for b in peer.batches)
        stats = ConnectionStats(connected_clients=len(peers), companies=1, rooms=len(rooms))
        return {"ok": True, **stats.model_dump(by_alias=True)}

    # ---- subscriptions -----------------------------------------------------------------------

    async def _handle(
        self,
        sid: str,
        schema: type[M],
        data: object,
        action: Callable[[Connection, M], Awaitable[Ack]],
    ) -> Ack:
        connection = self._connections.get(sid)
        if connection is None:
            return _failure(Unauthenticated("Not connected"))
        try:
            request = schema.model_validate(data if data is not None else {})
        except ValidationError as exc:
            issues = exc.errors(include_url=False, include_context=False, include_input=False)
            return _failure(
                MenusyncError(
                    "Invalid request", code="validation_failed", details={"issues": issues}
                )
            )
        try:
            async with connection.lock:
                return await action(connection, request)
        except MenusyncError as exc:
            return _failure(exc)
        except Exception:
            log.exception("realtime.handler_failed", sid=sid, schema=schema.__name__)
            return _failure(MenusyncError("Internal error"))

    def _checker(self) -> SubscriptionChecker:
        if self._subscriptions is None:
            raise MenusyncError("The server is stopping", code="unavailable")
        return self._subscriptions

    async def _subscribe_sync(self, connection: Connection, request: SubscribeSync) -> Ack:
        company = connection.auth.company_id
        status = await self._checker().sync_status(company, request.sync_id)
        if status is None:
            raise SyncNotFound(f"Sync {request.sync_id} not found")
        await self._server.enter_room(
            connection.sid, sync_room(request.sync_id), namespace=NAMESPACE
        )
        connection.syncs.add(request.sync_id)
        replayed = 0
        if request.since_event_id is not None:
            replayed = await self._replay(
                connection, request.since_event_id, sync_id=request.sync_id
            )
        return {"ok": True, "status": status, "syncId": str(request.sync_id), "replayed": replayed}

    async def _unsubscribe_sync(self, connection: Connection, request: UnsubscribeSync) -> Ack:
        connection.syncs.discard(request.sync_id)
        await self._server.leave_room(
            connection.sid, sync_room(request.sync_id), namespace=NAMESPACE
        )
        return {"ok": True}

    async def _subscribe_batch(self, connection: Connection, request: SubscribeBatch) -> Ack:
        company = connection.auth.company_id
        status = await self._checker().batch_status(company, request.multi_sync_id)
        if status is None:
            raise BatchNotFound(f"Batch {request.multi_sync_id} not found")
        await self._server.enter_room(
            connection.sid, batch_room(request.multi_sync_id), namespace=NAMESPACE
        )
        connection.batches.add(request.multi_sync_id)
        replayed = 0
        if request.since_event_id is not None:
            replayed = await self._replay(
                connection, request.since_event_id, batch_id=request.multi_sync_id
            )
        return {
            "ok": True,
            "status": status,
            "multiSyncId": str(request.multi_sync_id),
            "replayed": replayed,
        }

    async def _unsubscribe_batch(self, connection: Connection, request: UnsubscribeBatch) -> Ack:
        connection.batches.discard(request.multi_sync_id)
        await self._server.leave_room(
            connection.sid, batch_room(request.multi_sync_id), namespace=NAMESPACE
        )
        return {"ok": True}

    async def _replay(
        self,
        connection: Connection,
        after: int,
        *,
        sync_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
    ) -> int:
        """Send the events after ``after`` that the socket will not receive live: those the
        relay had emitted before the socket joined."""
        resources = self._resources
        if resources is None:
            raise MenusyncError("The server is stopping", code="unavailable")
        joined = connection.joined_at
        async with read_connection(resources.engine) as conn:
            events = await EventRepository(conn).list_for_replay(
                connection.auth.company_id,
                sync_id=sync_id,
                batch_id=batch_id,
                after=after,
                up_to=joined.cursor,
                limit=self.max_replay,
            )
        sent = 0
        for event in events:
            if not joined.was_emitted(event.id) or event.id in connection.replayed:
                continue
            connection.replayed.add(event.id)
            await self._send(connection.sid, event)
            sent += 1
        return sent

    async def _send(self, sid: str, event: OutboxEvent) -> None:
        await self._server.emit(event.type, event.payload(), to=sid, namespace=NAMESPACE)

    # ---- background ----------------------------------------------------------------------------

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        task = asyncio.get_running_loop().create_task(function(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _greet(self, sid: str, context: AuthContext) -> None:
        # Sent from a task so that it follows the CONNECT packet the server sends after the
        # connect handler returns.
        await self._server.emit(
            "connected",
            envelope("connected", {"userId": context.user_id, "companyId": context.company_id}),
            to=sid,
            namespace=NAMESPACE,
        )

    async def _expire(self, sid: str) -> None:
        if sid not in self._connections:
            return
        await self._server.emit(
            "error", envelope("error", {"message": "Token expired"}), to=sid, namespace=NAMESPACE
        )
        await self._server.disconnect(sid, namespace=NAMESPACE)


class Realtime:
    """Socket.IO for one API process: the server, its hub and the event relay feeding it."""

    def __init__(
        self,
        settings: Settings,
        *,
        subscriptions: SubscriptionChecker | None = None,
        poll_interval: float = 1.0,
        gap_timeout: float = 60.0,
    ) -> None:
        origins = settings.api.cors_origins or None
        self.server: Any = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=origins,
            logger=False,
            engineio_logger=False,
        )
        self.hub = ProgressHub(self.server)
        self.relay: EventRelay | None = None
        self._subscriptions = subscriptions
        self.poll_interval = poll_interval
        self.gap_timeout = gap_timeout

    def asgi_app(self, other_asgi_app: ASGIApp) -> ASGIApp:
        """The ASGI app serving Socket.IO under ``/socket.io`` and everything else from
        ``other_asgi_app`` (lifespan events included)."""
        app: ASGIApp = socketio.ASGIApp(self.server, other_asgi_app, socketio_path=SOCKETIO_PATH)
        return app

    async def start(self, resources: Resources) -> None:
        """Start the relay and accept connections (call from the app lifespan, after the
        resources are built)."""
        relay = EventRelay(
            resources.engine,
            resources.signals.events,
            self.hub.deliver,
            poll_interval=self.poll_interval,
            gap_timeout=self.gap_timeout,
        )
        await relay.start()
        self.relay = relay
        self.hub.bind(
            resources, relay, self._subscriptions or OutboxSubscriptions(resources.engine)
        )

    async def stop(self) -> None:
        """Stop the relay and disconnect every socket (call from the app lifespan)."""
        self.hub.unbind()
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
        with contextlib.suppress(Exception):
            await self.server.shutdown()


def create_realtime(
    settings: Settings,
    *,
    subscriptions: SubscriptionChecker | None = None,
    poll_interval: float = 1.0,
    gap_timeout: float = 60.0,
) -> Realtime:
    """Build this process's Socket.IO server; ``start(resources)`` it in the app lifespan and
    serve ``asgi_app(fastapi_app)``."""
    return Realtime(
        settings,
        subscriptions=subscriptions,
        poll_interval=poll_interval,
        gap_timeout=gap_timeout,
    )
