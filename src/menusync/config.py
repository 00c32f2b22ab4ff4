"""Settings, read once when the app, the worker or a CLI command is built.

Environment variables use the prefix ``MENUSYNC_`` and ``__`` between nested groups, for example
``MENUSYNC_DATABASE__URL`` or ``MENUSYNC_AUTH__JWT_SECRET``. A ``.env`` file in the working
directory is read too. In the embedded default nothing needs configuring: the database is a SQLite
file under ``./var/`` and the JWT secret and the credentials encryption key are generated once into
``./var/`` (mode 0600) and reused from there.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["auto", "json", "console"]


class _Group(BaseModel):
    """A settings group: a misspelt setting is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Group):
    url: str = ""
    """SQLAlchemy async URL; empty means ``sqlite+aiosqlite:///<data_dir>/menusync.db``."""
    echo: bool = False
    pool_size: int = Field(default=20, ge=1)
    """PostgreSQL connections kept open per process; keep it above the worker concurrency."""
    busy_timeout_ms: int = Field(default=30_000, ge=0)
    auto_migrate: bool | None = None
    """Apply migrations when ``serve`` starts; default: only for SQLite."""


class AuthSettings(_Group):
    algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = None
    """HS256 shared secret; generated into ``<data_dir>/jwt-secret`` when unset."""
    public_key: str | None = None
    """RS256: PEM public key used to verify tokens."""
    private_key: SecretStr | None = None
    """RS256: PEM private key, only needed by ``menusync token``."""
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = Field(default=0, ge=0, le=300)
    default_token_ttl_seconds: int = Field(default=3600, ge=60)

    @model_validator(mode="after")
    def _rs256_needs_key(self) -> AuthSettings:
        if self.algorithm == "RS256" and not self.public_key:
            raise ValueError("auth.public_key is required when auth.algorithm is RS256")
        return self


class SecuritySettings(_Group):
    encryption_key: SecretStr | None = None
    """Fernet key for platform credentials; generated into ``<data_dir>/encryption-key`` when
    unset. Several keys may be given comma-separated (newest first) to rotate."""


class ApiSettings(_Group):
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    requests_per_minute: int = Field(default=600, ge=1)
    """Per-user request budget on /api/v1, shared by every API process (429 beyond it)."""
    request_burst: int | None = Field(default=None, ge=0)
    """Requests allowed above the steady rate after an idle spell (default: a tenth of the
    per-minute budget)."""
    metrics_public: bool = True
    cors_origins: list[str] = Field(default_factory=list)


class LogSettings(_Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: LogFormat = "auto"


class PlatformPolicySettings(_Group):
    """Overrides of one platform's defaults (unset values keep the adapter's documented ones)."""

    max_retries: int | None = Field(default=None, ge=0, le=50)
    base_delay_seconds: float | None = Field(default=None, gt=0)
    max_delay_seconds: float | None = Field(default=None, gt=0)
    multiplier: float | None = Field(default=None, ge=1)
    requests_per_minute: float | None = Field(default=None, gt=0)
    """The whole-platform request budget shared by every worker."""
    per_store_scale: float = Field(default=1.0, gt=0)
    """Multiplies the documented per-store limits (e.g. 10 against a sandbox with 10x limits)."""


class BreakerSettings(_Group):
    failure_threshold: int = Field(default=5, ge=1)
    open_seconds: float = Field(default=60, gt=0)
    success_threshold: int = Field(default=3, ge=1)


class EngineSettings(_Group):
    concurrency: int = Field(default=4, ge=1, le=256)
    """Jobs one worker process runs at once."""
    lease_seconds: float = Field(default=30, ge=2)
    idle_poll_seconds: float = Field(default=1.0, gt=0)
    """How often an idle worker looks for due jobs when no wake-up arrives."""
    max_inline_wait_seconds: float = Field(default=2.0, ge=0)
    rate_safety_margin: float = Field(default=0.02, ge=0, lt=0.5)
    """Share of every rate limit left unused. Calls leave on their booked slots, but network and
    scheduling delays move arrivals by tens of milliseconds, and platforms count arrivals in
    sliding windows: without a margin a late call followed by an on-time one can make the
    platform see one call too many in a window."""
    """Rate-limit waits up to this long are slept; longer ones reschedule the job."""
    status_poll_seconds: float = Field(default=15, gt=0)
    """How often a job awaiting the platform's confirmation is polled (webhooks usually win)."""
    confirmation_timeout_seconds: float = Field(default=900, gt=0)
    maintenance_seconds: float = Field(default=2.0, gt=0)
    event_retention_days: float = Field(default=7, gt=0)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    platforms: dict[str, PlatformPolicySettings] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Every setting of menusync. Values come from the environment, then ``.env``, then defaults."""

    model_config = SettingsConfigDict(
        env_prefix="MENUSYNC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("var")
    public_url: str = "http://127.0.0.1:8000"
    """How platforms reach this service (webhook and callback URLs are built from it)."""
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'menusync.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        if self.database.auto_migrate is not None:
            return self.database.auto_migrate
        return self.is_sqlite

    def jwt_secret(self) -> str:
        """The HS256 secret: configured, or generated once into the data directory."""
        if self.auth.jwt_secret is not None:
            return self.auth.jwt_secret.get_secret_value()
        return _secret_file(self.data_dir / "jwt-secret", lambda: secrets.token_urlsafe(48))

    def encryption_keys(self) -> list[str]:
        """Fernet keys, newest first: configured, or one generated once into the data directory."""
        if self.security.encryption_key is not None:
            raw = self.security.encryption_key.get_secret_value()
            return [key.strip() for key in raw.split(",") if key.strip()]
        key = _secret_file(
            self.data_dir / "encryption-key",
            lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        )
        return [key]

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked (for ``menusync config``)."""
        data = self.model_dump(mode="json")
        data["database"]["url"] = _mask_url(self.database_url)
        generated = "(generated under data_dir)"
        data["auth"]["jwt_secret"] = "********" if self.auth.jwt_secret else generated
        data["security"]["encryption_key"] = (
            "********" if self.security.encryption_key else generated
        )
        data["auth"]["private_key"] = "********" if self.auth.private_key else None
        return data


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _secret_file(path: Path, make: Any) -> str:
    """Read a secret from ``path``, creating it (mode 0600, exclusively) on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value: str = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first; use theirs.
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def get_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
