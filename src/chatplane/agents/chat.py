"""The chat agent: the seed's single model node, as a LangChain 1.x agent without tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langgraph.types import Checkpointer

from chatplane.agents.middleware import ModelErrorMiddleware
from chatplane.config import Settings

DESCRIPTION = "A plain conversation with the model, remembered per session."


def build_chat(
    model: BaseChatModel,
    *,
    settings: Settings,
    checkpointer: Checkpointer = None,
    middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
) -> Any:
    """Compile the chat graph: system prompt + history → model → answer, checkpointed per thread."""
    return create_agent(
        model,
        tools=[],
        system_prompt=settings.system_prompt,
        middleware=[ModelErrorMiddleware(settings.model_timeout_s), *middleware],
        checkpointer=checkpointer,
        name="chat",
    )
