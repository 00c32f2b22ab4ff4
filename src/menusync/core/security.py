"""JWT verification and minting, and encryption of platform credentials at rest.

Tokens: PyJWT with the algorithm pinned (HS256 with a shared secret, or RS256 with a public key);
``exp`` is required; issuer and audience are checked when configured. ``alg: none`` and any other
algorithm are refused because only the configured one is accepted.

Credentials: Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``. ``MultiFernet`` lets keys
rotate: the first key encrypts, every key decrypts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from menusync.core.errors import MenusyncError, Unauthenticated


@dataclass(frozen=True)
class TokenVerifier:
    algorithm: str
    key: str
    """HS256: the shared secret; RS256: the PEM public key."""
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 0

    def decode(self, token: str) -> dict[str, Any]:
        """Verify ``token`` and return its claims, or raise ``Unauthenticated`` saying why."""
        if not token:
            raise Unauthenticated("Missing bearer token")
        required = ["exp", "sub"]
        if self.issuer:
            required.append("iss")
        if self.audience:
            required.append("aud")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("Token has expired", code="token_expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"Invalid token: {exc}", code="invalid_token") from exc
        return claims


@dataclass(frozen=True)
class TokenIssuer:
    algorithm: str
    key: str
    """HS256: the shared secret; RS256: the PEM private key."""
    issuer: str | None = None
    audience: str | None = None

    def mint(
        self, *, subject: str, company_id: str, role: str, now: datetime, ttl: timedelta
    ) -> str:
        claims: dict[str, Any] = {
            "sub": subject,
            "companyId": company_id,
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        return jwt.encode(claims, self.key, algorithm=self.algorithm)


class CredentialsUndecryptable(MenusyncError):
    code = "credentials_undecryptable"


class SecretBox:
    """Encrypts small JSON documents (platform credentials) for storage."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            raw = self._fernet.decrypt(token.encode())
        except InvalidToken as exc:
            raise CredentialsUndecryptable(
                "Stored credentials cannot be decrypted with the configured keys"
            ) from exc
        value: dict[str, Any] = json.loads(raw)
        return value
