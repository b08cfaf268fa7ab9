"""Tool use that works on small local models: route, then arguments, then an answer from the result.

Small models (SmolLM2, Qwen2.5-Coder 0.5B/1.5B) given tools the usual way call them when none is needed, write the
call as bare or fenced JSON that llama.cpp does not turn into ``tool_calls``, or call again instead of answering.
``EmbeddedToolCallMiddleware`` replaces that one open-ended call with small, constrained steps, for every
``local:`` model (bundled or a GGUF of the user's):

1. **Route.** The model picks ``answer`` or one tool, as ``{"action": "<choice>"}`` constrained by a JSON schema
   with the choices as an enum (llama.cpp turns the schema into a grammar, so the reply is always one of them);
   the options come first, the user's message last (``route_instruction``).
2. **Arguments.** For a tool, the model writes its arguments as JSON constrained by the tool's own argument schema;
   the reply is read leniently (``chatplane.agents.tool_json``: tags, fences or bare JSON — what a server without
   grammar support may send back) and validated against the schema. The agent gets an ``AIMessage`` with that one
   tool call, and runs the tool as usual.
3. **Answer.** Once the agent has made ``local_tool_calls_per_turn`` calls this turn (or the route says
   ``answer``), the model answers with no tools offered, streamed; after a tool result, the user's question is
   restated below it. Bounded: a model that writes another call as text instead is cut off there, and the tool's
   result is stated plainly as its answer.

Steps 1 and 2 are internal: their tokens are not streamed to the client (LangGraph's ``nostream`` tag), and their
token usage is added to the tool-calling message. Every step shares the conversation as its prompt prefix
(instructions are appended after it), so llama.cpp's prompt cache serves all three, and the next turn.

The multi-agent's supervisor routes with the same steps, choosing among its agents' *tools* (a hand-off lists them
in its metadata) rather than among agents: it then hands the request to the agent that owns the chosen tool, naming
the tool, and that agent goes straight to the arguments. Qwen2.5-Coder-1.5B picks the right tool far more often than
the right agent from a description (1 of 4 questions of the evaluation's routing category were handed right).
Requests to any other model (a fallback, say) pass through untouched. Garbled tool calls
(``invalid_tool_calls``) are dropped from what is sent back to llama.cpp, which would refuse the conversation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.constants import TAG_NOSTREAM
from pydantic import BaseModel, ValidationError

from chatplane.agents.handoff import AGENT_TOOLS, USE_TOOL
from chatplane.agents.middleware import ModelHandler
from chatplane.agents.tool_json import call_arguments, looks_like_a_tool_call
from chatplane.config import Settings
from chatplane.llm import parse_model_id
from chatplane.llm.local import TOOL_CALL_PREFILL

ANSWER = "answer"
ROUTE_TOKENS = 24
ARGUMENT_TOKENS = 160
ANSWER_STOPS = [TOOL_CALL_PREFILL.strip(), '{"name":']
"""Where an answer that turns into a tool call written as text is cut (``answer_or_result`` then states the result)."""


def needs_tool_routing(settings: Settings) -> bool:
    """True for every embedded (``local:``) model."""
    provider, _ = parse_model_id(settings.model)
    return provider == "local"


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


def this_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The messages after the user's last one."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return list(messages[i + 1 :])
    return list(messages)


def tool_calls_this_turn(messages: Sequence[AnyMessage], agent_name: str) -> int:
    """How many tool-calling messages ``agent_name`` sent since the user's last message."""
    return sum(1 for m in this_turn(messages) if isinstance(m, AIMessage) and m.tool_calls and m.name == agent_name)


def called_a_tool_this_turn(messages: Sequence[AnyMessage], agent_name: str) -> bool:
    return tool_calls_this_turn(messages, agent_name) > 0


def answer_or_result(response: ModelResponse[Any], messages: Sequence[AnyMessage]) -> ModelResponse[Any]:
    """``response``, or — when the model wrote no answer but a tool call as text (or nothing) — this turn's last
    tool result, stated plainly."""
    last_result = next((m for m in reversed(this_turn(messages)) if isinstance(m, ToolMessage)), None)
    result = []
    for message in response.result:
        if (
            isinstance(message, AIMessage)
            and not message.tool_calls
            and last_result is not None
            and (not message.text.strip() or looks_like_a_tool_call(message.text))
        ):
            message = message.model_copy(
                update={"content": f"The {last_result.name} tool returned: {last_result.text}"}
            )
        result.append(message)
    return ModelResponse(result=result, structured_response=response.structured_response)


def first_line(text: str) -> str:
    return (text or "").strip().split("\n")[0].strip()


def last_question(messages: Sequence[AnyMessage]) -> str:
    return next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")


@dataclass(frozen=True)
class Choice:
    """One option of the route: ``name`` (what the model picks, described by ``about``) calls ``tool``; for a
    hand-off, ``via`` is the agent's tool it was picked for."""

    name: str
    about: str
    tool: BaseTool
    via: str | None = None


def route_choices(tools: Sequence[BaseTool]) -> list[Choice]:
    """The tools, except that a hand-off to an agent with tools stands for each of them (``AGENT_TOOLS``)."""
    choices: dict[str, Choice] = {}
    for t in tools:
        offered = (t.metadata or {}).get(AGENT_TOOLS) or []
        for name, about in offered:
            choices.setdefault(name, Choice(name, first_line(about), t, name))
        if not offered:
            choices.setdefault(t.name, Choice(t.name, first_line(t.description), t))
    return list(choices.values())


def route_instruction(choices: Sequence[Choice], question: str, after_result: bool) -> str:
    """The routing question: the options, then the user's message restated, last, just before the choice —
    small models keep to it better than to "the last message" several turns up, and Qwen2.5-Coder-1.5B chose
    right for 15 of 16 questions with the message after the options (11 of 16 with it before them)."""
    already = ", or what the tool results above already tell" if after_result else ""
    options = [f"- {c.name}: {c.about}" for c in choices]
    options.append(
        f"- {ANSWER}: no tool is needed: greetings, general knowledge, facts from this conversation{already}."
    )
    return (
        "Options:\n"
        + "\n".join(options)
        + f'\n\nThe user\'s message: "{question}"\n'
        + 'Which option handles it best? Reply with JSON only: {"action": "<option>"}.'
    )


def route_schema(choices: Sequence[Choice]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": [*(c.name for c in choices), ANSWER]}},
        "required": ["action"],
        "additionalProperties": False,
    }


def answer_instruction(question: str) -> str:
    return f'Using the results above, answer the user\'s message: "{question}"'


def argument_schema(tool: BaseTool) -> dict[str, Any]:
    """The JSON schema of ``tool``'s arguments — for a hand-off, without ``use_tool``: the route fills that in."""
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        raw = schema
    elif isinstance(schema, type) and issubclass(schema, BaseModel):
        raw = schema.model_json_schema()
    else:  # a pydantic v1 model
        raw = convert_to_openai_tool(tool)["function"]["parameters"]
    out = {k: v for k, v in raw.items() if k not in ("title", "description")} or {"type": "object"}
    if AGENT_TOOLS in (tool.metadata or {}) and USE_TOOL in (out.get("properties") or {}):
        out["properties"] = {k: v for k, v in out["properties"].items() if k != USE_TOOL}
        out["required"] = [k for k in out.get("required") or [] if k != USE_TOOL]
    return out


def handed_tool(messages: Sequence[AnyMessage], agent_name: str) -> str | None:
    """The tool the hand-off that started ``agent_name``'s part of this turn names, if any."""
    turn = this_turn(messages)
    last = turn[-1] if turn else None
    if not isinstance(last, ToolMessage) or not isinstance(last.artifact, dict):
        return None
    handoff = last.artifact.get("handoff")
    if not isinstance(handoff, dict) or handoff.get("to") != agent_name:
        return None
    chosen = handoff.get(USE_TOOL)
    return chosen if isinstance(chosen, str) else None


def argument_instruction(tool: BaseTool, question: str) -> str:
    fields = []
    for name, spec in (argument_schema(tool).get("properties") or {}).items():
        kind = spec.get("type", "value") if isinstance(spec, dict) else "value"
        about = first_line(spec.get("description", "")) if isinstance(spec, dict) else ""
        fields.append(f"{name} ({kind}{': ' + about if about else ''})")
    return (
        f'Call the tool {tool.name} ({first_line(tool.description)}) for the user\'s message: "{question}". '
        f"Write its arguments as a JSON object with: {', '.join(fields) or 'no fields'}."
    )


def valid_arguments(tool: BaseTool, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """``arguments`` if they fit ``tool``'s schema (required fields present, types right), else ``None``."""
    schema = tool.tool_call_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            schema.model_validate(arguments)
        except ValidationError:
            return None
        known = set(schema.model_fields)
        return {k: v for k, v in arguments.items() if k in known}
    required = argument_schema(tool).get("required") or []
    return arguments if all(k in arguments for k in required) else None


class EmbeddedToolCallMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Route → arguments → answer (see the module docstring) on ``model`` (the embedded model) in ``agent_name``."""

    def __init__(self, model: BaseChatModel, agent_name: str, *, max_tool_calls: int = 1) -> None:
        super().__init__()
        self.model = model
        self.agent_name = agent_name
        self.max_tool_calls = max_tool_calls

    @property
    def name(self) -> str:
        return f"{type(self).__name__}[{self.agent_name}]"

    async def awrap_model_call(self, request: ModelRequest[Any], handler: ModelHandler) -> ModelResponse[Any]:
        tools = [t for t in request.tools if isinstance(t, BaseTool)]
        if request.model is not self.model or not tools:
            return await handler(request)
        messages = without_invalid_tool_calls(request.messages)
        made = tool_calls_this_turn(messages, self.agent_name)
        if made < self.max_tool_calls:
            usage: list[UsageMetadata] = []
            choices = route_choices(tools)
            # a hand-off that names one of this agent's tools has made the choice already
            choice = handed_tool(messages, self.agent_name) if made == 0 else None
            if choice is None or choice not in {c.name for c in choices}:
                choice = await self._route(request, messages, choices, after_result=made > 0, usage=usage)
            picked = next((c for c in choices if c.name == choice), None)
            if picked is not None:
                tool = picked.tool
                arguments = await self._arguments(request, messages, tool, usage)
                if arguments is not None:
                    if picked.via is not None:
                        arguments = {**arguments, USE_TOOL: picked.via}
                    call = {"name": tool.name, "args": arguments, "id": f"call_{uuid.uuid4().hex[:24]}"}
                    total = None
                    for u in usage:
                        total = add_usage(total, u)
                    message = AIMessage(content="", tool_calls=[call], name=self.agent_name, usage_metadata=total)
                    return ModelResponse(result=[message])
        return await self._answer(request, messages, handler)

    async def _complete(
        self, request: ModelRequest[Any], messages: list[AnyMessage], instruction: str, schema: dict[str, Any], *,
        max_tokens: int, usage: list[UsageMetadata],
    ) -> str:  # fmt: skip
        """One constrained completion, not streamed to the client: the conversation, then ``instruction``."""
        prompt: list[BaseMessage] = [*messages, HumanMessage(instruction)]
        if request.system_message is not None:
            prompt.insert(0, request.system_message)
        bound = self.model.bind(
            extra_body={"json_schema": schema}, max_completion_tokens=max_tokens, stop=[TOOL_CALL_PREFILL.strip()]
        )
        reply = await bound.ainvoke(prompt, config={"tags": [TAG_NOSTREAM]})
        if isinstance(reply, AIMessage) and reply.usage_metadata:
            usage.append(reply.usage_metadata)
        return reply.text if isinstance(reply, BaseMessage) else str(reply)

    async def _route(
        self, request: ModelRequest[Any], messages: list[AnyMessage], choices: list[Choice], *, after_result: bool,
        usage: list[UsageMetadata],
    ) -> str:  # fmt: skip
        text = await self._complete(
            request, messages, route_instruction(choices, last_question(messages), after_result), route_schema(choices),
            max_tokens=ROUTE_TOKENS, usage=usage,
        )  # fmt: skip
        try:
            choice = json.loads(text).get("action")
        except (ValueError, AttributeError):
            found = call_arguments(text, "")
            choice = found.get("action") if found else None
        return choice if isinstance(choice, str) else ANSWER

    async def _arguments(
        self, request: ModelRequest[Any], messages: list[AnyMessage], tool: BaseTool, usage: list[UsageMetadata]
    ) -> dict[str, Any] | None:
        text = await self._complete(
            request, messages, argument_instruction(tool, last_question(messages)), argument_schema(tool),
            max_tokens=ARGUMENT_TOKENS, usage=usage,
        )  # fmt: skip
        arguments = call_arguments(text, tool.name)
        return valid_arguments(tool, arguments) if arguments is not None else None

    async def _answer(
        self, request: ModelRequest[Any], messages: list[AnyMessage], handler: ModelHandler
    ) -> ModelResponse[Any]:
        settings = {**request.model_settings, "stop": ANSWER_STOPS}
        prompt = messages
        if any(isinstance(m, ToolMessage) for m in this_turn(messages)):
            # Small models shown a tool result tend to call again; restating the question turns them to answering.
            prompt = [*messages, HumanMessage(answer_instruction(last_question(messages)))]
        answer = await handler(request.override(messages=prompt, tools=[], tool_choice=None, model_settings=settings))
        return answer_or_result(answer, messages)
