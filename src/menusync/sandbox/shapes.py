"""Narrowing helpers for untrusted decoded JSON.

Payloads reach the simulators as whatever the client sent, so validators work on ``object`` and
narrow with these helpers instead of trusting a schema: a wrong shape must become the platform's
validation message, never a crash.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

INVALID: object = object()
"""Returned by :func:`parse_json` for a body that is not JSON."""


def parse_json(raw: bytes) -> object:
    """Decode ``raw``; return :data:`INVALID` when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return INVALID


def as_dict(value: object) -> dict[str, object]:
    """``value`` if it is a JSON object, else an empty dict."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return {}


def as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def is_int(value: object) -> bool:
    """A JSON integer (``true``/``false`` are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def str_list(value: object) -> list[str] | None:
    """``value`` if it is a list of strings, else ``None``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return [str(v) for v in value]


def as_decimal(value: object) -> Decimal | None:
    """A decimal amount given as a JSON number or a numeric string (``"18.00"``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def canonical(value: object) -> str:
    """A stable text form of a JSON value, for "is this the same document" checks."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
