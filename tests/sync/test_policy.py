"""Per-platform policies: documented limits, settings overrides and the safety margin."""

from __future__ import annotations

import pytest

from menusync.config import EngineSettings
from menusync.platforms.registry import default_registry
from menusync.sync.policy import EnginePolicies


def _policies(**engine: object) -> EnginePolicies:
    return EnginePolicies(default_registry(), EngineSettings.model_validate(engine))


def test_documented_budgets_with_no_margin() -> None:
    policies = _policies(rate_safety_margin=0)

    assert policies["careem"].budget.count == 60
    assert policies["careem"].budget.interval == pytest.approx(1.0)
    limits = policies["careem"].limits_for("push_menu", "branch-1")
    assert limits["careem:careem_catalog_sync_per_branch:branch-1"].interval == pytest.approx(120)


def test_the_safety_margin_leaves_part_of_every_limit_unused() -> None:
    policies = _policies(rate_safety_margin=0.02)

    assert policies["deliveroo"].budget.interval == pytest.approx(60 / (50 * 0.98))
    limits = policies["deliveroo"].limits_for("push_menu", "brand:site")
    per_site = [limit for key, limit in limits.items() if key.endswith(":brand:site")]
    assert per_site
    assert all(limit.interval == pytest.approx(60 / 0.98) for limit in per_site)


def test_settings_override_the_documented_retry_and_budget() -> None:
    policies = _policies(
        rate_safety_margin=0,
        platforms={
            "talabat": {"requests_per_minute": 120, "max_retries": 6, "base_delay_seconds": 1}
        },
    )

    talabat = policies["talabat"]
    assert talabat.budget.count == 120
    assert (talabat.retry.max_retries, talabat.retry.base_delay, talabat.retry.multiplier) == (
        6,
        1,
        2.5,
    )


def test_a_misspelt_platform_setting_is_an_error() -> None:
    with pytest.raises(ValueError, match="requests_per_minit"):
        EngineSettings.model_validate({"platforms": {"careem": {"requests_per_minit": 10}}})


def test_keys_of_per_store_and_platform_wide_rules() -> None:
    careem = _policies()["careem"]

    keys = set(careem.limits_for("push_menu", "branch-9"))

    assert "careem" in keys
    assert any(key.endswith(":branch-9") for key in keys)
    assert any(key.count(":") == 1 for key in keys), "the 50/min rule is shared by every branch"
    assert all(careem.limit_of(key) is not None for key in keys)
