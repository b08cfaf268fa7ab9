"""Hand-offs between agents of one graph: a tool the supervisor calls, answered with a LangGraph ``Command``.

``transfer_to_<agent>(task)`` ends the supervisor's turn and sends the conversation to ``<agent>``, a sibling node
of the parent graph (``Command(graph=Command.PARENT, goto=<agent>)``). The update carries the supervisor's
tool-calling ``AIMessage`` — it lives only in the supervisor's subgraph until then — and the ``ToolMessage`` that
answers it, together, so the parent thread never holds a tool call without its result. This is the pattern
``langgraph-supervisor`` packages, written out here because that package is not a dependency.

A hand-off may also name the one of the agent's tools to use (``use_tool``): the embedded model's routing
(``chatplane.agents.embedded``) lets the supervisor choose among the agents' tools — listed in the hand-off tool's
``metadata[AGENT_TOOLS]`` — as a single agent would, and the agent then calls that tool without choosing again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.types import Command

from chatplane.agents.middleware import ModelHandler, keep_first_tool_call

HANDOFF_PREFIX = "transfer_to_"
AGENT_TOOLS = "agent_tools"
"""Key of a hand-off tool's ``metadata``: ``[(name, description), …]`` of the agent's own tools."""
USE_TOOL = "use_tool"
"""The hand-off's optional argument naming the agent's tool to use; also a key of its ``artifact["handoff"]``."""


def handoff_tool_name(agent: str) -> str:
    return f"{HANDOFF_PREFIX}{agent}"


def make_handoff_tool(
    agent: str, description: str, *, source: str = "supervisor", tools: Sequence[BaseTool] = ()
) -> BaseTool:
    """The tool that hands the conversation from ``source`` to ``agent`` (whose tools are ``tools``) with a task."""
    own = {t.name for t in tools}

    @tool(handoff_tool_name(agent), description=f"Hand the request to the {agent} agent: {description}")
    async def handoff(task: str, runtime: ToolRuntime[Any, Any], use_tool: str = "") -> Command[Any]:
        """``task``: what the agent should do, self-contained; ``use_tool``: which of its tools, if known."""
        chosen = use_tool if use_tool in own else ""
        done = ToolMessage(
            f"Handed off to {agent}. Task: {task}" + (f" (with {chosen})" if chosen else ""),
            tool_call_id=runtime.tool_call_id or "",
            name=handoff_tool_name(agent),
            artifact={"handoff": {"from": source, "to": agent, "task": task, **({USE_TOOL: chosen} if chosen else {})}},
            id=str(uuid.uuid4()),  # stream consumers tell messages apart by id
        )
        calling = [
            m
            for m in runtime.state["messages"]
            if isinstance(m, AIMessage) and any(c.get("id") == runtime.tool_call_id for c in m.tool_calls)
        ]
        return Command(graph=Command.PARENT, goto=agent, update={"messages": [*calling[-1:], done]})

    handoff.metadata = {**(handoff.metadata or {}), AGENT_TOOLS: [(t.name, t.description) for t in tools]}
    return handoff


class OneHandoffMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Keeps only the first tool call of each supervisor message: the conversation can go to one agent at a time."""

    async def awrap_model_call(self, request: ModelRequest[Any], handler: ModelHandler) -> ModelResponse[Any]:
        return keep_first_tool_call(await handler(request))
