"""``MemoryService``: one user's long-term store items — put, get, delete, search, list namespaces — for the routes
(``/v1/store``, the LangGraph API's ``/store``), the SDK and the CLI. Everything goes through the user's
``OwnerStore`` (``chatplane.storage.owner_store``), the same view their graphs get."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from langgraph.store.base import InvalidNamespaceError, Item, SearchItem

from chatplane.config import Settings
from chatplane.core.services import Services
from chatplane.errors import ChatplaneError, ConfigError, InvalidInputError, ItemNotFoundError
from chatplane.failures import as_chatplane_error
from chatplane.llm.embeddings import open_embeddings
from chatplane.storage.database import Database
from chatplane.storage.items import ItemStore
from chatplane.storage.owner_store import OwnerStore, StoreLimits

T = TypeVar("T")


@asynccontextmanager
async def open_store(settings: Settings, db: Database) -> AsyncIterator[tuple[ItemStore, StoreLimits]]:
    """The server's store on ``db``, with the embeddings ``settings`` name, and the limits every user's view has."""
    async with open_embeddings(settings) as embeddings:
        limits = StoreLimits(
            max_value_bytes=settings.store_max_value_bytes,
            max_depth=settings.store_max_namespace_depth,
            max_limit=settings.store_max_search_limit,
        )
        yield ItemStore(db, embeddings=embeddings, max_vectors=settings.store_vector_cache), limits


def scoped_store(store: ItemStore, limits: StoreLimits) -> Callable[[str], OwnerStore]:
    """``owner`` → their view of ``store`` (what each of their runs' graphs gets)."""
    return lambda owner: OwnerStore(store, owner, limits)


class MemoryService:
    def __init__(self, services: Services, owner: str) -> None:
        if services.store is None:
            raise ConfigError("This server has no store.")
        self.owner = owner
        self.store: OwnerStore = services.store_for(owner)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except ChatplaneError:
            raise
        except InvalidNamespaceError:  # LangGraph's own check of the labels, before the store's
            raise InvalidInputError(
                "A namespace label must not be empty or contain '.' or NUL, nor start with 'langgraph'."
            ) from None
        except Exception as exc:  # the database or the embeddings endpoint
            raise as_chatplane_error(exc, "store") from exc

    async def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        *,
        index: bool | list[str] | None = None,
        ttl: float | None = None,
    ) -> None:
        """Store (or replace) an item; ``index``: False not to embed it, or the value's fields to embed."""
        await self._call(self.store.aput(namespace, key, value, index=None if index is True else index, ttl=ttl))

    async def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item:
        item = await self._call(self.store.aget(namespace, key, refresh_ttl=refresh_ttl))
        if item is None:
            raise ItemNotFoundError()
        return item

    async def delete(self, namespace: tuple[str, ...], key: str) -> None:
        await self._call(self.store.adelete(namespace, key))

    async def search(
        self,
        namespace_prefix: tuple[str, ...],
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Items under the prefix: the closest to ``query`` first, or the newest first without one."""
        return await self._call(
            self.store.asearch(
                namespace_prefix, query=query, filter=filter, limit=limit, offset=offset, refresh_ttl=refresh_ttl
            )
        )

    async def list_namespaces(
        self,
        *,
        prefix: tuple[str, ...] | None = None,
        suffix: tuple[str, ...] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        return await self._call(
            self.store.alist_namespaces(prefix=prefix, suffix=suffix, max_depth=max_depth, limit=limit, offset=offset)
        )
