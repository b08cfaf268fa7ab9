"""The multi-agent: a supervisor hands each request to specialists, then answers (or lets the writer answer).

The graph is plain LangGraph around ``create_agent`` sub-agents, one node each::

    START → supervisor ──transfer_to_math──→ math ──────→ supervisor → … → (answer) END
                       ──transfer_to_research→ research → supervisor
                       ──transfer_to_writer──→ writer ──→ END

* ``supervisor`` has only hand-off tools (``chatplane.agents.handoff``) and one hand-off per message;
* ``math`` has the calculator; ``research`` every other tool (documents, clock, web, MCP servers);
  a specialist is left out when it would have no tools;
* ``writer`` has no tools and writes the final answer from the conversation.

Every node shares the thread's ``messages``, and ``create_agent(name=…)`` names each agent's messages, so the
history says who said what (``AIMessage.name``: ``supervisor``, ``math`` …) and the last message is the answer of
the supervisor or the writer. Streamed with ``subgraphs=True``, each part's namespace starts with the agent's node
(``("math:<task id>",)``) and every token's metadata carries ``lc_agent_name``; a hand-off is the supervisor's
``transfer_to_<agent>`` tool call and the ``ToolMessage`` answering it, in the ``updates`` of node ``supervisor``.
Each sub-agent runs with the guards of ``chatplane.agents.guards`` (its call limits apply per turn of that agent);
the run's ``recursion_limit`` bounds the hand-offs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, NotRequired, TypedDict

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Checkpointer

from chatplane.agents.context import archive_settled
from chatplane.agents.embedded import needs_tool_routing
from chatplane.agents.guards import model_guard_middleware, split_model_call_layers
from chatplane.agents.handoff import OneHandoffMiddleware, make_handoff_tool
from chatplane.agents.kind import AgentKind
from chatplane.agents.react import agent_middleware
from chatplane.config import Settings
from chatplane.storage.transcript import Transcript

DESCRIPTION = "A supervisor that hands each request to specialists (math, research, writer) and composes the answer."

Middleware = AgentMiddleware[Any, Any, Any]

SPECIALISTS = {
    "math": "arithmetic and calculations, with an exact calculator.",
    "research": "looking things up: the local documents, the date and time, allowed web pages and other tools.",
    "writer": "writing a longer text the user asks for (a plan, a letter, a story, a summary).",
}
PROMPTS = {
    "supervisor": (
        "You are the supervisor of a team: {team}. Hand the user's request to the right agent with a "
        "transfer_to_<agent> tool and a clear task, one agent at a time. When the agents have done their part, "
        "answer the user yourself, briefly, or hand over to the writer to compose a longer answer. "
        "Answer directly when no agent is needed."
    ),
    "math": "You are the math agent. Do the calculation the supervisor asked for with the calculator, then state "
    "the result in one sentence.",
    "research": "You are the research agent. Find what the supervisor asked for with your tools, then report what "
    "you found, briefly, citing where it came from.",
    "writer": "You are the writer. Using the conversation and what the other agents found, write the final answer "
    "to the user's last message: clear, complete and brief. Do not mention the agents.",
}


def supervisor_prompt_for_routing(settings: Settings) -> str:
    """The supervisor's system prompt on a local model: the plain one. Its tool routing offers the agents' tools
    itself (``chatplane.agents.embedded``), and told about the team as well, Qwen2.5-Coder-1.5B handed
    general-knowledge questions to an agent (4 of 9 routed right with the team described, 8 of 9 without)."""
    return settings.system_prompt


class MultiAgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    user_id: NotRequired[str]
    session_id: NotRequired[str]


def split_tools(tools: Sequence[BaseTool]) -> dict[str, list[BaseTool]]:
    """Which specialist gets which tool: the calculator to math, everything else to research."""
    return {
        "math": [t for t in tools if t.name == "calculator"],
        "research": [t for t in tools if t.name != "calculator"],
        "writer": [],
    }


def build_multi(
    model: BaseChatModel,
    *,
    settings: Settings,
    checkpointer: Checkpointer = None,
    tools: Sequence[BaseTool] = (),
    middleware: Sequence[Middleware] = (),
    transcript: Transcript | None = None,
) -> Any:
    """Compile the supervisor graph; ``middleware`` is added to every agent (inside the guards).

    With a ``transcript``, a first node moves earlier turns out of the checkpoint (``archive_settled``): the
    sub-agents share the thread's state but cannot remove messages from it.
    """
    toolsets = split_tools(tools)
    team = [name for name, own in toolsets.items() if own or name == "writer"]

    def prompt(name: str) -> str:
        if name == "supervisor" and needs_tool_routing(settings):
            return supervisor_prompt_for_routing(settings)
        roles = "; ".join(f"{n} ({SPECIALISTS[n]})" for n in team)
        return f"{settings.system_prompt}\n\n{PROMPTS[name].format(team=roles)}"

    handoffs = [make_handoff_tool(name, SPECIALISTS[name], tools=toolsets[name]) for name in team]
    builder = StateGraph(MultiAgentState)
    supervisor = create_agent(
        model,
        tools=handoffs,
        system_prompt=prompt("supervisor"),
        middleware=agent_middleware(model, settings, "supervisor", [OneHandoffMiddleware(), *middleware]),
        name="supervisor",
    )
    builder.add_node("supervisor", supervisor, destinations=(*team, END))
    if transcript is not None:

        async def archive_earlier_turns(state: MultiAgentState) -> dict[str, Any]:
            return await archive_settled(transcript, state["messages"]) or {}

        builder.add_node("transcript", archive_earlier_turns)
        builder.add_edge(START, "transcript")
        builder.add_edge("transcript", "supervisor")
    else:
        builder.add_edge(START, "supervisor")
    for name in team:
        if toolsets[name]:
            agent_mw = agent_middleware(model, settings, name, middleware)
        else:
            layers, rest = split_model_call_layers(middleware)
            agent_mw = [*model_guard_middleware(settings, outer=layers), *rest]
        agent = create_agent(model, tools=toolsets[name], system_prompt=prompt(name), middleware=agent_mw, name=name)
        builder.add_node(name, agent)
        builder.add_edge(name, END if name == "writer" else "supervisor")
    return builder.compile(checkpointer=checkpointer, name="multi")


AGENT = AgentKind("multi", DESCRIPTION, build_multi, nested=True)
"""The multi agent, as a project file names it (``chatplane.agents.multi:AGENT``)."""
