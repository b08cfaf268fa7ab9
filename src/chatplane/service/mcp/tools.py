"""The assistants a caller may use, as MCP tools; calling one is a run on a thread of the caller's.

A tool is named after its assistant: a graph's id for a graph's default assistant (``chat``, ``react`` …), the
assistant's id for one of the caller's own. Only assistants of graphs that keep messages are tools (a tool takes a
message). A call without ``thread`` continues the MCP session's conversation with that assistant: a thread derived
from (caller, session, assistant), created at the first call, so no other caller or session can reach it; with
``thread``, one of the caller's own threads that talks to that assistant.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import types

from chatplane.agent import ProductionAgent, raise_if_unsuccessful
from chatplane.assistant_schemas import MAX_PAGE
from chatplane.core import UserServices
from chatplane.errors import ChatplaneError, InvalidInputError, ThreadNotFoundError
from chatplane.service.auth import User, session_thread_id

TOOL_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "description": "What to say to the assistant."},
        "thread": {
            "type": "string",
            "description": "Continue this chatplane thread of yours (one that talks to this assistant). "
            "Leave it out to continue this MCP session's conversation with the assistant.",
        },
    },
    "required": ["message"],
    "additionalProperties": False,
}
TOOL_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "description": "The assistant's answer."},
        "thread_id": {"type": "string", "description": "The chatplane thread the conversation is kept in."},
        "run_id": {"type": "string", "description": "The run that answered."},
    },
    "required": ["answer", "thread_id", "run_id"],
}

RunGate = Callable[[User], Awaitable[None]]
"""Raises (``RateLimitedError``) unless the caller may start another run now."""


async def assistant_tools(agent: ProductionAgent, user: User) -> list[types.Tool]:
    """The graphs' default assistants, then the caller's own, as tools (only those that keep messages)."""
    catalog = agent.services.catalog
    tools = []
    for assistant in await agent.for_user(user.id).assistants.search(limit=MAX_PAGE):
        if assistant.graph_id not in catalog or not catalog.get(assistant.graph_id).has_messages:
            continue
        if assistant.is_default:
            name = assistant.graph_id
            about = catalog.description(assistant.graph_id) or f"chatplane's {name} agent."
        else:
            name = assistant.assistant_id
            about = assistant.description or f"{assistant.name}: an assistant of the {assistant.graph_id} graph."
        description = f"{about} Send it a message; the conversation goes on across calls in this session."
        tools.append(
            types.Tool(
                name=name,
                title=assistant.name,
                description=description,
                inputSchema=TOOL_INPUT,
                outputSchema=TOOL_OUTPUT,
            )
        )
    return tools


async def call_assistant(
    agent: ProductionAgent, user: User, session_id: str, name: str, arguments: dict[str, Any], gate: RunGate
) -> types.CallToolResult:
    """Send ``arguments["message"]`` to the assistant ``name`` and wait for its answer. Every refusal — bad
    arguments, an unknown tool, another user's thread, a limit, a failed run — is a tool error with chatplane's
    message (never an exception's text)."""
    try:
        message, thread = _arguments(arguments)
        mine = agent.for_user(user.id)
        assistant = await _tool_assistant(agent, mine, name)
        await gate(user)
        if thread:
            thread_id = thread
        elif session_id:
            thread_id = session_thread_id(user, f"mcp\x00{session_id}\x00{assistant}")
        else:  # a client that keeps no session: a conversation of one call (``thread`` continues it)
            thread_id = str(uuid.uuid4())
        run = await mine.runs.send(
            thread_id,
            message,
            multitask="enqueue",
            stream_tokens=False,
            agent=assistant,
            create_as=None if thread else assistant,
        )
        last, answer = await mine.runs.outcome(run)
        if last is not None:
            raise_if_unsuccessful(last)
    except ThreadNotFoundError:
        return _error("not_found", "`thread`: no such thread of yours.")
    except ChatplaneError as exc:
        return _error(exc.code, exc.message)
    text = str(answer["content"]) if answer else ""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structuredContent={"answer": text, "thread_id": thread_id, "run_id": run.run_id},
    )


def _arguments(arguments: dict[str, Any]) -> tuple[str, str | None]:
    unknown = sorted(set(arguments) - {"message", "thread"})
    if unknown:
        raise InvalidInputError(f"Unknown argument `{unknown[0][:40]}`: send `message` and, optionally, `thread`.")
    message, thread = arguments.get("message"), arguments.get("thread")
    if not isinstance(message, str) or not message.strip():
        raise InvalidInputError("`message` must be a non-empty string.")
    if thread is not None and (not isinstance(thread, str) or not thread):
        raise InvalidInputError("`thread` must be a thread id (a string).")
    return message, thread


async def _tool_assistant(agent: ProductionAgent, mine: UserServices, name: str) -> str:
    """What a thread of the tool ``name`` records as its agent (a graph id, or the caller's assistant's id)."""
    unknown = InvalidInputError(f"No tool {name[:128]!r}: list the tools to see the assistants you may use.")
    try:
        assistant = await mine.assistants.resolve(name)
    except ChatplaneError:
        raise unknown from None
    catalog = agent.services.catalog
    if assistant.graph_id not in catalog or not catalog.get(assistant.graph_id).has_messages:
        raise unknown
    return assistant.graph_id if assistant.is_default else assistant.assistant_id


def _error(code: str, message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"{code}: {message}")], isError=True)
