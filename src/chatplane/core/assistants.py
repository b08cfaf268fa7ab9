"""A user's assistants, and the graphs' default assistants everyone sees (``AssistantService``).

Each graph the server serves has a default assistant. It is not stored: it is made up from the catalog — id
``default_assistant_id(graph_id)`` (LangGraph's uuid5), no owner, version 1, named after the graph, empty config
and context — so it changes with the project file, never through the API (``AssistantReadOnlyError``). A user's
own assistants are stored (``AssistantStore``), checked against their graph (``GraphCatalog.check_assistant``)
before anything is stored, and capped per user (``max_assistants_per_user``).

An assistant is named (``resolve``) by a graph id (its default), a default's id, or an id of the owner's own, looked
up in that order; so an id a user chooses may not be a graph's or a default's.
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from chatplane.agents.catalog import default_assistant_id
from chatplane.assistant_schemas import MAX_PAGE
from chatplane.core.checks import check_id
from chatplane.core.services import Services
from chatplane.errors import AssistantExistsError, AssistantNotFoundError, AssistantReadOnlyError, InvalidInputError
from chatplane.storage.assistants import Assistant, IfExists


class AssistantService:
    """``owner``'s assistants and the defaults: another user's assistant is a 404 here, whatever it is."""

    def __init__(self, services: Services, owner: str) -> None:
        self._services = services
        self._catalog = services.catalog
        self._store = services.storage.assistants
        self.owner = owner

    def defaults(self) -> builtins.list[Assistant]:
        """Each graph's default assistant, in the catalog's order."""
        return [self._default(graph_id) for graph_id in self._catalog.graph_ids()]

    async def create(
        self,
        graph_id: str,
        *,
        assistant_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        if_exists: IfExists = "raise",
    ) -> Assistant:
        """Version 1 of a new assistant of ``graph_id`` (named after the graph unless ``name`` is given), its id
        chosen by the server unless ``assistant_id`` is. An id that is taken — one of the owner's, a graph's or a
        default's — is ``AssistantExistsError``, or with ``if_exists="do_nothing"`` that assistant as it is."""
        _storable(
            graph_id=graph_id, name=name, description=description, config=config, context=context, metadata=metadata
        )
        self._catalog.check_assistant(graph_id, config=config or {}, context=context or {})
        if assistant_id is not None:
            check_id("assistant_id", assistant_id)
            taken_by = self._default_graph(assistant_id)
            if taken_by is not None:
                if if_exists == "do_nothing":
                    return self._default(taken_by)
                raise AssistantExistsError(f"{assistant_id!r} names the {taken_by!r} graph's default assistant.")
        return await self._store.create(
            self.owner,
            graph_id,
            assistant_id=assistant_id,
            name=name,
            description=description,
            config=config,
            context=context,
            metadata=metadata,
            if_exists=if_exists,
            max_per_owner=self._services.settings.max_assistants_per_user or None,
        )

    async def resolve(self, ref: str, version: int | None = None) -> Assistant:
        """The assistant ``ref`` names — a graph id (its default), a default's id, or one of the owner's — at its
        current version or at ``version``; else ``AssistantNotFoundError``."""
        graph_id = self._default_graph(ref)
        if graph_id is not None:
            if version not in (None, 1):
                raise AssistantNotFoundError("A default assistant has only version 1.")
            return self._default(graph_id)
        check_id("assistant_id", ref)
        if version is None:
            return await self._store.get(ref, self.owner)
        return await self._store.get_version(ref, self.owner, version)

    async def search(
        self,
        *,
        graph_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> builtins.list[Assistant]:
        """The defaults (in the catalog's order), then the owner's assistants (newest first): of ``graph_id``,
        with each key of ``metadata`` equal in theirs, ``name`` a part of theirs (ignoring case), as asked."""
        _check_page(limit, offset)
        _storable(graph_id=graph_id, metadata=metadata, name=name)
        defaults = [a for a in self.defaults() if _matches(a, graph_id, metadata, name)]
        page = defaults[offset : offset + limit]
        if len(page) < limit:
            page += await self._store.search(
                self.owner,
                graph_id=graph_id,
                metadata=metadata,
                name=name,
                limit=limit - len(page),
                offset=max(0, offset - len(defaults)),
            )
        return page

    async def update(
        self,
        assistant_id: str,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Assistant:
        """A new version (the latest's number plus one) of the owner's assistant, made current: the current one
        with the fields given — ``metadata`` merged key by key, the others replaced — checked against its graph."""
        self._writable(assistant_id)
        _storable(
            graph_id=graph_id, name=name, description=description, config=config, context=context, metadata=metadata
        )
        return await self._store.update(
            assistant_id,
            self.owner,
            graph_id=graph_id,
            name=name,
            description=description,
            config=config,
            context=context,
            metadata=metadata,
            check=self._check,
        )

    async def delete(self, assistant_id: str) -> None:
        """The owner's assistant with all its versions."""
        self._writable(assistant_id)
        await self._store.delete(assistant_id, self.owner)

    async def versions(self, assistant_id: str, *, limit: int = 10, offset: int = 0) -> builtins.list[Assistant]:
        """The assistant's versions, newest first (a default has one)."""
        _check_page(limit, offset)
        graph_id = self._default_graph(assistant_id)
        if graph_id is not None:
            return [self._default(graph_id)][offset : offset + limit]
        check_id("assistant_id", assistant_id)
        return await self._store.versions(assistant_id, self.owner, limit=limit, offset=offset)

    async def set_version(self, assistant_id: str, version: int) -> Assistant:
        """Pin ``version`` of the owner's assistant as its current one (checked against its graph as it is now);
        later updates still number from the latest."""
        self._writable(assistant_id)
        if version < 1:
            raise InvalidInputError("`version` must be 1 or more.")
        return await self._store.set_version(assistant_id, self.owner, version, check=self._check)

    def _default(self, graph_id: str) -> Assistant:
        return Assistant(
            assistant_id=default_assistant_id(graph_id),
            graph_id=graph_id,
            owner=None,
            name=graph_id,
            description=self._catalog.description(graph_id) or None,
            config={},
            context={},
            metadata={"created_by": "system"},
            version=1,
            created_at=0.0,
            updated_at=0.0,
        )

    def _default_graph(self, ref: str) -> str | None:
        """The graph whose default ``ref`` names (its id or the default's), if it names one."""
        graph_ids = self._catalog.graph_ids()
        if ref in graph_ids:
            return ref
        return next((g for g in graph_ids if default_assistant_id(g) == ref), None)

    def _writable(self, assistant_id: str) -> None:
        """One of the owner's ids, for a change: not a default's (or a graph's), and well formed."""
        if self._default_graph(assistant_id) is not None:
            raise AssistantReadOnlyError()
        check_id("assistant_id", assistant_id)

    def _check(self, assistant: Assistant) -> None:
        self._catalog.check_assistant(assistant.graph_id, config=assistant.config, context=assistant.context)


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInputError(f"`limit` must be from 1 to {MAX_PAGE} and `offset` 0 or more.")


def _storable(**fields: Any) -> None:
    """What a user sends is kept as JSON and compared as JSON (PostgreSQL's jsonb): no NaN or infinities (not
    JSON), no NUL characters (no PostgreSQL text holds one)."""
    for field, value in fields.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"`{field}` must be JSON, without NaN or infinities.") from exc
        if _has_nul(value):
            raise InvalidInputError(f"`{field}` must not contain NUL characters.")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _matches(assistant: Assistant, graph_id: str | None, metadata: dict[str, Any] | None, name: str | None) -> bool:
    """``AssistantStore.search``'s filters, for an assistant in hand (a default)."""
    if graph_id is not None and assistant.graph_id != graph_id:
        return False
    if name and name.lower() not in assistant.name.lower():
        return False
    have = assistant.metadata
    return all(key in have and _json(have[key]) == _json(value) for key, value in (metadata or {}).items())
