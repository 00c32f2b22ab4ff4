"""Platform webhooks: verify, deduplicate, record, and apply to the job they are about.

The adapter parses and verifies (each platform signs its own way); this module finds the job
(``platform`` + ``external_ref``), records the event in ``webhook_events`` (unique per platform
and event id, so a redelivery is acknowledged and changes nothing) and moves the job.

A webhook can overtake the worker that made the push: the platform may answer before the worker
has committed ``awaiting_confirmation`` with the job's ``external_ref``. Such an event is kept as
``unmatched``; when the worker commits the push it looks for unmatched events of its reference,
verifies them with its connection's secret and applies them. A forged event is never stored under
the event id it claims, so it cannot block the real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.platforms.base import PlatformAdapter, PushResult, WebhookMessage, WebhookReply
from menusync.platforms.connections import PlatformGateway
from menusync.platforms.errors import PlatformContractError
from menusync.platforms.repository import ConnectionRepository
from menusync.sync import transitions
from menusync.sync.models import SyncJob, WebhookEvent
from menusync.sync.repository import SyncRepository
from menusync.sync.tracking import Tracker

log = structlog.get_logger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024
_MASKED_HEADERS = frozenset({"authorization", "x-careem-api-key"})


async def apply_result(
    session: AsyncSession,
    tracker: Tracker,
    job: SyncJob,
    result: PushResult,
    now: datetime,
    *,
    source: str,
) -> bool:
    """Apply a push result to a job awaiting it. Returns whether the job changed."""
    if job.status != "awaiting_confirmation" or result.state == "pending":
        return False
    if result.state == "completed":
        warnings = [issue.as_dict() for issue in result.issues]
        await transitions.complete(
            session,
            tracker,
            job,
            now,
            message=result.message or f"{job.platform} published the menu (confirmed by {source})",
            pushed_payload=(job.request or {}).get("pushedPayload"),
        )
        if warnings:
            job.error_details = {"warnings": warnings}
        return True
    issues = [issue.as_dict() for issue in result.issues]
    await transitions.fail(
        session,
        tracker,
        job,
        now,
        code="platform_rejected",
        message=result.message or f"{job.platform} rejected the menu",
        details={"issues": issues, **dict(result.details), "confirmedBy": source},
    )
    return True


class WebhookOutcome:
    def __init__(
        self, status_code: int, body: dict[str, Any] | None, *, unmatched_ref: str | None = None
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.unmatched_ref = unmatched_ref
        """Set when the event was kept for a job not yet waiting for it: after committing, the
        caller runs ``reconcile_webhooks`` for this reference."""


class WebhookIntake:
    def __init__(self, session: AsyncSession, gateway: PlatformGateway, tracker: Tracker) -> None:
        self.session = session
        self.gateway = gateway
        self.tracker = tracker

    async def receive(
        self, platform: str, headers: Mapping[str, str], body: bytes
    ) -> WebhookOutcome:
        adapter_cls = self.gateway.registry.get(platform)
        now = self.tracker.clock.now()
        try:
            message = adapter_cls.parse_webhook(headers, body)
        except PlatformContractError as exc:
            return WebhookOutcome(400, {"error": exc.message})
        text = body.decode("utf-8", errors="replace")
        stored_headers = {k.lower(): v for k, v in headers.items()}
        existing = (
            await self.session.execute(
                select(WebhookEvent).where(
                    WebhookEvent.platform == platform, WebhookEvent.event_id == message.event_id
                )
            )
        ).scalar_one_or_none()
        if existing is not None and existing.outcome != "unmatched":
            return _reply(adapter_cls.webhook_reply(message, accepted=True))
        job = None
        if message.external_ref:
            job = await SyncRepository(self.session).find_awaiting_by_external_ref(
                platform, message.external_ref
            )
        if job is None:
            if existing is None:
                self.session.add(
                    WebhookEvent(
                        platform=platform,
                        event_id=message.event_id,
                        event_type=message.event_type,
                        external_ref=message.external_ref,
                        signature_valid=False,
                        headers=stored_headers,
                        body=text,
                        outcome="unmatched",
                        received_at=now,
                    )
                )
            reply = adapter_cls.webhook_reply(message, accepted=True)
            return WebhookOutcome(reply.status_code, reply.body, unmatched_ref=message.external_ref)
        adapter = await self._adapter_for(job)
        if adapter is None or not adapter.verify_webhook(headers, body):
            self.session.add(
                WebhookEvent(
                    platform=platform,
                    # Never under the claimed id: a forgery must not block the real event.
                    event_id=f"rejected:{uuid.uuid4()}",
                    event_type=message.event_type,
                    external_ref=message.external_ref,
                    company_id=job.company_id,
                    signature_valid=False,
                    headers=stored_headers,
                    body=text,
                    outcome="rejected",
                    error=f"signature did not verify (claimed event id {message.event_id})",
                    received_at=now,
                    processed_at=now,
                )
            )
            return WebhookOutcome(401, {"error": "invalid signature"})
        event = existing or WebhookEvent(
            platform=platform, event_id=message.event_id, received_at=now
        )
        event.event_type = message.event_type
        event.external_ref = message.external_ref
        event.company_id = job.company_id
        event.signature_valid = True
        event.headers = stored_headers
        event.body = text
        event.sync_id = job.id
        event.outcome = "received"
        if existing is None:
            try:
                async with self.session.begin_nested():
                    self.session.add(event)
            except IntegrityError:
                # The same event arrived twice at the same moment; the other delivery applies it.
                return _reply(adapter_cls.webhook_reply(message, accepted=True))
        changed = message.result is not None and await apply_result(
            self.session, self.tracker, job, message.result, now, source="webhook"
        )
        event.outcome = "applied" if changed else "ignored"
        event.processed_at = now
        return _reply(adapter_cls.webhook_reply(message, accepted=True))

    async def _adapter_for(self, job: SyncJob) -> PlatformAdapter | None:
        connection = await ConnectionRepository(self.session).get_by_platform(
            job.company_id, job.platform
        )
        return None if connection is None else self.gateway.adapter_for(connection)


async def reconcile_webhooks(
    session: AsyncSession,
    tracker: Tracker,
    gateway: PlatformGateway,
    platform: str,
    external_ref: str,
) -> None:
    """Apply unmatched webhooks of ``external_ref`` if its job is now waiting for them.

    Both sides call this after committing their own write (the worker: ``awaiting_confirmation``;
    the intake: the unmatched event), so whichever commits second sees the other's row."""
    job = await SyncRepository(session).find_awaiting_by_external_ref(platform, external_ref)
    if job is not None and job.status == "awaiting_confirmation":
        await apply_pending_webhooks(session, tracker, gateway, job, tracker.clock.now())


async def apply_pending_webhooks(
    session: AsyncSession, tracker: Tracker, gateway: PlatformGateway, job: SyncJob, now: datetime
) -> None:
    """Apply webhooks that arrived for ``job``'s reference before the job was waiting for them."""
    pending = (
        (
            await session.execute(
                select(WebhookEvent)
                .where(
                    WebhookEvent.platform == job.platform,
                    WebhookEvent.external_ref == job.external_ref,
                    WebhookEvent.outcome == "unmatched",
                )
                .order_by(WebhookEvent.received_at)
            )
        )
        .scalars()
        .all()
    )
    if not pending:
        return
    connection = await ConnectionRepository(session).get_by_platform(job.company_id, job.platform)
    if connection is None:
        return
    adapter = gateway.adapter_for(connection)
    for event in pending:
        body = event.body.encode("utf-8")
        if not adapter.verify_webhook(event.headers, body):
            event.outcome = "rejected"
            event.error = "signature did not verify"
            event.event_id = f"rejected:{uuid.uuid4()}"
            event.processed_at = now
            continue
        message: WebhookMessage = type(adapter).parse_webhook(event.headers, body)
        event.signature_valid = True
        event.company_id = job.company_id
        event.sync_id = job.id
        event.processed_at = now
        changed = message.result is not None and await apply_result(
            session, tracker, job, message.result, now, source="webhook"
        )
        event.outcome = "applied" if changed else "ignored"


def _reply(reply: WebhookReply) -> WebhookOutcome:
    return WebhookOutcome(reply.status_code, reply.body)


def masked_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("********" if k.lower() in _MASKED_HEADERS else v) for k, v in headers.items()}
