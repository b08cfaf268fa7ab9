"""A chatplane agent kind: a graph built on the server's parts (model, tools, checkpointer, transcript) for each
assistant's settings, rather than compiled by its author. The built-in agents are kinds; a project file may name one
too (``"helpdesk": "chatplane.agents.react:AGENT"``) to serve it under its own id.

``build(model, *, settings, checkpointer=None, tools=(), middleware=(), transcript=None)`` returns a compiled
LangGraph graph. What an assistant of a kind may set is ``AgentContext``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class AgentKind:
    name: str
    description: str
    build: Callable[..., Any]
    nested: bool = False
    """Its graph runs other graphs (the multi agent's specialists), whose steps are streamed too."""


class AgentContext(BaseModel):
    """What an assistant of a chatplane agent kind sets (its ``context``); unset: the server's settings."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None, max_length=200, description="A model id: the server's, or one of CHATPLANE_MODEL_ALLOWLIST."
    )
    system_prompt: str | None = Field(None, max_length=20_000, description="The instructions the model gets.")
    tools: list[str] | None = Field(
        None, max_length=64, description="The tools it may use, by name (see GET /agents); default: all."
    )
    approve_tools: list[str] | None = Field(
        None, max_length=64, description="Tools whose calls wait for a human's approval before they run."
    )
    context_budget_tokens: int | None = Field(
        None, ge=256, le=2_000_000, description="The most prompt tokens a model call gets (oldest messages drop)."
    )
    memory: bool = Field(
        False,
        description="Remember the user across threads: tools to save, update, search and forget memories (agents "
        "with tools), and their most relevant memories recalled into each model call (see memory_recall).",
    )
    memory_recall: int | None = Field(
        None,
        ge=0,
        le=20,
        description="With memory on: how many relevant memories each model call gets (default 3; 0 = none).",
    )
