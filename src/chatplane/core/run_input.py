"""What a run is asked to do (``RunInput``), checked against its graph before anything is stored.

A run takes one of: ``message`` (the shorthand for a graph whose state has ``messages``: one user message),
``input`` (the graph's input, checked against its input schema) or ``command`` (LangGraph's ``Command``: ``resume``
a paused run, ``update`` the state, ``goto`` a node). Besides, ``context`` (the graph's context schema; merged over
its assistant's), ``config`` (``configurable``, tags, metadata, a recursion limit — never the server's keys),
``stream_mode`` (LangGraph's stream modes, passed on as events), ``stream_subgraphs`` and ``metadata`` (the run's
own, kept on its record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from chatplane.agents.inputs import check_context, check_input
from chatplane.agents.registry import Durability, Served
from chatplane.agents.run_config import check_config
from chatplane.core.targets import AssistantSettings
from chatplane.errors import InvalidInputError

_COMMAND_KEYS = ("resume", "update", "goto")
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RunInput:
    message: str | None = None
    input: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: tuple[str, ...] = ()
    stream_subgraphs: bool = False
    interrupt_before: tuple[str, ...] | Literal["*"] = ()
    interrupt_after: tuple[str, ...] | Literal["*"] = ()
    durability: Durability | None = None

    @property
    def plain(self) -> bool:
        """Only a message: what needs no look at the graph when every graph served keeps messages."""
        return self.message is not None and self == RunInput(message=self.message)

    @property
    def goes_on(self) -> bool:
        """None of ``message``, ``input``, ``command``: the run goes on from the thread's checkpoint (a breakpoint)."""
        return self.message is None and self.input is None and self.command is None

    @property
    def resumes_only(self) -> bool:
        """A ``command`` that only resumes (a run waiting on the thread takes it)."""
        return self.command is not None and set(self.command) == {"resume"} and self.input is None

    def checked(self, served: Served, assistant: AssistantSettings, *, max_recursion: int) -> dict[str, Any]:
        """What the run record keeps of it (``Run.input``), or ``InvalidInputError`` naming the field."""
        given = [name for name in ("message", "input", "command") if getattr(self, name) is not None]
        if len(given) > 1:
            raise InvalidInputError(
                "A run takes one of `message`, `input` or `command` (none: it goes on from the "
                "thread's checkpoint, as after a breakpoint)."
            )
        graph = served.sample
        out: dict[str, Any] = {}
        if self.message is not None and not served.has_messages:
            raise InvalidInputError("`message`: this graph's state has no `messages`; send its `input` instead.")
        if self.input is not None:
            out["input"] = check_input(graph, self.input)
        if self.command is not None:
            out["command"] = _check_command(graph, self.command)
        if self.context is not None:
            if served.kind is not None:
                raise InvalidInputError("`context`: this agent takes its settings from its assistant, not per run.")
            check_context(graph, {**assistant.context, **self.context})
            out["context"] = self.context
        if self.config is not None:
            out["config"] = check_config(self.config, max_recursion=max_recursion)
        if self.metadata is not None:
            out["metadata"] = _check_metadata(self.metadata)
        if self.stream_mode:
            out["stream_mode"] = list(dict.fromkeys(self.stream_mode))
        if self.stream_subgraphs:
            out["stream_subgraphs"] = True
        for field in ("interrupt_before", "interrupt_after"):
            nodes = getattr(self, field)
            if nodes:
                out[field] = _check_nodes(graph, nodes, field)
        if self.durability is not None:
            out["durability"] = self.durability
        if len(json.dumps(out, default=str)) > _MAX_BYTES:
            raise InvalidInputError("The run's input is larger than 1 MB.")
        return out


def _check_metadata(metadata: Any) -> dict[str, Any]:
    """The run's own metadata (LangGraph's ``Run.metadata``): kept on its record, given back as it came."""
    if not isinstance(metadata, dict):
        raise InvalidInputError("`metadata` must be an object.")
    return dict(metadata)


def _check_nodes(graph: Any, nodes: Any, field: str) -> Any:
    """Static breakpoint nodes: ``"*"`` (every node) or names of the graph's nodes."""
    if nodes == "*":
        return "*"
    if not isinstance(nodes, list | tuple) or not all(isinstance(n, str) for n in nodes):
        raise InvalidInputError(f'`{field}` must be "*" or a list of node names.')
    for node in nodes:
        if node not in graph.nodes or node.startswith("__"):
            raise InvalidInputError(f"`{field}`: this graph has no node {node!r}.")
    return list(nodes)


def _check_command(graph: Any, command: Any) -> dict[str, Any]:
    if not isinstance(command, dict) or not command:
        raise InvalidInputError("`command` must be an object with `resume`, `update` or `goto`.")
    for key in command:
        if key not in _COMMAND_KEYS:
            raise InvalidInputError(f"`command.{key}` is not supported; a command takes resume, update, goto.")
    update = command.get("update")
    if update is not None:
        if not isinstance(update, dict):
            raise InvalidInputError("`command.update` must be an object of state keys.")
        for key in update:
            if key not in graph.channels:
                raise InvalidInputError(f"`command.update.{key}` is not a key of this graph's state.")
    goto = command.get("goto")
    if goto is not None:
        nodes = [goto] if isinstance(goto, str) else goto
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise InvalidInputError("`command.goto` must be a node name or a list of node names.")
        for node in nodes:
            if node not in graph.nodes or node.startswith("__"):
                raise InvalidInputError(f"`command.goto`: this graph has no node {node!r}.")
    return dict(command)
