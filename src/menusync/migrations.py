"""Running Alembic from inside menusync (``menusync migrate``, ``serve`` on start, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url

_ROOT = Path(__file__).resolve().parent


def _locate_script_dir() -> Path:
    # Checkout layout (src/menusync/ -> ../../migrations) or installed layout (menusync/_migrations).
    for candidate in (_ROOT.parent.parent / "migrations", _ROOT / "_migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("Alembic migrations directory not found")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_locate_script_dir()))
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Apply every migration to the database at ``url`` (an async SQLAlchemy URL)."""
    command.upgrade(alembic_config(url), "head")


def downgrade_to_base(url: str) -> None:
    command.downgrade(alembic_config(url), "base")


def _sync_url(url: str) -> str:
    parsed = make_url(url)
    driver = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}
    return parsed.set(drivername=driver.get(parsed.drivername, parsed.drivername)).render_as_string(
        hide_password=False
    )


def current_and_head(url: str) -> tuple[set[str], set[str]]:
    """The revisions the database is at, and the head revisions of the code."""
    script = ScriptDirectory.from_config(alembic_config(url))
    engine = create_sync_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    return current, set(script.get_heads())
