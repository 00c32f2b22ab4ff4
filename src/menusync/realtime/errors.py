"""Errors answered to Socket.IO clients (in an ack ``{ok: false, error: {code, message}}``)."""

from __future__ import annotations

from menusync.core.errors import NotFound


class SyncNotFound(NotFound):
    code = "sync_not_found"


class BatchNotFound(NotFound):
    code = "batch_not_found"
