"""Every graph the server serves, by id, ready to run (``GraphRegistry``): the built-in agents and the project's own.

Each project-file entry (``chatplane.agents.project``) becomes a ``Served`` graph:

* a chatplane agent kind is built per assistant on the server's parts (``KindGraphs``);
* a compiled graph gets the server's checkpointer (a copy: the author's object is left as it was);
* a ``StateGraph`` is compiled with it;
* a factory is called once at start-up (with an empty config) to check it returns a graph and to learn its schemas,
  then once per run with the run's config, off the event loop if it is synchronous.

A graph chatplane did not build writes a checkpoint per step (durability ``"async"``): a run taken over after its
worker died continues after the last finished step rather than redoing steps that may have had side effects.
The built-in kinds keep the server's durability (``CHATPLANE_CHECKPOINT_DURABILITY``, one write per run).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from pydantic import ValidationError

from chatplane.agents.graphs import KindGraphs
from chatplane.agents.inputs import check_context, jsonschema_of, message_channels
from chatplane.agents.kind import AgentContext, AgentKind
from chatplane.agents.project import GraphSource
from chatplane.agents.run_config import check_config
from chatplane.config import Settings
from chatplane.errors import ConfigError, InvalidInputError

Durability = Literal["exit", "async", "sync"]


@dataclass(frozen=True)
class Served:
    """One graph the server serves."""

    graph_id: str
    source: str
    description: str
    kind: AgentKind | None  # a chatplane agent kind, built per assistant
    compiled: Any  # with the server's checkpointer (None for kinds and factories)
    stateless: Any  # the same without one
    factory: Callable[..., Any] | None
    sample: Any  # a compiled graph of this entry, for its schemas
    nested: bool
    durability: Durability
    has_messages: bool = False
    """Its state keeps ``messages``: it takes ``message``, and has a chat history."""


@dataclass(frozen=True)
class RunTarget:
    """What a run executes: the graph, and what its assistant adds to every run (its ``config``; its ``context``
    for a graph that takes one — a kind's is in how it was built)."""

    served: Served
    graph: Any
    model: str = ""
    """The model its usage is counted under: a kind's (``provider:model``), or ``graph:<id>`` for a graph that
    calls models of its own choosing."""
    assistant_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] | None = None

    @property
    def graph_id(self) -> str:
        return self.served.graph_id


def _compile(target: Any, checkpointer: Any) -> Any:
    if isinstance(target, StateGraph):
        return target.compile(checkpointer=checkpointer)
    return target.copy(update={"checkpointer": checkpointer})


def _is_graph(value: Any) -> bool:
    return isinstance(value, Pregel | StateGraph)


async def _call_factory(factory: Callable[..., Any], config: dict[str, Any]) -> Any:
    args = (config,) if inspect.signature(factory).parameters else ()
    if inspect.iscoroutinefunction(factory):
        return await factory(*args)
    made = await asyncio.to_thread(factory, *args)
    return await made if inspect.isawaitable(made) else made


class GraphRegistry:
    """The served graphs (and ``GraphCatalog`` for assistants and runs)."""

    def __init__(self, settings: Settings, kinds: KindGraphs | None, checkpointer: Any) -> None:
        """``kinds``: what builds agent kinds (None: only graphs chatplane does not build, as in tests)."""
        self.settings = settings
        self._kinds = kinds
        self._checkpointer = checkpointer
        self._served: dict[str, Served] = {}
        self._plain: dict[tuple[str, str | None, bool], RunTarget] = {}
        self.all_keep_messages = True
        """Every graph served keeps messages (a plain message needs no look at the thread's graph)."""

    @classmethod
    async def open(
        cls, sources: Sequence[GraphSource], settings: Settings, kinds: KindGraphs | None, checkpointer: Any
    ) -> GraphRegistry:
        registry = cls(settings, kinds, checkpointer)
        for source in sources:
            registry._served[source.graph_id] = await registry._serve(source)
        registry.all_keep_messages = all(served.has_messages for served in registry._served.values())
        return registry

    async def _serve(self, source: GraphSource) -> Served:
        target, what = source.target, f"graph {source.graph_id!r} ({source.source})"
        kind = target if isinstance(target, AgentKind) else None
        factory = None
        if kind is not None:
            sample = self.kinds.graph(kind, AgentContext())
        elif _is_graph(target):
            sample = _compile(target, self._checkpointer)
        elif callable(target):
            factory = target
            try:
                made = await _call_factory(target, {"configurable": {}})
            except Exception as exc:
                raise ConfigError(f"{what}: the factory failed with {type(exc).__name__}.") from None
            if not _is_graph(made):
                raise ConfigError(f"{what}: the factory returned {type(made).__name__}, not a graph.")
            sample = _compile(made, self._checkpointer)
        else:
            raise ConfigError(f"{what} is a {type(target).__name__}: not a graph, a StateGraph or a factory.")
        plain = kind is None and factory is None
        return Served(
            graph_id=source.graph_id,
            source=source.source,
            description=source.description or (kind.description if kind else ""),
            kind=kind,
            compiled=sample if plain else None,
            stateless=_compile(target, None) if plain else None,
            factory=factory,
            sample=sample,
            nested=kind.nested if kind else False,
            durability=self.settings.checkpoint_durability if kind else "async",
            has_messages=bool(message_channels(sample)),
        )

    @property
    def kinds(self) -> KindGraphs:
        if self._kinds is None:
            raise ConfigError("This registry builds no agent kinds.")
        return self._kinds

    # --- GraphCatalog -----------------------------------------------------------------------------------------------
    def graph_ids(self) -> list[str]:
        return list(self._served)

    def description(self, graph_id: str) -> str:
        return self.get(graph_id).description

    def check_assistant(self, graph_id: str, *, config: dict[str, Any], context: dict[str, Any]) -> None:
        served = self.get(graph_id)
        check_config(config, max_recursion=self.settings.recursion_limit)
        if served.kind is not None:
            self.kinds.check(self.agent_context(context))
        else:
            check_context(served.sample, context)

    # --- reading ----------------------------------------------------------------------------------------------------
    def get(self, graph_id: str) -> Served:
        served = self._served.get(graph_id)
        if served is None:
            raise InvalidInputError(f"Unknown graph {graph_id!r}; known: {', '.join(self._served)}.")
        return served

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self._served

    def all(self) -> list[Served]:
        return list(self._served.values())

    def schemas(self, graph_id: str) -> dict[str, Any]:
        """The graph's JSON schemas: ``input``, ``output``, ``state``, ``context`` (an assistant's, for a kind)."""
        served = self.get(graph_id)
        graph = served.sample
        context = AgentContext.model_json_schema() if served.kind else jsonschema_of(graph, "context")
        return {
            "input": jsonschema_of(graph, "input"),
            "output": jsonschema_of(graph, "output"),
            "state": jsonschema_of(graph, "state"),
            "context": context,
        }

    @staticmethod
    def agent_context(context: dict[str, Any] | None) -> AgentContext:
        try:
            return AgentContext.model_validate(context or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"])
            raise InvalidInputError(f"`context.{loc}`: {first['msg']}.") from None

    # --- running ----------------------------------------------------------------------------------------------------
    async def target(
        self,
        graph_id: str,
        *,
        context: dict[str, Any] | None = None,
        model: str | None = None,
        config: dict[str, Any] | None = None,
        stateful: bool = True,
    ) -> RunTarget:
        """The graph a run of ``graph_id`` executes. ``context``: for a kind, the assistant's settings (``model``
        overrides its model: the thread's choice); ``config``: the run's, for a factory."""
        served = self.get(graph_id)
        if served.kind is not None and not context:  # the server's settings: built once, looked up once
            key = (graph_id, model, stateful)
            plain = self._plain.get(key)
            if plain is None:
                chosen = AgentContext(model=model)
                graph = self.kinds.graph(served.kind, chosen, stateful=stateful)
                plain = self._plain[key] = RunTarget(served, graph, model or self.settings.model)
            return plain
        if served.kind is not None:
            chosen = self.agent_context(context)
            if model is not None:
                chosen = chosen.model_copy(update={"model": model})
            graph = self.kinds.graph(served.kind, chosen, stateful=stateful)
            return RunTarget(served, graph, chosen.model or self.settings.model)
        own = f"graph:{graph_id}"
        if served.factory is not None:
            made = await _call_factory(served.factory, config or {"configurable": {}})
            if not _is_graph(made):
                raise ConfigError(f"Graph {graph_id!r}: its factory returned {type(made).__name__}, not a graph.")
            return RunTarget(served, _compile(made, self._checkpointer if stateful else None), own)
        return RunTarget(served, served.compiled if stateful else served.stateless, own)
