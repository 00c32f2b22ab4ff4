"""Per-platform resilience settings: the adapter's documented defaults, overridden by settings.

Limiter keys: ``<platform>`` is the whole-platform budget shared by every company (DESIGN section
5); ``<platform>:<rule>:<store>`` are the platform's documented per-store limits, for the
operations they name.
"""

from __future__ import annotations

from dataclasses import dataclass

from menusync.config import EngineSettings
from menusync.core.resilience.circuit_breaker import BreakerPolicy
from menusync.core.resilience.rate_limit import Limit
from menusync.core.resilience.retry import RetryPolicy
from menusync.platforms.base import PlatformAdapter
from menusync.platforms.registry import AdapterRegistry

# DESIGN section 5: whole-platform request budgets per minute, unless an adapter says otherwise.
DEFAULT_BUDGETS = {"careem": 60.0, "talabat": 40.0, "deliveroo": 50.0}
FALLBACK_BUDGET = 60.0


@dataclass(frozen=True)
class PlatformPolicy:
    platform: str
    retry: RetryPolicy
    budget: Limit
    rules: tuple[tuple[str, frozenset[str], Limit, bool], ...]
    """(rule name, operations it applies to (empty: all), limit, per store?)."""

    def rule_key(self, name: str, store_key: str | None) -> str:
        """The limiter key of rule ``name`` (for ``store_key`` when the rule is per store)."""
        return f"{self.platform}:{name}:{store_key}" if store_key else f"{self.platform}:{name}"

    def limits_for(self, operation: str, store_key: str) -> dict[str, Limit]:
        limits = {self.platform: self.budget}
        for name, operations, limit, per_store in self.rules:
            if not operations or operation in operations:
                limits[self.rule_key(name, store_key if per_store else None)] = limit
        return limits

    def limit_of(self, key: str) -> Limit | None:
        if key == self.platform:
            return self.budget
        parts = key.split(":", 2)
        if len(parts) >= 2 and parts[0] == self.platform:
            for name, _operations, limit, per_store in self.rules:
                if name == parts[1] and per_store == (len(parts) == 3):
                    return limit
        return None


class EnginePolicies:
    def __init__(self, registry: AdapterRegistry, settings: EngineSettings) -> None:
        self._policies = {
            kind: self._build(registry.get(kind), settings) for kind in registry.kinds
        }
        self.breaker = BreakerPolicy(
            failure_threshold=settings.breaker.failure_threshold,
            open_seconds=settings.breaker.open_seconds,
            success_threshold=settings.breaker.success_threshold,
        )

    def __getitem__(self, platform: str) -> PlatformPolicy:
        return self._policies[platform]

    def limit_of(self, key: str) -> Limit | None:
        platform = key.split(":", 1)[0]
        policy = self._policies.get(platform)
        return policy.limit_of(key) if policy else None

    @property
    def platforms(self) -> list[str]:
        return sorted(self._policies)

    @staticmethod
    def _build(adapter: type[PlatformAdapter], settings: EngineSettings) -> PlatformPolicy:
        override = settings.platforms.get(adapter.kind)
        default = adapter.retry_policy
        retry = RetryPolicy(
            max_retries=override.max_retries
            if override and override.max_retries is not None
            else default.max_retries,
            base_delay=override.base_delay_seconds
            if override and override.base_delay_seconds
            else default.base_delay,
            max_delay=override.max_delay_seconds
            if override and override.max_delay_seconds
            else default.max_delay,
            multiplier=override.multiplier
            if override and override.multiplier
            else default.multiplier,
        )
        platform_rules = [
            rule
            for rule in adapter.limits.rules
            if rule.scope == "platform" and not rule.operations
        ]
        per_minute = DEFAULT_BUDGETS.get(adapter.kind, FALLBACK_BUDGET)
        if platform_rules:
            per_minute = min(rule.requests * 60 / rule.per_seconds for rule in platform_rules)
        if override and override.requests_per_minute:
            per_minute = override.requests_per_minute
        keep = 1.0 - settings.rate_safety_margin
        budget = _limit_per(per_minute * keep, 60.0)
        scale = (override.per_store_scale if override else 1.0) * keep
        # Per-store rules, and platform-wide rules for particular operations (e.g. Careem's 50
        # catalog syncs a minute across all branches), which every store shares.
        rules = tuple(
            (
                rule.name,
                rule.operations,
                _limit_per(rule.requests * scale, rule.per_seconds),
                rule.scope == "store",
            )
            for rule in adapter.limits.rules
            if rule.scope == "store" or rule.operations
        )
        return PlatformPolicy(adapter.kind, retry, budget, rules)


def _limit_per(requests: float, seconds: float) -> Limit:
    """A Limit of ``requests`` per ``seconds`` where ``requests`` may be fractional."""
    if requests >= 1:
        whole = int(requests)
        return Limit(count=whole, period_seconds=seconds * whole / requests)
    return Limit(count=1, period_seconds=seconds / requests)
