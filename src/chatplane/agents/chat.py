"""The chat agent: the seed's single model node, as a LangChain 1.x agent without tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.types import Checkpointer

from chatplane.agents.context import TranscriptMiddleware
from chatplane.agents.guards import model_guard_middleware, split_model_call_layers
from chatplane.agents.kind import AgentKind
from chatplane.config import Settings
from chatplane.storage.transcript import Transcript

DESCRIPTION = "A plain conversation with the model, remembered per session."


def build_chat(
    model: BaseChatModel,
    *,
    settings: Settings,
    checkpointer: Checkpointer = None,
    tools: Sequence[BaseTool] = (),
    middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
    transcript: Transcript | None = None,
) -> Any:
    """Compile the chat graph: system prompt + history → model → answer, checkpointed per thread.

    ``tools`` is accepted (every agent kind is built the same way) and ignored: this agent has none.
    """
    archiving = [TranscriptMiddleware(transcript)] if transcript else []  # outermost: see TranscriptMiddleware
    layers, rest = split_model_call_layers(middleware)
    return create_agent(
        model,
        tools=[],
        system_prompt=settings.system_prompt,
        middleware=[*model_guard_middleware(settings, outer=[*archiving, *layers]), *rest],
        checkpointer=checkpointer,
        name="chat",
    )


AGENT = AgentKind("chat", DESCRIPTION, build_chat)
"""The chat agent, as a project file names it (``chatplane.agents.chat:AGENT``)."""
