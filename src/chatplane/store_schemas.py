"""Request and response bodies of the long-term store (``/v1/store`` and the LangGraph API's ``/store``: the same
shapes, those ``langgraph-sdk``'s ``StoreClient`` sends and reads), shared by the service and the Python client."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Namespace = Annotated[list[str], Field(description="The item's namespace: labels, as you wrote them.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutItemRequest(_Body):
    namespace: Namespace
    key: str = Field(description="The item's key within its namespace.")
    value: dict[str, Any] = Field(description="The item: a JSON object.")
    index: bool | list[str] | None = Field(
        None, description="false: not searchable by meaning; a list: the value's fields to embed; unset: all of it."
    )
    ttl: float | None = Field(None, description="Minutes until the item expires (refreshed as it is read).")


class DeleteItemRequest(_Body):
    namespace: Namespace
    key: str


class SearchItemsRequest(_Body):
    namespace_prefix: Namespace = Field(default_factory=list)
    filter: dict[str, Any] | None = Field(None, description='Fields the value must have: {"field": value} or $eq …')
    limit: int = Field(10, description="At most this many items (the server's CHATPLANE_STORE_MAX_SEARCH_LIMIT).")
    offset: int = 0
    query: str | None = Field(None, description="Rank by closeness in meaning to this text.")
    refresh_ttl: bool | None = None


class ListNamespacesRequest(_Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


class StoreItem(BaseModel):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ScoredItem(StoreItem):
    score: float | None = Field(None, description="Closeness to the query (cosine), when there was one.")


class SearchItemsResponse(BaseModel):
    items: list[ScoredItem]


class ListNamespacesResponse(BaseModel):
    namespaces: list[list[str]]
