"""The agent kinds chatplane can run, by name. Each module exports ``build_<kind>(model, *, settings, ...)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatplane.agents import chat


@dataclass(frozen=True)
class AgentKind:
    name: str
    description: str
    build: Callable[..., Any]


AGENTS: dict[str, AgentKind] = {
    "chat": AgentKind("chat", chat.DESCRIPTION, chat.build_chat),
}

__all__ = ["AGENTS", "AgentKind"]
