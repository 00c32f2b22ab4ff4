"""FastAPI dependencies for what every router needs: the process resources and a session.

The session dependency owns the request's unit of work: it commits when the endpoint returns and
rolls back when it raises. It runs with ``scope="function"`` so the commit happens *before* the
response is sent (a client that reads right after a 2xx sees the write).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.resources import Resources


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with resources.unit_of_work() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
