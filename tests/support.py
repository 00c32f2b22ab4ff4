"""Helpers shared by tests (tokens, headers)."""

from __future__ import annotations

import time

import jwt

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-and-hs512-0123456789abcdef"


def make_token(
    company: str = "acme",
    role: str = "company_owner",
    user: str = "user-1",
    *,
    ttl: float = 3600,
    secret: str = TEST_SECRET,
    **extra: object,
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user,
        "companyId": company,
        "role": role,
        "iat": now,
        "exp": now + int(ttl),
    }
    claims.update(extra)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


def auth_headers(
    company: str = "acme", role: str = "company_owner", user: str = "user-1"
) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(company, role, user)}"}
