"""Base classes for API schemas: camelCase JSON, unknown fields refused, and pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Request and response bodies: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, from_attributes=True
    )


class Pagination(ApiModel):
    page: int
    limit: int
    total: int
    total_pages: int

    @classmethod
    def of(cls, page: int, limit: int, total: int) -> Pagination:
        return cls(page=page, limit=limit, total=total, total_pages=(total + limit - 1) // limit)


class PageParams(ApiModel):
    page: int = 1
    limit: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def page_params(
    page: Annotated[int, Query(ge=1, le=100_000, description="1-based page number")] = 1,
    limit: Annotated[int, Query(ge=1, le=100, description="Rows per page (1..100)")] = 20,
) -> PageParams:
    return PageParams(page=page, limit=limit)


class Message(ApiModel):
    success: bool = True
    message: str


SuccessFlag = Annotated[bool, Field(description="Always true on a 2xx answer")]
