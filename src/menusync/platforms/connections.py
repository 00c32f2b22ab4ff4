"""A company's platform connections: validated by the adapter's ``Config``, secrets encrypted.

Secret fields (the adapter's ``secret_fields``) are sealed with the process ``SecretBox`` and never
returned: reads show ``********``. The rest (store ids, market, base URLs) is stored as plain JSON
so operators can see what a connection points at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from menusync.core.clock import Clock
from menusync.core.errors import NotFound, ValidationFailed
from menusync.core.http import CallRecorder, NullRecorder, PlatformHttp
from menusync.core.security import SecretBox
from menusync.core.web import validation_issues
from menusync.platforms.base import AdapterContext, ConnectionCheck, PlatformAdapter
from menusync.platforms.errors import PlatformError
from menusync.platforms.models import PlatformConnection
from menusync.platforms.registry import AdapterRegistry
from menusync.platforms.repository import ConnectionRepository
from menusync.platforms.tokens import TokenCache
from menusync.tenancy.audit import AuditTrail
from menusync.tenancy.context import AuthContext

MASK = "********"
TEST_TIMEOUT_SECONDS = 10.0


class ConnectionNotFound(NotFound):
    code = "connection_not_found"

    def __init__(self, platform: str) -> None:
        super().__init__(
            f"No {platform} connection is configured for this company",
            details={"platformType": platform},
        )


class PlatformGateway:
    """Builds adapters for stored connections: decrypts, validates, wires HTTP and tokens."""

    def __init__(
        self,
        registry: AdapterRegistry,
        secret_box: SecretBox,
        http: PlatformHttp,
        tokens: TokenCache,
        clock: Clock,
        callback_base_url: str,
    ) -> None:
        self.registry = registry
        self.secret_box = secret_box
        self.http = http
        self.tokens = tokens
        self.clock = clock
        self.callback_base_url = callback_base_url.rstrip("/")

    def config_of(self, connection: PlatformConnection) -> BaseModel:
        adapter = self.registry.get(connection.platform)
        secrets = self.secret_box.open(connection.credentials_encrypted)
        return adapter.Config.model_validate({**connection.settings, **secrets})

    def callback_url(self, platform: str) -> str:
        return f"{self.callback_base_url}/api/v1/platform-sync/webhook/{platform}"

    def adapter_for(
        self,
        connection: PlatformConnection,
        recorder: CallRecorder | None = None,
        *,
        timeout: float | None = None,
    ) -> PlatformAdapter:
        context = AdapterContext(
            http=self.http.with_recorder(recorder or NullRecorder(), timeout=timeout),
            tokens=self.tokens,
            clock=self.clock,
            callback_url=self.callback_url(connection.platform),
        )
        return self.registry.create(connection.platform, self.config_of(connection), context)


def split_config(
    adapter: type[PlatformAdapter], config: BaseModel
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(non-secret settings as JSON, secret values as plain strings) of a validated Config."""
    settings: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for name, value in config.model_dump(mode="python", by_alias=False).items():
        if name in adapter.secret_fields:
            secrets[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    for name, value in config.model_dump(mode="json", by_alias=False).items():
        if name not in adapter.secret_fields:
            settings[name] = value
    return settings, secrets


class ConnectionService:
    def __init__(
        self,
        repository: ConnectionRepository,
        gateway: PlatformGateway,
        audit: AuditTrail,
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.gateway = gateway
        self.audit = audit
        self.clock = clock

    async def list_connections(self, auth: AuthContext) -> Sequence[PlatformConnection]:
        return await self.repository.list_for_company(auth.company_id)

    async def get_connection(self, auth: AuthContext, platform: str) -> PlatformConnection:
        self.gateway.registry.get(platform)
        connection = await self.repository.get_by_platform(auth.company_id, platform)
        if connection is None:
            raise ConnectionNotFound(platform)
        return connection

    async def set_connection(
        self, auth: AuthContext, platform: str, values: dict[str, Any], *, is_enabled: bool = True
    ) -> PlatformConnection:
        """Create or replace the connection; secrets left out keep their stored value."""
        adapter = self.gateway.registry.get(platform)
        existing = await self.repository.get_by_platform(auth.company_id, platform)
        aliases = {field.alias or name: name for name, field in adapter.Config.model_fields.items()}
        to_alias = {name: alias for alias, name in aliases.items()}
        merged = {aliases.get(key, key): value for key, value in values.items()}
        if existing is not None:
            stored = self.gateway.secret_box.open(existing.credentials_encrypted)
            for name in adapter.secret_fields:
                if merged.get(name) in (None, MASK) and name in stored:
                    merged[name] = stored[name]
        try:
            # By alias, so that errors name the camelCase keys the client sent.
            config = adapter.Config.model_validate(
                {to_alias.get(k, k): v for k, v in merged.items()}
            )
        except ValidationError as exc:
            issues = validation_issues(exc.errors())
            for issue in issues:
                issue["path"] = (
                    f"body.credentials.{issue['path']}" if issue["path"] else "body.credentials"
                )
            raise ValidationFailed(f"Invalid {platform} connection settings", issues) from exc
        settings, secrets = split_config(adapter, config)
        now = self.clock.now()
        connection = existing or PlatformConnection(
            company_id=auth.company_id, platform=platform, created_at=now
        )
        connection.settings = settings
        connection.credentials_encrypted = self.gateway.secret_box.seal(secrets)
        connection.store_key = adapter.store_key(config)
        connection.is_enabled = is_enabled
        connection.status = "untested"
        connection.last_error = None
        connection.updated_at = now
        if existing is None:
            self.repository.add(connection)
        await self.repository.session.flush()
        self.audit.record(
            auth,
            "connection.updated" if existing else "connection.created",
            "connection",
            platform,
            storeKey=connection.store_key,
            isEnabled=is_enabled,
        )
        return connection

    async def delete_connection(self, auth: AuthContext, platform: str) -> None:
        connection = await self.get_connection(auth, platform)
        await self.repository.delete(connection)
        self.audit.record(auth, "connection.deleted", "connection", platform)

    async def test_connection(self, auth: AuthContext, platform: str) -> ConnectionCheck:
        """Ask the platform whether the credentials work (short timeout); record the verdict."""
        connection = await self.get_connection(auth, platform)
        adapter = self.gateway.adapter_for(connection, timeout=TEST_TIMEOUT_SECONDS)
        try:
            async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
                check = await adapter.test_connection()
        except TimeoutError:
            check = ConnectionCheck(
                ok=False, message=f"{platform} did not answer within {TEST_TIMEOUT_SECONDS:g} s"
            )
        except PlatformError as exc:
            check = ConnectionCheck(ok=False, message=exc.message, details=exc.details)
        connection.status = "connected" if check.ok else "error"
        connection.last_tested_at = self.clock.now()
        connection.last_error = None if check.ok else check.message
        self.audit.record(auth, "connection.tested", "connection", platform, ok=check.ok)
        return check

    def masked_settings(self, connection: PlatformConnection) -> dict[str, Any]:
        adapter = self.gateway.registry.get(connection.platform)
        masked = {to_camel(name): value for name, value in connection.settings.items()}
        for name in adapter.secret_fields:
            masked[to_camel(name)] = MASK
        return masked
