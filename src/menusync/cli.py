"""The ``menusync`` command line. Commands parse options, call one thing, and print."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

from menusync.config import Settings, get_settings
from menusync.core.clock import SystemClock
from menusync.core.logging import configure_logging
from menusync.core.resources import build_issuer
from menusync.tenancy.roles import Role

app = typer.Typer(
    name="menusync",
    help="Reliable menu synchronization to delivery platforms.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    return settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    demo: Annotated[bool, typer.Option(help="Mount the sandbox and seed a demo company")] = False,
) -> None:
    """API + worker + event relay in one process (embedded default: SQLite under ./var/)."""
    import uvicorn

    from menusync.app import create_app
    from menusync.migrations import upgrade_to_head

    settings = _settings()
    if settings.should_auto_migrate:
        upgrade_to_head(settings.database_url)
    if demo:
        console.print("[yellow]--demo: the sandbox and demo seed arrive with the sync engine[/]")
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


@app.command()
def migrate() -> None:
    """Apply database migrations up to the latest."""
    from menusync.migrations import current_and_head, upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings.database_url)
    current, _ = current_and_head(settings.database_url)
    console.print(f"Database at revision {', '.join(sorted(current))}")


@app.command()
def token(
    company: Annotated[str, typer.Option(help="companyId claim")],
    role: Annotated[Role, typer.Option(help="role claim")] = Role.COMPANY_OWNER,
    user: Annotated[str, typer.Option(help="sub claim")] = "dev-user",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds", min=60)] = 3600,
) -> None:
    """Print a JWT signed with the configured secret (development and scripts)."""
    settings = get_settings()
    issuer = build_issuer(settings)
    minted = issuer.mint(
        subject=user,
        company_id=company,
        role=role.value,
        now=SystemClock().now(),
        ttl=timedelta(seconds=ttl),
    )
    typer.echo(minted)


@app.command()
def config() -> None:
    """Print the effective settings, secrets masked."""
    typer.echo(json.dumps(get_settings().masked(), indent=2))


if __name__ == "__main__":  # pragma: no cover
    app()
