"""The agent kinds chatplane can run, by name.

Each module exports ``build_<kind>(model, *, settings, checkpointer=None, tools=(), middleware=(), transcript=None)``
returning a compiled LangGraph graph, and a ``DESCRIPTION``. ``tools`` is what ``chatplane.tools.open_tools`` yields
(the chat agent ignores it); ``middleware`` is added inside each agent's guards (``chatplane.agents.guards``); with a
``transcript`` (``chatplane.storage.transcript``), earlier turns leave the checkpoint at the start of each run.

Run a graph with ``{"recursion_limit": settings.recursion_limit}`` in its config, inside
``chatplane.agents.limits.translate_run_limits()`` (or map errors with ``as_run_limit_error``): a run that needs
more model calls, tool calls or steps than allowed then ends with ``RunLimitError``, its thread still usable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatplane.agents import chat, multi, react


@dataclass(frozen=True)
class AgentKind:
    name: str
    description: str
    build: Callable[..., Any]
    nested: bool = False
    """Its graph runs other graphs (the multi agent's specialists), whose steps are streamed too."""


AGENTS: dict[str, AgentKind] = {
    "chat": AgentKind("chat", chat.DESCRIPTION, chat.build_chat),
    "react": AgentKind("react", react.DESCRIPTION, react.build_react),
    "multi": AgentKind("multi", multi.DESCRIPTION, multi.build_multi, nested=True),
}

__all__ = ["AGENTS", "AgentKind"]
