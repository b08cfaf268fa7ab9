"""The long-term store, yours only: ``/v1/store/...`` here, and the same routes at ``/store/...`` for LangGraph's
clients (``chatplane.service.langgraph.store``), with the shapes ``langgraph-sdk``'s ``StoreClient`` uses:

=======================================  =================================================================
``PUT    {prefix}/items``                store (or replace) an item → 204
``GET    {prefix}/items``                ``?namespace=a.b&key=k`` → the item, or 404
``DELETE {prefix}/items``                ``{"namespace", "key"}`` → 204 (whether or not it existed)
``POST   {prefix}/items/search``         by namespace prefix, filter, and meaning (``query``) → ``{"items"}``
``POST   {prefix}/namespaces``           your namespaces → ``{"namespaces"}``
=======================================  =================================================================

Every namespace is yours: it is stored under your user and read back exactly as you wrote it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from langgraph.store.base import Item, SearchItem

from chatplane.schemas import ErrorBody
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.store_schemas import (
    DeleteItemRequest,
    ListNamespacesRequest,
    ListNamespacesResponse,
    PutItemRequest,
    ScoredItem,
    SearchItemsRequest,
    SearchItemsResponse,
    StoreItem,
)

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (401, 404, 422, 429, 502, 503)}


def as_item(item: Item) -> StoreItem:
    return StoreItem(
        namespace=list(item.namespace),
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def as_scored(item: SearchItem) -> ScoredItem:
    return ScoredItem(**as_item(item).model_dump(), score=item.score)


async def put_item(body: PutItemRequest, agent: AgentDep, user: CurrentUser) -> Response:
    """Store an item under your namespace (replacing one with the same key); indexed for search by meaning
    unless ``index`` is false."""
    memories = agent.for_user(user.id).memories
    await memories.put(tuple(body.namespace), body.key, body.value, index=body.index, ttl=body.ttl)
    return Response(status_code=204)


async def get_item(
    agent: AgentDep,
    user: CurrentUser,
    namespace: Annotated[str, Query(description="The namespace's labels joined with '.'.")],
    key: Annotated[str, Query()],
    refresh_ttl: Annotated[bool | None, Query()] = None,
) -> StoreItem:
    """One of your items; 404 if there is none (or it expired)."""
    memories = agent.for_user(user.id).memories
    labels = tuple(namespace.split(".")) if namespace else ()
    return as_item(await memories.get(labels, key, refresh_ttl=refresh_ttl))


async def delete_item(body: DeleteItemRequest, agent: AgentDep, user: CurrentUser) -> Response:
    """Forget an item (204 whether or not there was one)."""
    await agent.for_user(user.id).memories.delete(tuple(body.namespace), body.key)
    return Response(status_code=204)


async def search_items(body: SearchItemsRequest, agent: AgentDep, user: CurrentUser) -> SearchItemsResponse:
    """Your items under a namespace prefix, matching ``filter``: the closest in meaning to ``query`` first, or
    the most recently updated first without one."""
    found = await agent.for_user(user.id).memories.search(
        tuple(body.namespace_prefix),
        query=body.query,
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        refresh_ttl=body.refresh_ttl,
    )
    return SearchItemsResponse(items=[as_scored(item) for item in found])


async def list_namespaces(body: ListNamespacesRequest, agent: AgentDep, user: CurrentUser) -> ListNamespacesResponse:
    """Your namespaces (those holding an item), optionally under a prefix / ending with a suffix (``*``
    matches any label), cut to ``max_depth`` labels."""
    found = await agent.for_user(user.id).memories.list_namespaces(
        prefix=tuple(body.prefix) if body.prefix else None,
        suffix=tuple(body.suffix) if body.suffix else None,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return ListNamespacesResponse(namespaces=[list(namespace) for namespace in found])


def store_router(prefix: str, tags: list[str]) -> APIRouter:
    """The store's routes under ``prefix`` (``/v1/store`` or ``/store``)."""
    router = APIRouter(prefix=prefix, tags=list(tags), responses=_ERRORS)
    router.add_api_route("/items", put_item, methods=["PUT"], status_code=204)
    router.add_api_route("/items", get_item, methods=["GET"], response_model=StoreItem)
    router.add_api_route("/items", delete_item, methods=["DELETE"], status_code=204)
    router.add_api_route("/items/search", search_items, methods=["POST"], response_model=SearchItemsResponse)
    router.add_api_route("/namespaces", list_namespaces, methods=["POST"], response_model=ListNamespacesResponse)
    return router


router = store_router("/v1/store", ["store"])
