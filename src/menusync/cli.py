"""The ``menusync`` command line. Commands parse options, call one thing, and print."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

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

UVICORN_OPTIONS: dict[str, Any] = {"log_config": None, "ws_per_message_deflate": False}
"""How every command serves: our own logging; no per-message compression on WebSockets (realtime
events are a few hundred bytes, each compressed once per recipient: a third of the fan-out's CPU
for next to no saving)."""


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    return settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    demo: Annotated[
        bool, typer.Option(help="Mount the sandbox under /sandbox and seed a demo company")
    ] = False,
) -> None:
    """API + worker + event relay in one process (embedded default: SQLite under ./var/)."""
    import uvicorn

    settings = _settings()
    if settings.should_auto_migrate:
        from menusync.migrations import upgrade_to_head

        upgrade_to_head(settings.database_url)
    app = _build_app(settings, host=host, port=port, demo=demo, embedded_worker=True)
    uvicorn.run(app, host=host, port=port, **UVICORN_OPTIONS)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes", min=1)] = 1,
) -> None:
    """The API and event relay only (scale-out: run workers with `menusync worker`)."""
    import uvicorn

    _settings()
    if workers > 1:
        uvicorn.run(
            "menusync.cli:api_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **UVICORN_OPTIONS,
        )
    else:
        uvicorn.run(api_factory(), host=host, port=port, **UVICORN_OPTIONS)


def api_factory() -> Any:
    """The ASGI app of ``menusync api`` (uvicorn factory)."""
    return _build_app(get_settings(), embedded_worker=False)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once", min=1)] = None,
) -> None:
    """A worker process: claims due sync jobs and runs them until SIGTERM."""
    import asyncio
    import signal

    from menusync.core.resources import build_resources
    from menusync.platforms.registry import default_registry
    from menusync.platforms.runtime import PlatformRuntime
    from menusync.platforms.tokens import TokenCache
    from menusync.sync.policy import EnginePolicies
    from menusync.worker import Worker

    settings = _settings()

    async def main() -> None:
        resources = build_resources(settings)
        registry = default_registry()
        runtime = PlatformRuntime(registry, TokenCache(resources.clock))
        runner = Worker(
            resources, runtime, EnginePolicies(registry, settings.engine), concurrency=concurrency
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.request_stop)
        try:
            await runner.run_until_stopped()
        finally:
            await runner.stop()
            await resources.aclose()

    asyncio.run(main())


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 9000,
    strict: Annotated[
        bool, typer.Option(help="Stores must be registered first, as on the real platforms")
    ] = False,
    fast: Annotated[bool, typer.Option(help="No processing or redelivery delays")] = False,
) -> None:
    """The platform simulators alone: /careem, /talabat, /deliveroo."""
    from menusync.sandbox.server import serve as serve_sandbox
    from menusync.sandbox.settings import SandboxSettings

    _settings()
    sandbox_settings = (
        SandboxSettings.fast(strict=strict) if fast else SandboxSettings(strict=strict)
    )
    console.print(
        f"Sandbox on http://{host}:{port}/{{careem,talabat,deliveroo}} (control API: /<platform>/__sandbox/...)"
    )
    serve_sandbox(host=host, port=port, settings=sandbox_settings)


def _build_app(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    demo: bool = False,
    embedded_worker: bool,
) -> Any:
    from menusync.app import create_asgi_app

    if not demo:
        return create_asgi_app(settings, embedded_worker=embedded_worker)
    from fastapi import FastAPI

    from menusync.demo import onboard_sandbox, sandbox_settings_for, seed_demo
    from menusync.sandbox.app import create_sandbox_app, shutdown_sandbox

    public_url = (
        f"http://{host}:{port}"
        if settings.public_url == Settings.model_fields["public_url"].default
        else settings.public_url
    )
    settings = settings.model_copy(update={"public_url": public_url})
    sandbox_settings = sandbox_settings_for(public_url)
    sandbox_app = create_sandbox_app(sandbox_settings)

    async def seed(fastapi_app: FastAPI) -> None:
        await onboard_sandbox(sandbox_app, sandbox_settings)
        result = await seed_demo(
            fastapi_app.state.resources,
            fastapi_app.state.platform_runtime,
            f"{public_url}/sandbox",
            sandbox_settings,
        )
        _print_demo(public_url, result.menu_id, result.token, result.platforms)

    async def stop_sandbox(_app: FastAPI) -> None:
        await shutdown_sandbox(sandbox_app)

    return create_asgi_app(
        settings,
        embedded_worker=embedded_worker,
        mounts={"/sandbox": sandbox_app},
        on_startup=[seed],
        on_shutdown=[stop_sandbox],
    )


def _print_demo(public_url: str, menu_id: object, token: str, platforms: list[str]) -> None:
    console.rule("[bold green]menusync demo")
    console.print(f"Dashboard:     {public_url}/  (paste the token below)")
    console.print(f"API docs:      {public_url}/docs")
    console.print(f"Sandbox:       {public_url}/sandbox/{{{','.join(platforms)}}}")
    console.print(f"Demo menu id:  {menu_id}")
    console.print("Token (company_owner of demo-company, 7 days):")
    console.print(token, soft_wrap=True)
    console.print("Try it:")
    console.print(
        f"  curl -s -X POST {public_url}/api/v1/platform-sync/batch -H 'Authorization: Bearer $TOKEN' "
        f'-H \'Content-Type: application/json\' -d \'{{"platformMenuId": "{menu_id}", '
        f'"platforms": [{{"platformType": "careem"}}, {{"platformType": "talabat"}}, '
        f'{{"platformType": "deliveroo"}}]}}\'',
        soft_wrap=True,
    )
    console.print(
        f"  or: MENUSYNC_PUBLIC_URL={public_url} menusync sync {menu_id} --platform careem --platform talabat --platform deliveroo --wait"
    )
    console.rule()


@app.command()
def sync(
    menu_id: Annotated[str, typer.Argument(help="The menu to publish")],
    platform: Annotated[
        list[str], typer.Option("--platform", "-p", help="Target platform (repeatable)")
    ],
    company: Annotated[str, typer.Option(help="The company that owns the menu")] = "demo-company",
    force: Annotated[
        bool, typer.Option(help="Push even if the platform already has this menu")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Show live progress until every sync ends")] = False,
) -> None:
    """Request a sync of MENU_ID to one or more platforms (a worker must be running)."""
    import asyncio
    import uuid

    from menusync.sync.schemas import BatchPlatform, BatchSyncRequest

    settings = _settings()
    try:
        parsed = uuid.UUID(menu_id)
    except ValueError:
        raise typer.BadParameter(f"{menu_id!r} is not a menu id (UUID)") from None
    request = BatchSyncRequest(
        platform_menu_id=parsed,
        platforms=[BatchPlatform(platform_type=p) for p in platform],
        force_sync=force,
    )
    code = asyncio.run(_request_and_follow(settings, company, request, wait))
    raise typer.Exit(code)


async def _request_and_follow(settings: Settings, company: str, request: Any, wait: bool) -> int:
    from menusync.core.errors import MenusyncError
    from menusync.core.resources import build_resources
    from menusync.platforms.registry import default_registry
    from menusync.platforms.runtime import PlatformRuntime
    from menusync.platforms.tokens import TokenCache
    from menusync.sync.dependencies import build_sync_service
    from menusync.sync.policy import EnginePolicies
    from menusync.tenancy.context import AuthContext

    resources = build_resources(settings)
    registry = default_registry()
    runtime = PlatformRuntime(registry, TokenCache(resources.clock))
    policies = EnginePolicies(registry, settings.engine)
    auth = AuthContext(user_id="cli", company_id=company, role=Role.COMPANY_OWNER)
    try:
        try:
            async with resources.unit_of_work() as session:
                service = build_sync_service(session, resources, runtime, policies)
                batch, jobs = await service.request_batch(auth, request)
                ids = [(job.id, job.platform) for job in jobs]
        except MenusyncError as exc:
            console.print(f"[red]{exc.message}[/]")
            for issue in exc.details.get("issues", []):
                console.print(f"  - {issue.get('path', '')}: {issue.get('message', '')}")
            return 2
        console.print(f"Batch {batch.id}: " + ", ".join(f"{p} -> {i}" for i, p in ids))
        if not wait:
            return 0
        return await _follow(resources, runtime, policies, auth, [i for i, _ in ids])
    finally:
        await resources.aclose()


async def _follow(
    resources: Any, runtime: Any, policies: Any, auth: Any, sync_ids: list[Any]
) -> int:
    import asyncio

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from menusync.sync.dependencies import build_sync_service
    from menusync.sync.schemas import TERMINAL_STATUSES

    finals: dict[Any, Any] = {}
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[Any, Any] = {}
        while len(finals) < len(sync_ids):
            async with resources.unit_of_work() as session:
                service = build_sync_service(session, resources, runtime, policies)
                for sync_id in sync_ids:
                    job = await service.get_job(auth, sync_id)
                    if sync_id not in tasks:
                        tasks[sync_id] = progress.add_task(job.platform, total=100, stage=job.stage)
                    progress.update(
                        tasks[sync_id],
                        completed=job.progress,
                        stage=f"{job.status}: {job.message or ''}"[:70],
                    )
                    if job.status in TERMINAL_STATUSES:
                        finals[sync_id] = (job.platform, job.status, job.message, job.error_code)
            await asyncio.sleep(0.3)
    ok = True
    for platform, status, message, error_code in finals.values():
        colour = "green" if status == "completed" else "red"
        ok = ok and status == "completed"
        console.print(
            f"[{colour}]{platform:<10} {status}[/] {message or ''}"
            + (f" ({error_code})" if error_code else "")
        )
    return 0 if ok else 1


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the demo server")] = 8000,
) -> None:
    """The guided tour: serve with the sandbox, sync the demo menu everywhere, show the result."""
    import asyncio

    asyncio.run(_demo(port))


async def _demo(port: int) -> None:
    import asyncio

    import uvicorn

    from menusync.demo import DEMO_COMPANY, DEMO_MENU_EXTERNAL_ID
    from menusync.migrations import upgrade_to_head

    settings = _settings()
    if settings.should_auto_migrate:
        await asyncio.to_thread(upgrade_to_head, settings.database_url)
    app_ = _build_app(settings, port=port, demo=True, embedded_worker=True)
    server = uvicorn.Server(uvicorn.Config(app_, host="127.0.0.1", port=port, **UVICORN_OPTIONS))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.05)
    from sqlalchemy import select

    from menusync.core.resources import build_resources
    from menusync.menus.models import Menu
    from menusync.sync.schemas import BatchPlatform, BatchSyncRequest

    resources = build_resources(settings)
    async with resources.unit_of_work() as session:
        menu_id = (
            await session.execute(
                select(Menu.id).where(
                    Menu.company_id == DEMO_COMPANY, Menu.external_id == DEMO_MENU_EXTERNAL_ID
                )
            )
        ).scalar_one()
    await resources.aclose()
    request = BatchSyncRequest(
        platform_menu_id=menu_id,
        platforms=[BatchPlatform(platform_type=p) for p in ("careem", "talabat", "deliveroo")],
        force_sync=True,
    )
    demo_settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    code = await _request_and_follow(demo_settings, DEMO_COMPANY, request, True)
    console.print(
        f"Next: open http://127.0.0.1:{port}/docs, or run `make run` and keep it serving."
    )
    server.should_exit = True
    await serving
    raise typer.Exit(code)


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
