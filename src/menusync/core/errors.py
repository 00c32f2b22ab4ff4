"""The error tree of menusync, and how an error becomes an HTTP answer.

::

    MenusyncError (500, internal_error)
    ├── NotFound (404, not_found)
    ├── Conflict (409, conflict)
    ├── PermissionDenied (403, forbidden)
    ├── Unauthenticated (401, unauthenticated)
    ├── ValidationFailed (422 or 400, validation_failed)   details: {"issues": [...]}
    ├── PayloadTooLarge (413, payload_too_large)
    └── TooManyRequests (429, too_many_requests)           retry_after seconds

Every error renders as the contract's envelope
``{"success": false, "error": {"code", "message", "details"}}``. Domains subclass these with their
own names (``MenuNotFound``, ``SyncAlreadyFinished``) and stable codes; nothing else is caught
broadly. Unexpected exceptions become a 500 with a request id to find them in the logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class MenusyncError(Exception):
    status_code: int = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})
        if code is not None:
            self.error_code = code
        else:
            self.error_code = type(self).code

    def to_body(self) -> dict[str, Any]:
        return {
            "success": False,
            "error": {"code": self.error_code, "message": self.message, "details": self.details},
        }


class NotFound(MenusyncError):
    status_code = 404
    code = "not_found"


class Conflict(MenusyncError):
    status_code = 409
    code = "conflict"


class PermissionDenied(MenusyncError):
    status_code = 403
    code = "forbidden"


class Unauthenticated(MenusyncError):
    status_code = 401
    code = "unauthenticated"

    def __init__(self, message: str = "Authentication required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class ValidationFailed(MenusyncError):
    """Input that is well-formed but breaks a rule. ``issues`` are ``{path, message, code}``."""

    status_code = 422
    code = "validation_failed"

    def __init__(
        self,
        message: str,
        issues: list[dict[str, Any]] | None = None,
        *,
        status_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        details = dict(kwargs.pop("details", None) or {})
        if issues is not None:
            details["issues"] = issues
        super().__init__(message, details=details, **kwargs)
        if status_code is not None:
            self.status_code = status_code


class PayloadTooLarge(MenusyncError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(MenusyncError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        kwargs.setdefault("headers", {"Retry-After": str(seconds)})
        details = dict(kwargs.pop("details", None) or {})
        details.setdefault("retryAfter", seconds)
        super().__init__(message, details=details, **kwargs)
        self.retry_after = seconds
