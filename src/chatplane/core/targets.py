"""What a thread's runs execute (``RunTargets``): the graph of the thread's assistant, with its settings.

A thread talks to an assistant, named by the thread's ``agent``: a graph id (that graph's default assistant, the
server's settings), a default assistant's id, or the id of an assistant its owner created. Each run resolves it
again, so a run executes the assistant's current version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from langgraph.store.base import BaseStore

from chatplane.agents.catalog import default_assistant_id
from chatplane.agents.registry import GraphRegistry, RunTarget
from chatplane.errors import AssistantNotFoundError, InvalidInputError
from chatplane.storage.runs import Run


class AssistantSettings(Protocol):
    """What a run needs of an assistant (``chatplane.storage.assistants.Assistant``)."""

    @property
    def assistant_id(self) -> str: ...
    @property
    def graph_id(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def context(self) -> dict[str, Any]: ...


AssistantLookup = Callable[[str, str], Awaitable[AssistantSettings | None]]
"""``(assistant_id, owner)`` → the owner's assistant (or a project default), None if there is none."""


class RunTargets:
    def __init__(
        self,
        graphs: GraphRegistry,
        assistants: AssistantLookup | None = None,
        *,
        store_for: Callable[[str], BaseStore] | None = None,
    ) -> None:
        """``store_for``: an owner's view of the long-term store, given to their runs' graphs (LangGraph's
        ``get_store()`` / ``runtime.store``)."""
        self.graphs = graphs
        self._store_for = store_for
        self._assistants = assistants
        self._defaults = {default_assistant_id(graph_id): graph_id for graph_id in graphs.graph_ids()}
        self._defaults_resolved: dict[tuple[str, str | None, bool], RunTarget] = {}

    def graph_id_of_default(self, ref: str) -> str | None:
        """The graph id ``ref`` names without any lookup: a graph id, or a default assistant's id."""
        return ref if ref in self.graphs else self._defaults.get(ref)

    async def thread_agent(self, ref: str, owner: str) -> str:
        """What a new thread of ``owner``'s that talks to ``ref`` records: a graph id for a default assistant (by
        either name), else the id of one of ``owner``'s assistants; ``InvalidInputError`` for anything else."""
        graph_id = self.graph_id_of_default(ref)
        if graph_id is not None:
            return graph_id
        if await self.assistant(ref, owner) is None:
            raise InvalidInputError(f"Unknown agent or assistant {ref!r}; see GET /agents or /v1/assistants.")
        return ref

    async def assistant(self, ref: str, owner: str) -> AssistantSettings | None:
        """The assistant ``ref`` names for ``owner`` (a graph id or a default's id: the graph's default)."""
        graph_id = self.graph_id_of_default(ref)
        if graph_id is not None:
            return _Default(default_assistant_id(graph_id), graph_id, {}, {})
        return await self._assistants(ref, owner) if self._assistants is not None else None

    async def of(
        self,
        ref: str,
        owner: str,
        *,
        model: str | None = None,
        run_config: dict[str, Any] | None = None,
        run_context: dict[str, Any] | None = None,
        stateful: bool = True,
    ) -> RunTarget:
        """What a run of ``owner``'s assistant ``ref`` executes; ``model``: the thread's choice of model."""
        if model == self.graphs.settings.model:
            model = None  # the server's: the assistant's own choice (if any) stands
        key = (ref, model, stateful)
        cached = self._defaults_resolved.get(key)
        if cached is not None and not run_context and not (run_config and cached.served.factory is not None):
            return cached  # a default assistant on the server's settings: nothing changes between its runs
        assistant = await self.assistant(ref, owner)
        if assistant is None:
            raise AssistantNotFoundError()
        if assistant.graph_id not in self.graphs:
            raise InvalidInputError(f"The assistant's graph {assistant.graph_id!r} is no longer served.")
        served = self.graphs.get(assistant.graph_id)
        context: dict[str, Any] | None = None
        if served.kind is None and (assistant.context or run_context):
            context = {**assistant.context, **(run_context or {})}
        config = {**assistant.config}
        if run_config and served.factory is not None:
            config = {
                **config,
                "configurable": {**config.get("configurable", {}), **run_config.get("configurable", {})},
            }
        target = await self.graphs.target(
            assistant.graph_id, context=assistant.context, model=model, config=config, stateful=stateful
        )
        resolved = replace(target, assistant_id=assistant.assistant_id, config=assistant.config, context=context)
        if self.graph_id_of_default(ref) is not None and served.factory is None and context is None:
            self._defaults_resolved[key] = resolved
        return resolved

    async def for_run(self, run: Run) -> RunTarget:
        target = await self.of(
            run.agent,
            run.owner,
            model=run.model,
            run_config=run.input.get("config"),
            run_context=run.input.get("context"),
        )
        return self.with_store(target, run.owner)

    def with_store(self, target: RunTarget, owner: str) -> RunTarget:
        """``target`` with ``owner``'s view of the store: a copy of its graph (as the registry gives graphs the
        checkpointer), so a graph's ``get_store()`` reaches their items and no one else's."""
        if self._store_for is None:
            return target
        graph = target.graph.copy(update={"store": self._store_for(owner), "auto_validate": False})
        return replace(target, graph=graph)


class _Default:
    __slots__ = ("assistant_id", "config", "context", "graph_id")

    def __init__(self, assistant_id: str, graph_id: str, config: dict[str, Any], context: dict[str, Any]) -> None:
        self.assistant_id, self.graph_id, self.config, self.context = assistant_id, graph_id, config, context
