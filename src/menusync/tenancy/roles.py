"""The five roles and what they may do (CONTRACT.md: W and R)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    COMPANY_OWNER = "company_owner"
    BRANCH_MANAGER = "branch_manager"
    CASHIER = "cashier"
    CALL_CENTER = "call_center"


WRITE_ROLES: frozenset[Role] = frozenset(
    {Role.SUPER_ADMIN, Role.COMPANY_OWNER, Role.BRANCH_MANAGER}
)
"""W: may change things."""
READ_ROLES: frozenset[Role] = WRITE_ROLES | {Role.CALL_CENTER}
"""R: may read."""
ADMIN_ROLES: frozenset[Role] = frozenset({Role.SUPER_ADMIN, Role.COMPANY_OWNER})
"""May force a circuit breaker closed."""
