"""Platform errors, classified for the runner (not HTTP errors).

::

    PlatformError
    ├── PlatformAuthError        credentials rejected after one token refresh -> fail, needs_reauth
    ├── PlatformRateLimited      429 (retry_after when sent)   -> penalise limiter, reschedule
    ├── PlatformUnavailable      5xx, timeouts, connection errors, "job running" conflicts
    │                                                          -> retry with backoff; breaker counts
    ├── PlatformRejected         permanent validation failure (issues) -> fail, no retry
    ├── PlatformNotFound         the platform does not know the store/menu/item -> fail
    └── PlatformContractError    the answer did not match the platform's schema -> fail, log loudly

Every error keeps the platform's own status, code and message in ``details`` so an operator sees
what the platform said.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    code = "platform_error"
    retryable = False
    counts_for_breaker = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        platform_code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.platform_code = platform_code
        self.details: dict[str, Any] = dict(details or {})
        if status_code is not None:
            self.details.setdefault("httpStatus", status_code)
        if platform_code is not None:
            self.details.setdefault("platformCode", platform_code)


class PlatformAuthError(PlatformError):
    code = "platform_auth_failed"


class PlatformRateLimited(PlatformError):
    code = "platform_rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        if retry_after is not None:
            self.details.setdefault("retryAfter", retry_after)


class PlatformUnavailable(PlatformError):
    code = "platform_unavailable"
    retryable = True
    counts_for_breaker = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PlatformBusy(PlatformUnavailable):
    """The platform is still processing an earlier job for this store (Careem 409). Transient,
    but the platform is healthy, so it does not count against the breaker."""

    code = "platform_busy"
    counts_for_breaker = False


class PlatformRejected(PlatformError):
    code = "platform_rejected"

    def __init__(
        self, message: str, *, issues: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.issues: list[dict[str, Any]] = list(issues or [])
        self.details.setdefault("issues", self.issues)


class PlatformNotFound(PlatformError):
    code = "platform_not_found"


class PlatformContractError(PlatformError):
    code = "platform_contract_error"
