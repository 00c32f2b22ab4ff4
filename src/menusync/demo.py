"""The first run: a demo company whose connections point at the sandbox mounted in this process.

``menusync serve --demo`` (and ``make run``) mounts the simulators under ``/sandbox/{platform}``,
onboards the demo stores on them as an integrator does on the real platforms, seeds company
``demo-company`` with the sample menu and one connection per platform, and prints a ready
``company_owner`` token, so a newcomer can test the connections and sync within a minute.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
from sqlalchemy import select
from starlette.types import ASGIApp

from menusync.core.resources import Resources, build_issuer
from menusync.menus.dependencies import build_menu_service
from menusync.menus.models import Menu
from menusync.menus.samples import sample_menu
from menusync.menus.schemas import MenuCreate
from menusync.platforms.connections import ConnectionService
from menusync.platforms.repository import ConnectionRepository
from menusync.platforms.runtime import PlatformRuntime
from menusync.sandbox.settings import SandboxSettings
from menusync.tenancy.audit import AuditTrail
from menusync.tenancy.context import AuthContext
from menusync.tenancy.roles import Role

DEMO_COMPANY = "demo-company"
DEMO_USER = "demo-owner"
DEMO_MENU_EXTERNAL_ID = "demo-menu"
DEMO_BRAND_NAME = "Beit Zaatar"
DEMO_BRANCH_NAME = "Beit Zaatar JLT"
DEMO_USER_AGENT = "menusync-demo"


def sandbox_settings_for(
    public_url: str, *, processing_delay_seconds: float = 2.0
) -> SandboxSettings:
    """Sandbox settings whose webhooks come back to this service's webhook endpoint."""
    base = public_url.rstrip("/")
    return SandboxSettings(
        processing_delay_seconds=processing_delay_seconds,
        deliveroo_webhook_url=f"{base}/api/v1/platform-sync/webhook/deliveroo",
        careem_webhook_url=f"{base}/api/v1/platform-sync/webhook/careem",
    )


def demo_connections(sandbox_base: str, sandbox: SandboxSettings) -> dict[str, dict[str, Any]]:
    """Connection settings of every platform, pointing at the sandbox under ``sandbox_base``."""
    base = sandbox_base.rstrip("/")
    return {
        "careem": {
            "clientId": "demo-careem-client",
            "clientSecret": "demo-careem-secret",
            "brandId": "beit-zaatar",
            "branchId": "beit-zaatar-jlt",
            "webhookApiKey": sandbox.careem_webhook_api_key,
            "apiBaseUrl": f"{base}/careem/pos/api/v1",
            "identityBaseUrl": f"{base}/careem",
        },
        "talabat": {
            "username": "demo-talabat-user",
            "password": "demo-talabat-password",
            "pluginSecret": sandbox.talabat_plugin_secret,
            "chainCode": "beit-zaatar",
            "posVendorId": "bz-jlt",
            "globalEntityId": sandbox.talabat_global_entities[0],
            "baseUrl": f"{base}/talabat",
        },
        "deliveroo": {
            "clientId": "demo-deliveroo-client",
            "clientSecret": "demo-deliveroo-secret",
            "webhookSecret": sandbox.deliveroo_webhook_secret,
            "brandId": "beit-zaatar",
            "siteId": "100121",
            "market": sandbox.deliveroo_market,
            "apiBaseUrl": f"{base}/deliveroo",
            "authBaseUrl": f"{base}/deliveroo",
        },
    }


async def onboard_sandbox(sandbox_app: ASGIApp, sandbox: SandboxSettings) -> None:
    """Leave the sandbox as onboarding leaves the platforms: the demo stores exist.

    Careem knows a branch only once the integrator creates it (``PUT /branches/{branch_id}``
    under a brand, PLATFORMS.md 3.1), so the demo brand and branch are created through Careem's
    own API; Careem ops' mapping is implicit in the non-strict sandbox. Talabat's and Deliveroo's
    simulators create vendors and sites on first use. The calls go to ``sandbox_app`` in-process:
    this runs at start-up, before the server listens. Raises ``httpx2.HTTPStatusError`` if the
    sandbox refuses a call.
    """
    careem = demo_connections("http://sandbox", sandbox)["careem"]
    transport = httpx2.ASGITransport(app=sandbox_app)
    async with httpx2.AsyncClient(transport=transport, timeout=10) as http:
        token = await http.post(
            f"{careem['identityBaseUrl']}/token",
            files={
                "client_id": (None, careem["clientId"]),
                "client_secret": (None, careem["clientSecret"]),
                "grant_type": (None, "client_credentials"),
                "scope": (None, "pos"),
            },
            headers={"User-Agent": DEMO_USER_AGENT},
        )
        token.raise_for_status()
        headers = {
            "Authorization": f"Bearer {token.json()['access_token']}",
            "User-Agent": DEMO_USER_AGENT,
        }
        api, brand_id = careem["apiBaseUrl"], careem["brandId"]
        brand = await http.put(
            f"{api}/brands/{brand_id}", json={"name": DEMO_BRAND_NAME}, headers=headers
        )
        brand.raise_for_status()
        branch = await http.put(
            f"{api}/branches/{careem['branchId']}",
            json={"name": DEMO_BRANCH_NAME, "brand_id": brand_id},
            headers=headers,
        )
        branch.raise_for_status()


@dataclass(frozen=True)
class DemoSeed:
    company_id: str
    menu_id: uuid.UUID
    token: str
    platforms: list[str]


async def seed_demo(
    resources: Resources, runtime: PlatformRuntime, sandbox_base: str, sandbox: SandboxSettings
) -> DemoSeed:
    """Create (or refresh) the demo company's menu and connections. Safe to run at every start."""
    auth = AuthContext(user_id=DEMO_USER, company_id=DEMO_COMPANY, role=Role.COMPANY_OWNER)
    async with resources.unit_of_work() as session:
        existing = (
            await session.execute(
                select(Menu).where(
                    Menu.company_id == DEMO_COMPANY, Menu.external_id == DEMO_MENU_EXTERNAL_ID
                )
            )
        ).scalar_one_or_none()
        if existing is None:
            menu = await build_menu_service(session, resources).create_menu(
                auth, MenuCreate(menu=sample_menu(), external_id=DEMO_MENU_EXTERNAL_ID)
            )
            menu_id = menu.id
        else:
            menu_id = existing.id
        connections = ConnectionService(
            ConnectionRepository(session),
            runtime.gateway(resources),
            AuditTrail(session, resources.clock),
            resources.clock,
        )
        platforms = []
        for platform, values in demo_connections(sandbox_base, sandbox).items():
            if platform in runtime.registry:
                await connections.set_connection(auth, platform, values)
                platforms.append(platform)
    token = build_issuer(resources.settings).mint(
        subject=DEMO_USER,
        company_id=DEMO_COMPANY,
        role=Role.COMPANY_OWNER.value,
        now=resources.clock.now(),
        ttl=timedelta(days=7),
    )
    return DemoSeed(company_id=DEMO_COMPANY, menu_id=menu_id, token=token, platforms=platforms)
