"""Tool calling on the bundled embedded model (SmolLM2-135M), which never starts a tool call on its own.

``EmbeddedToolCallMiddleware`` decides for it, per turn and per agent:

* the agent's **first** model call of a turn (no tool call of its own since the user's message) must call a tool:
  the assistant turn is prefilled with ``<tool_call>`` and ``tool_choice="required"`` is sent, so llama.cpp's
  grammar makes the model write a call to one of the offered tools with schema-valid arguments (one call: any
  further ones are dropped; if the call still comes out garbled, the model is asked again for a plain answer);
* **later** calls are offered no tools, so the model answers from the tool's result (stopped if it starts writing a
  tool call as text; an answer left empty that way is replaced by the tool's result, stated plainly).

One tool call per turn, then an answer: the most a 135M model can do reliably. Requests to any other model (a
fallback, say) pass through untouched. It also drops tool calls the model garbled (``invalid_tool_calls``) from
what is sent back to llama.cpp, which would otherwise refuse the whole conversation on every later turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from chatplane.agents.middleware import ModelHandler, keep_first_tool_call
from chatplane.config import Settings
from chatplane.llm import parse_model_id
from chatplane.llm.local import TOOL_CALL_END, TOOL_CALL_PREFILL


def needs_forced_tool_calls(settings: Settings) -> bool:
    """True for the bundled embedded model (a GGUF of the user's has its own template and habits)."""
    provider, _ = parse_model_id(settings.model)
    return provider == "local" and not settings.local_model_path


def without_invalid_tool_calls(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """``messages`` minus garbled tool calls and the error messages that answered them."""
    invalid = {c.get("id") for m in messages if isinstance(m, AIMessage) for c in m.invalid_tool_calls}
    if not invalid:
        return list(messages)
    out: list[AnyMessage] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.invalid_tool_calls:
            message = message.model_copy(update={"invalid_tool_calls": []})
        elif isinstance(message, ToolMessage) and message.tool_call_id in invalid:
            continue
        out.append(message)
    return out


def answer_or_result(response: ModelResponse[Any], messages: Sequence[AnyMessage]) -> ModelResponse[Any]:
    """``response``, or — when the model wrote nothing (it tried to call a tool as text) — the tool's result."""
    last_result = next((m for m in reversed(messages) if isinstance(m, ToolMessage)), None)
    result = []
    for message in response.result:
        if isinstance(message, AIMessage) and not message.text.strip() and not message.tool_calls and last_result:
            message = message.model_copy(
                update={"content": f"The {last_result.name} tool returned: {last_result.text}"}
            )
        result.append(message)
    return ModelResponse(result=result, structured_response=response.structured_response)


def called_a_tool_this_turn(messages: Sequence[AnyMessage], agent_name: str) -> bool:
    """Whether ``agent_name`` already made a tool call since the user's last message."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return False
        if isinstance(message, AIMessage) and message.tool_calls and message.name == agent_name:
            return True
    return False


class EmbeddedToolCallMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Forces one tool call, then an answer, on ``model`` (the embedded model) in the agent ``agent_name``."""

    def __init__(self, model: BaseChatModel, agent_name: str) -> None:
        super().__init__()
        self.model = model
        self.agent_name = agent_name

    @property
    def name(self) -> str:
        return f"{type(self).__name__}[{self.agent_name}]"

    async def awrap_model_call(self, request: ModelRequest[Any], handler: ModelHandler) -> ModelResponse[Any]:
        if request.model is not self.model or not request.tools:
            return await handler(request)
        messages = without_invalid_tool_calls(request.messages)
        if called_a_tool_this_turn(messages, self.agent_name):
            return await self._answer(request, messages, handler)
        settings = {**request.model_settings, "stop": [TOOL_CALL_END], "parallel_tool_calls": False}
        forced = request.override(
            messages=[*messages, AIMessage(TOOL_CALL_PREFILL)], tool_choice="required", model_settings=settings
        )
        response = keep_first_tool_call(await handler(forced))
        if any(isinstance(m, AIMessage) and m.tool_calls for m in response.result):
            return response
        # The call came out garbled (invalid arguments): answer without tools rather than not at all.
        return await self._answer(request, messages, handler)

    async def _answer(
        self, request: ModelRequest[Any], messages: list[AnyMessage], handler: ModelHandler
    ) -> ModelResponse[Any]:
        settings = {**request.model_settings, "stop": [TOOL_CALL_PREFILL.strip()]}
        answer = await handler(request.override(messages=messages, tools=[], tool_choice=None, model_settings=settings))
        return answer_or_result(answer, messages)
