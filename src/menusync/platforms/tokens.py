"""A process-wide cache of platform access tokens, one per connection's credentials.

Tokens are refreshed before they expire (``refresh_margin``), and concurrent callers that find no
valid token wait for one refresh instead of each asking the platform (Careem warns that asking for a
token per call "might lead to rate-limiting or even IP block").
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from menusync.core.clock import Clock


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: datetime


class TokenCache:
    def __init__(self, clock: Clock, *, refresh_margin: timedelta = timedelta(seconds=30)) -> None:
        self._clock = clock
        self._margin = refresh_margin
        self._tokens: dict[str, AccessToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def key_for(platform: str, *parts: str) -> str:
        """A cache key from the platform and its credentials, without keeping the secret."""
        digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
        return f"{platform}:{digest}"

    def _valid(self, key: str) -> AccessToken | None:
        token = self._tokens.get(key)
        if token is None:
            return None
        lifetime_left = token.expires_at - self._clock.now()
        return token if lifetime_left > self._margin else None

    async def get(self, key: str, fetch: Callable[[], Awaitable[AccessToken]]) -> AccessToken:
        """A token that is valid for longer than the refresh margin, fetching one if needed."""
        token = self._valid(key)
        if token is not None:
            return token
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            token = self._valid(key)
            if token is None:
                token = await fetch()
                self._tokens[key] = token
            return token

    def invalidate(self, key: str, value: str | None = None) -> None:
        """Forget the token (only if it is still ``value``, when given: another caller may
        already have refreshed it)."""
        current = self._tokens.get(key)
        if current is not None and (value is None or current.value == value):
            del self._tokens[key]
