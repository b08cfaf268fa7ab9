"""How the embedded model is steered into one tool call per turn (on a scripted stand-in: no llama.cpp here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.agents.embedded import called_a_tool_this_turn, without_invalid_tool_calls
from chatplane.agents.react import build_react
from chatplane.llm.fake import ScriptedChatModel
from chatplane.llm.local import TOOL_CALL_PREFILL
from chatplane.tools import builtin_tools
from tests.agents.helpers import call, calls, run_config
from tests.conftest import make_settings


class RecordingModel(ScriptedChatModel):
    """Remembers what each call was bound with (tools offered, tool_choice, stop …)."""

    bindings: list[dict[str, Any]] = []

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bindings.append({"tools": [getattr(t, "name", t) for t in tools], **kwargs})
        return self

    def bind(self, **kwargs: Any) -> Any:
        self.bindings.append({"tools": [], **kwargs})
        return self


async def test_first_call_is_forced_then_the_model_answers_without_tools() -> None:
    settings = make_settings(model="local:smollm2-135m")
    model = RecordingModel(
        replies=[calls(("calculator", {"expression": "2 + 2"}), ("current_time", {})), "2 + 2 = 4"], bindings=[]
    )
    graph = build_react(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("what is 2 + 2")]}, run_config("t", settings))

    forced, answer = model.bindings
    assert forced["tool_choice"] == "required" and forced["parallel_tool_calls"] is False
    assert forced["stop"] == ["</tool_call>"]
    assert model.prompts[0][-1] == AIMessage(TOOL_CALL_PREFILL)  # the assistant turn is prefilled
    assert answer == {"tools": [], "stop": ["<tool_call>"]}
    assert model.prompts[1][-1].type == "tool"
    ai = [m for m in result["messages"] if isinstance(m, AIMessage)]
    assert [c["name"] for c in ai[0].tool_calls] == ["calculator"]  # one call per turn: the second was dropped
    assert result["messages"][-1].text == "2 + 2 = 4"


async def test_an_empty_answer_falls_back_to_the_tool_result() -> None:
    settings = make_settings(model="local:smollm2-135m")
    model = ScriptedChatModel(replies=[call("calculator", {"expression": "6 * 7"}), ""])
    graph = build_react(model, settings=settings, tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("6 * 7?")]}, run_config("t", settings))
    assert result["messages"][-1].text == "The calculator tool returned: 42"


async def test_not_applied_to_other_models() -> None:
    settings = make_settings(model="fake:echo")
    model = RecordingModel(replies=["plain"], bindings=[])
    graph = build_react(model, settings=settings, tools=builtin_tools(settings))
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, run_config("t", settings))
    assert model.bindings[0]["tool_choice"] is None
    assert model.prompts[0][-1].type == "human"


def test_garbled_calls_are_not_sent_back() -> None:
    garbled = AIMessage(
        content="", invalid_tool_calls=[{"name": "calculator", "args": "{", "id": "bad", "error": None}]
    )
    answer = ToolMessage("could not be executed", tool_call_id="bad", status="error")
    cleaned = without_invalid_tool_calls([HumanMessage("q"), garbled, answer, AIMessage("a")])
    assert [m.type for m in cleaned] == ["human", "ai", "ai"]
    assert cleaned[1].invalid_tool_calls == []


def test_called_a_tool_this_turn_is_per_agent_and_per_turn() -> None:
    mine = call("calculator", {"expression": "1"})
    mine.name = "math"
    history = [HumanMessage("one"), mine, ToolMessage("1", tool_call_id=mine.tool_calls[0]["id"])]
    assert called_a_tool_this_turn(history, "math")
    assert not called_a_tool_this_turn(history, "research")
    assert not called_a_tool_this_turn([*history, AIMessage("done"), HumanMessage("two")], "math")
