"""Every agent kind's graph, built once when the agent starts (``AgentGraphs``).

Each kind of ``AGENTS`` is compiled on the server's model with the storage's checkpointer (``of``), without one for
stateless runs (``stateless``), and on another model from ``CHATPLANE_MODEL_ALLOWLIST`` when a thread chose one
(built on first use, then kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models import BaseChatModel

from chatplane.agents import AGENTS
from chatplane.agents.context import ContextBudgetMiddleware, context_budget
from chatplane.agents.run_config import check_config
from chatplane.config import Settings
from chatplane.errors import ConfigError, InvalidInputError
from chatplane.llm import make_chat_model
from chatplane.storage.transcript import Transcript


class AgentGraphs:
    def __init__(
        self,
        model: BaseChatModel,
        settings: Settings,
        *,
        checkpointer: Any,
        transcript: Transcript,
        tools: Sequence[Any],
    ) -> None:
        self.settings = settings
        self._checkpointer = checkpointer
        self._transcript = transcript
        self._tools = list(tools)
        self.default = self._build_all(model, checkpointer)
        """Each kind's graph on the server's model, with the checkpointer."""
        self._stateless = self._build_all(model, None)  # nothing of the conversation is kept
        self._on_other_models: dict[tuple[str, str], Any] = {}

    def of(self, agent: str, model: str | None = None) -> Any:
        """The graph of ``agent`` on ``model`` (the server's by default; others from the allowlist, built once)."""
        if model is None or model == self.settings.model:
            return self.default[agent]
        if model not in self.settings.model_allowlist:
            raise ConfigError(f"Model {model!r} is not in CHATPLANE_MODEL_ALLOWLIST.")
        key = (agent, model)
        if key not in self._on_other_models:
            chosen = make_chat_model(model, self.settings)
            self._on_other_models[key] = self._build(agent, chosen, self._checkpointer)
        return self._on_other_models[key]

    # --- GraphCatalog (chatplane.agents.catalog) ---------------------------------------------------------------------
    def graph_ids(self) -> list[str]:
        return list(AGENTS)

    def description(self, graph_id: str) -> str:
        return AGENTS[graph_id].description

    def check_assistant(self, graph_id: str, *, config: dict[str, Any], context: dict[str, Any]) -> None:
        if graph_id not in AGENTS:
            raise InvalidInputError(f"Unknown graph {graph_id!r}; known: {', '.join(AGENTS)}.")
        check_config(config, max_recursion=self.settings.recursion_limit)
        if not isinstance(context, dict):
            raise InvalidInputError("`context` must be an object.")

    def stateless(self, agent: str) -> Any:
        """The graph of ``agent`` without a checkpointer (OpenAI-compatible requests without a thread)."""
        return self._stateless[agent]

    def _build_all(self, model: BaseChatModel, checkpointer: Any) -> dict[str, Any]:
        middleware = self._middleware(stateful=checkpointer is not None)  # one set, shared by the kinds
        return {name: self._build(name, model, checkpointer, middleware) for name in AGENTS}

    def _build(self, agent: str, model: BaseChatModel, checkpointer: Any, middleware: list[Any] | None = None) -> Any:
        stateful = checkpointer is not None
        return AGENTS[agent].build(
            model,
            settings=self.settings,
            checkpointer=checkpointer,
            tools=self._tools,
            middleware=middleware if middleware is not None else self._middleware(stateful=stateful),
            transcript=self._transcript if stateful else None,
        )

    def _middleware(self, *, stateful: bool) -> list[Any]:
        transcript = self._transcript if stateful else None
        middleware: list[Any] = [ContextBudgetMiddleware(context_budget(self.settings), transcript)]
        if self.settings.sensitive_tools and stateful:
            # A human approves these tool calls before they run (the pause needs a checkpointer to resume from).
            middleware.append(HumanInTheLoopMiddleware(interrupt_on=dict.fromkeys(self.settings.sensitive_tools, True)))
        return middleware
