"""Agent kinds built on the server's parts, for each assistant's settings (``KindGraphs``).

A kind (``chatplane.agents.kind``) is compiled on the model, tools, system prompt and budget an assistant's context
chooses (the server's by default), with the storage's checkpointer and transcript — or without them, for stateless
runs. The server's own settings give the default build, made at start-up; every other is built on first use and
kept (up to ``_KEPT`` of them, least recently used out).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from chatplane.agents.context import ContextBudgetMiddleware, context_budget
from chatplane.agents.kind import AgentContext, AgentKind
from chatplane.agents.memory import MemoryRecallMiddleware, memory_tools
from chatplane.config import Settings
from chatplane.errors import InvalidInputError
from chatplane.llm import make_chat_model
from chatplane.storage.transcript import Transcript

_KEPT = 128
DEFAULT_RECALL = 3
"""Memories recalled into each model call of an assistant with ``memory`` on, unless it sets ``memory_recall``."""
RECALL_SHARE = 8
"""Recalled memories take at most this fraction (1/8) of the context budget, on top of the history it holds."""


class KindGraphs:
    def __init__(
        self,
        model: BaseChatModel,
        settings: Settings,
        *,
        checkpointer: Any,
        transcript: Transcript,
        tools: Sequence[BaseTool],
    ) -> None:
        self.settings = settings
        self._model = model
        self._checkpointer = checkpointer
        self._transcript = transcript
        self.tools = list(tools)
        self._models: dict[str, BaseChatModel] = {settings.model: model}
        self._built: OrderedDict[tuple[str, str, bool], Any] = OrderedDict()

    def tool_names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    def check(self, context: AgentContext) -> None:
        """``InvalidInputError`` naming the field unless the server can build a kind with ``context``."""
        model = context.model
        if model is not None and model != self.settings.model and model not in self.settings.model_allowlist:
            raise InvalidInputError("`context.model` must be the server's model or one of CHATPLANE_MODEL_ALLOWLIST.")
        known = set(self.tool_names())
        for field in ("tools", "approve_tools"):
            for name in getattr(context, field) or ():
                if name not in known:
                    raise InvalidInputError(f"`context.{field}`: there is no tool {name!r} (see GET /agents).")

    def graph(self, kind: AgentKind, context: AgentContext, *, stateful: bool = True) -> Any:
        """``kind`` built for ``context``: with the checkpointer and transcript if ``stateful``."""
        key = (kind.name, context.model_dump_json(exclude_none=True), stateful)
        graph = self._built.get(key)
        if graph is None:
            self.check(context)
            graph = self._built[key] = self._build(kind, context, stateful)
            while len(self._built) > _KEPT:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(key)
        return graph

    def _build(self, kind: AgentKind, context: AgentContext, stateful: bool) -> Any:
        settings = self.settings
        if context.system_prompt is not None:
            settings = settings.model_copy(update={"system_prompt": context.system_prompt})
        tools = self.tools
        if context.tools is not None:
            tools = [tool for tool in self.tools if tool.name in context.tools]
        if context.memory:
            tools = [*tools, *memory_tools()]
        return kind.build(
            self._model_for(context.model or settings.model),
            settings=settings,
            checkpointer=self._checkpointer if stateful else None,
            tools=tools,
            middleware=self._middleware(context, stateful=stateful),
            transcript=self._transcript if stateful else None,
        )

    def _model_for(self, model_id: str) -> BaseChatModel:
        if model_id not in self._models:
            self._models[model_id] = make_chat_model(model_id, self.settings)
        return self._models[model_id]

    def _middleware(self, context: AgentContext, *, stateful: bool) -> list[Any]:
        transcript = self._transcript if stateful else None
        budget = context.context_budget_tokens or context_budget(self.settings)
        middleware: list[Any] = [ContextBudgetMiddleware(budget, transcript)]
        recall = DEFAULT_RECALL if context.memory_recall is None else context.memory_recall
        if context.memory and recall:
            middleware.insert(0, MemoryRecallMiddleware(recall, recall_tokens=max(64, budget // RECALL_SHARE)))
        approve = context.approve_tools if context.approve_tools is not None else self.settings.sensitive_tools
        if approve and stateful:
            # A human approves these tool calls before they run (the pause needs a checkpointer to resume from).
            middleware.append(HumanInTheLoopMiddleware(interrupt_on=dict.fromkeys(approve, True)))
        return middleware
