"""What clients send on the ``/sync-progress`` namespace (CONTRACT.md section 3)."""

from __future__ import annotations

import uuid

from pydantic import Field

from menusync.core.schemas import ApiModel


class SubscribeSync(ApiModel):
    sync_id: uuid.UUID
    since_event_id: int | None = Field(default=None, ge=0)
    """Replay this sync's events after this id (the last one the client saw)."""


class UnsubscribeSync(ApiModel):
    sync_id: uuid.UUID


class SubscribeBatch(ApiModel):
    multi_sync_id: uuid.UUID
    """The batch id."""
    since_event_id: int | None = Field(default=None, ge=0)


class UnsubscribeBatch(ApiModel):
    multi_sync_id: uuid.UUID


class ConnectionStats(ApiModel):
    """This process's sockets of the caller's company."""

    connected_clients: int
    companies: int
    rooms: int
