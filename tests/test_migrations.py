"""Migrations go up and down on both databases, and the models match them (no drift)."""

from __future__ import annotations

from alembic import command
from alembic.util.exc import CommandError

from menusync.migrations import alembic_config, current_and_head, downgrade_to_base, upgrade_to_head


def test_upgrade_then_downgrade_then_upgrade(db_url: str) -> None:
    current, head = current_and_head(db_url)
    assert current == head

    downgrade_to_base(db_url)
    assert current_and_head(db_url)[0] == set()

    upgrade_to_head(db_url)
    assert current_and_head(db_url)[0] == head


def test_models_match_migrations(db_url: str) -> None:
    try:
        command.check(alembic_config(db_url))
    except CommandError as exc:  # pragma: no cover - the message is the diff
        raise AssertionError(f"models and migrations drifted: {exc}") from exc
