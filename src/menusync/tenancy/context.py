"""The authenticated caller: who, which company, which role."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from menusync.core.errors import PermissionDenied, Unauthenticated
from menusync.core.security import TokenVerifier
from menusync.tenancy.roles import Role

MAX_USER_ID = 128
"""Longest ``sub`` claim accepted: the width of every ``user_id`` column."""
MAX_COMPANY_ID = 64
"""Longest ``companyId`` claim accepted: the width of every ``company_id`` column."""


@dataclass(frozen=True)
class AuthContext:
    user_id: str
    company_id: str
    role: Role
    request_id: str | None = None

    @classmethod
    def from_claims(cls, claims: dict[str, Any], request_id: str | None = None) -> AuthContext:
        """Build the context from verified JWT claims (``sub``, ``companyId``, ``role``)."""
        subject = claims.get("sub")
        company = claims.get("companyId")
        role = claims.get("role")
        missing = [
            name
            for name, value in (("sub", subject), ("companyId", company), ("role", role))
            if not isinstance(value, str) or not value
        ]
        if missing:
            raise Unauthenticated(
                f"Token is missing required claims: {', '.join(missing)}", code="invalid_token"
            )
        too_long = [
            name
            for name, value, most in (
                ("sub", subject, MAX_USER_ID),
                ("companyId", company, MAX_COMPANY_ID),
            )
            if len(str(value)) > most
        ]
        if too_long:
            # Longer ids cannot be stored (audit, idempotency keys): refuse them up front.
            raise Unauthenticated(
                f"Token claims are too long: {', '.join(too_long)}", code="invalid_token"
            )
        try:
            parsed_role = Role(str(role))
        except ValueError as exc:
            raise Unauthenticated(f"Unknown role {role!r}", code="invalid_token") from exc
        return cls(
            user_id=str(subject), company_id=str(company), role=parsed_role, request_id=request_id
        )

    def require(self, allowed: Iterable[Role]) -> None:
        allowed = frozenset(allowed)
        if self.role not in allowed:
            raise PermissionDenied(
                f"Role {self.role.value!r} may not do this",
                details={"allowedRoles": sorted(r.value for r in allowed)},
            )


def caller_from_authorization(
    authorization: str | None, verifier: TokenVerifier
) -> AuthContext | None:
    """The caller an ``Authorization: Bearer <jwt>`` header names, or None when it does not
    authenticate. For the request plumbing (budget, idempotency) that only needs to know *who*;
    endpoints still answer 401 through :func:`menusync.tenancy.dependencies.get_auth`."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return AuthContext.from_claims(verifier.decode(token.strip()))
    except Unauthenticated:
        return None
