"""The auth dependency: one place that turns a bearer token into an ``AuthContext``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from menusync.core.dependencies import ResourcesDep
from menusync.core.errors import Unauthenticated
from menusync.tenancy.context import AuthContext
from menusync.tenancy.roles import ADMIN_ROLES, READ_ROLES, WRITE_ROLES, Role

_bearer = HTTPBearer(auto_error=False, description="A JWT with the claims sub, companyId, role")


def get_auth(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthContext:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("Missing bearer token")
    claims = resources.verifier.decode(credentials.credentials)
    return AuthContext.from_claims(claims, request_id=getattr(request.state, "request_id", None))


def require_roles(roles: Iterable[Role]) -> Callable[[AuthContext], AuthContext]:
    allowed = frozenset(roles)

    def dependency(auth: Annotated[AuthContext, Depends(get_auth)]) -> AuthContext:
        auth.require(allowed)
        return auth

    return dependency


Reader = Annotated[AuthContext, Depends(require_roles(READ_ROLES))]
"""Any role that may read (R)."""
Writer = Annotated[AuthContext, Depends(require_roles(WRITE_ROLES))]
"""Any role that may write (W)."""
Admin = Annotated[AuthContext, Depends(require_roles(ADMIN_ROLES))]
"""super_admin or company_owner."""
