"""Long-term memory for the built-in agents: an assistant's ``memory`` setting (off by default).

* **Tools** (``memory_tools``): ``save_memory``, ``update_memory``, ``search_memories``, ``forget_memory`` — the
  model keeps facts about the user in the store under the namespace ``("memories",)``, as ``{"content": …}``. Each
  tool reaches the store through LangGraph's runtime (``ToolRuntime.store``): the run's owner's view, so a tool
  call can reach no one else's memories. The chat agent has no tools: it gets recall only.
* **Recall** (``MemoryRecallMiddleware``, ``memory_recall`` > 0): before a model call, the user's memories closest
  in meaning to their latest message are added to the system message — searched once per user message (a ReAct
  loop's later calls reuse it), and at most ``recall_tokens`` of them (a share of the context budget: the history
  fitted by ``ContextBudgetMiddleware`` is counted separately, so the prompt stays within budget plus that share).

The user sees and deletes what was kept through ``/v1/store`` (the web page's Memories panel, ``chatplane memory``).
"""

from __future__ import annotations

import copy
import math
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.tools import ToolRuntime, tool
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool
from langgraph.store.base import BaseStore

from chatplane.errors import ChatplaneError

NAMESPACE = ("memories",)
MEMORY_TOOL_NAMES = ("save_memory", "update_memory", "search_memories", "forget_memory")
RECALL_HEADER = "What you remember about the user (from earlier conversations; use it when relevant):"
_MAX_CONTENT_CHARS = 2_000


def _store(runtime: ToolRuntime) -> BaseStore:
    if runtime.store is None:
        raise ChatplaneError("This run has no store.")
    return runtime.store


def _content(content: str) -> str:
    content = content.strip()
    if not content:
        return ""
    return content[:_MAX_CONTENT_CHARS]


@tool
async def save_memory(content: str, runtime: ToolRuntime) -> str:
    """Remember a lasting fact about the user (a preference, their situation, a decision) for future conversations.
    One fact per call, in a short sentence."""
    text = _content(content)
    if not text:
        return "Nothing to save: the memory is empty."
    key = uuid.uuid4().hex[:12]
    await _store(runtime).aput(NAMESPACE, key, {"content": text})
    return f"Saved memory {key}."


@tool
async def update_memory(key: str, content: str, runtime: ToolRuntime) -> str:
    """Replace the memory with this key (from search_memories) when the fact changed."""
    store = _store(runtime)
    text = _content(content)
    if not text or await store.aget(NAMESPACE, key) is None:
        return f"There is no memory {key!r}." if text else "Nothing to save: the memory is empty."
    await store.aput(NAMESPACE, key, {"content": text})
    return f"Updated memory {key}."


@tool
async def search_memories(query: str, runtime: ToolRuntime) -> str:
    """Find what you remember about the user that relates to the query (keys and contents, closest first)."""
    found = await _store(runtime).asearch(NAMESPACE, query=query[:1000] or None, limit=5)
    if not found:
        return "No memories found."
    return "\n".join(f"{item.key}: {item.value.get('content', '')}" for item in found)


@tool
async def forget_memory(key: str, runtime: ToolRuntime) -> str:
    """Forget the memory with this key (from search_memories), e.g. when the user asks you to."""
    store = _store(runtime)
    if await store.aget(NAMESPACE, key) is None:
        return f"There is no memory {key!r}."
    await store.adelete(NAMESPACE, key)
    return f"Forgot memory {key}."


def memory_tools() -> list[BaseTool]:
    return [save_memory, update_memory, search_memories, forget_memory]


def _system_tokens(text: str) -> int:
    """``count_tokens_approximately([SystemMessage(text)])`` (4 characters a token, the role counted, 3 more a
    message), without building the message: a tenth of the cost, for each recalled line of each turn."""
    return math.ceil((len(text) + len("system")) / 4) + 3


def _with_system_message(request: ModelRequest[Any], system: SystemMessage) -> ModelRequest[Any]:
    """``request.override(system_message=system)`` without its cost: ``override`` rebuilds the request with
    ``dataclasses.replace``, whose every field assignment goes through ``ModelRequest.__setattr__``'s
    DeprecationWarning (nine warnings a call, ~50 µs); a shallow copy with the one field set is the same request."""
    changed = copy.copy(request)
    object.__setattr__(changed, "system_message", system)
    return changed


def _latest_user_message(request: ModelRequest[Any]) -> HumanMessage | None:
    return next((m for m in reversed(request.messages) if isinstance(m, HumanMessage)), None)


class MemoryRecallMiddleware(AgentMiddleware[Any, Any, Any]):
    """Adds the user's most relevant memories to the system message of each model call (see the module)."""

    _CACHED = 256

    def __init__(self, limit: int, recall_tokens: int) -> None:
        super().__init__()
        self.limit = limit
        self.recall_tokens = recall_tokens
        self._recalled: OrderedDict[tuple[str, str], str] = OrderedDict()  # (owner, message id) → recalled text

    async def _recall(self, store: BaseStore, message: HumanMessage) -> str:
        key = (str(getattr(store, "owner", "")), str(message.id or message.text))
        cached = self._recalled.get(key)
        if cached is not None:
            return cached
        found = await store.asearch(NAMESPACE, query=message.text[:1000] or None, limit=self.limit)
        lines: list[str] = []
        used = _system_tokens(RECALL_HEADER)
        for item in found:
            line = f"- {item.value.get('content', '')}"
            used += _system_tokens(line)
            if used > self.recall_tokens:
                break
            lines.append(line)
        text = "\n".join([RECALL_HEADER, *lines]) if lines else ""
        if message.id:
            self._recalled[key] = text
            while len(self._recalled) > self._CACHED:
                self._recalled.popitem(last=False)
        return text

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        store = request.runtime.store
        message = _latest_user_message(request)
        if store is None or message is None or not message.text.strip():
            return await handler(request)
        recalled = await self._recall(store, message)
        if not recalled:
            return await handler(request)
        base = request.system_message.text if request.system_message is not None else ""
        system = SystemMessage(f"{base}\n\n{recalled}" if base else recalled)
        return await handler(_with_system_message(request, system))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        return handler(request)  # the built-in agents run asynchronously (``RunManager``): recall is async only
