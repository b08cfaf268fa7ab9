"""The ReAct agent: the model calls tools in a loop until it can answer (LangChain's ``create_agent``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.types import Checkpointer

from chatplane.agents.context import TranscriptMiddleware
from chatplane.agents.embedded import EmbeddedToolCallMiddleware, needs_tool_routing
from chatplane.agents.guards import guard_middleware, split_model_call_layers
from chatplane.agents.kind import AgentKind
from chatplane.config import Settings
from chatplane.storage.transcript import Transcript

DESCRIPTION = "An assistant that uses tools (calculator, clock, documents, web, MCP servers) to answer."
NAME = "react"
TOOL_PROMPT = (
    "Use a tool whenever it helps: the calculator for any arithmetic, current_time for dates and times, "
    "search_docs for questions about the local documents. Base your answer on what the tools return."
)


def tool_system_prompt(settings: Settings, tools: Sequence[BaseTool]) -> str:
    """The system prompt, with ``TOOL_PROMPT`` when there are tools — except on a local model, whose tool routing
    (``chatplane.agents.embedded``) offers the tools itself: told to "use a tool whenever it helps", Qwen2.5-Coder-1.5B
    routed every general-knowledge question to a tool (3 of 3 right without it, 0 of 5 with it)."""
    if not tools or needs_tool_routing(settings):
        return settings.system_prompt
    return f"{settings.system_prompt}\n\n{TOOL_PROMPT}"


def agent_middleware(
    model: BaseChatModel,
    settings: Settings,
    name: str,
    middleware: Sequence[AgentMiddleware[Any, Any, Any]],
    *,
    transcript: Transcript | None = None,
) -> list[AgentMiddleware[Any, Any, Any]]:
    """The guards, with the embedded model's tool routing (``chatplane.agents.embedded``) and the caller's
    ``middleware`` inside them — but model-call-only layers (and the ``transcript``'s archiving, outermost)
    outside them, in the same span."""
    own: list[AgentMiddleware[Any, Any, Any]] = []
    if needs_tool_routing(settings):
        own.append(EmbeddedToolCallMiddleware(model, name, max_tool_calls=settings.local_tool_calls_per_turn))
    layers, rest = split_model_call_layers(middleware)
    archiving = [TranscriptMiddleware(transcript)] if transcript else []
    return guard_middleware(settings, extra=[*own, *rest], outer=[*archiving, *layers])


def build_react(
    model: BaseChatModel,
    *,
    settings: Settings,
    checkpointer: Checkpointer = None,
    tools: Sequence[BaseTool] = (),
    middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
    transcript: Transcript | None = None,
) -> Any:
    """Compile the ReAct graph over ``tools`` (usually what ``chatplane.tools.open_tools`` gives)."""
    return create_agent(
        model,
        tools=list(tools),
        system_prompt=tool_system_prompt(settings, tools),
        middleware=agent_middleware(model, settings, NAME, middleware, transcript=transcript),
        checkpointer=checkpointer,
        name=NAME,
    )


AGENT = AgentKind("react", DESCRIPTION, build_react)
"""The react agent, as a project file names it (``chatplane.agents.react:AGENT``)."""
