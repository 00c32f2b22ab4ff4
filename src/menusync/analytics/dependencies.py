"""Builder of the analytics service, shared by the API and anything else that reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.analytics.repository import AnalyticsRepository
from menusync.analytics.service import AnalyticsService
from menusync.core.dependencies import ResourcesDep, SessionDep
from menusync.core.resources import Resources


def build_analytics_service(session: AsyncSession, resources: Resources) -> AnalyticsService:
    return AnalyticsService(AnalyticsRepository(session), resources.clock)


async def get_analytics_service(session: SessionDep, resources: ResourcesDep) -> AnalyticsService:
    # Analytics only read: on SQLite, a deferred transaction takes no write lock, so a report
    # neither waits for the worker's writes nor holds them up (no effect on PostgreSQL).
    await session.connection(execution_options={"sqlite_begin": "DEFERRED"})
    return build_analytics_service(session, resources)


AnalyticsServiceDep = Annotated[AnalyticsService, Depends(get_analytics_service)]
