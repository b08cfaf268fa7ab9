"""The built-in agent kinds: registered through the project loader like any graph, each built the same way."""

from __future__ import annotations

import inspect

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.agents import AgentKind
from chatplane.agents.project import load_project
from chatplane.llm.fake import ScriptedChatModel
from chatplane.tools import builtin_tools
from tests.agents.helpers import run_config
from tests.conftest import make_settings

AGENTS: dict[str, AgentKind] = {g.graph_id: g.target for g in load_project(None).graphs}


def test_kinds_and_descriptions() -> None:
    assert list(AGENTS) == ["chat", "react", "multi"]
    for name, kind in AGENTS.items():
        assert isinstance(kind, AgentKind)
        assert kind.name == name
        assert kind.description.strip()


@pytest.mark.parametrize("kind", list(AGENTS))
def test_one_signature(kind: str) -> None:
    parameters = inspect.signature(AGENTS[kind].build).parameters
    assert list(parameters) == ["model", "settings", "checkpointer", "tools", "middleware", "transcript"]
    assert [p.kind for p in parameters.values()][1:] == [inspect.Parameter.KEYWORD_ONLY] * 5


@pytest.mark.parametrize("kind", list(AGENTS))
async def test_each_kind_answers_a_plain_message(kind: str) -> None:
    settings = make_settings()
    graph = AGENTS[kind].build(
        ScriptedChatModel(replies=["hello"]),
        settings=settings,
        checkpointer=InMemorySaver(),
        tools=builtin_tools(settings),
        middleware=(),
    )
    result = await graph.ainvoke({"messages": [HumanMessage("hi")], "user_id": "u"}, run_config("t", settings))
    assert result["messages"][-1].text == "hello"
    state = await graph.aget_state(run_config("t", settings))
    assert state.values["user_id"] == "u"
