"""``AsyncClient``'s methods for the long-term store (memories) and deleting everything of yours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from chatplane.client._base import (
    ClientBase,
)
from chatplane.store_schemas import ListNamespacesResponse, ScoredItem, SearchItemsResponse, StoreItem


class AsyncStoreMethods(ClientBase):
    """Mixed into ``AsyncClient``, which sends the requests."""

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    # --- the long-term store (memories) ---------------------------------------------------------------------------
    async def put_item(
        self,
        namespace: Sequence[str],
        key: str,
        value: Mapping[str, Any],
        *,
        index: bool | list[str] | None = None,
        ttl: float | None = None,
    ) -> None:
        """Store an item (yours only); ``index=False``: not searchable by meaning; ``ttl``: minutes."""
        body = {"namespace": list(namespace), "key": key, "value": dict(value), **self._given(index=index, ttl=ttl)}
        self._raise_for_status(await self._request("PUT", "/v1/store/items", json=body))

    async def get_item(self, namespace: Sequence[str], key: str) -> StoreItem:
        return self._parse(
            await self._request("GET", "/v1/store/items", params=self._item_params(namespace, key)), StoreItem
        )

    async def delete_item(self, namespace: Sequence[str], key: str) -> None:
        body = {"namespace": list(namespace), "key": key}
        self._raise_for_status(await self._request("DELETE", "/v1/store/items", json=body))

    async def search_items(
        self,
        namespace_prefix: Sequence[str] = (),
        *,
        query: str | None = None,
        filter: Mapping[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[ScoredItem]:
        """Your items under the prefix: closest in meaning to ``query`` first, else newest first."""
        body = self._search_body(namespace_prefix, query, filter, limit, offset)
        return self._parse(await self._request("POST", "/v1/store/items/search", json=body), SearchItemsResponse).items

    async def list_namespaces(self, prefix: Sequence[str] | None = None, *, limit: int = 100) -> list[list[str]]:
        body = {"limit": limit, **self._given(prefix=list(prefix) if prefix else None)}
        return self._parse(
            await self._request("POST", "/v1/store/namespaces", json=body), ListNamespacesResponse
        ).namespaces

    async def purge_my_data(self) -> dict[str, int]:
        """Delete everything of yours on the server (threads, runs, assistants, memories …): what went, by kind."""
        response = await self._request("DELETE", "/v1/users/me/data")
        self._raise_for_status(response)
        return dict(response.json()["deleted"])
