"""Run limits: model calls, tool calls and LangGraph steps end the run with RunLimitError, the thread still usable."""

from __future__ import annotations

import itertools

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import START, MessagesState, StateGraph

from chatplane.agents.limits import (
    STOP_KEY,
    UNANSWERED_TOOL_CALL,
    answer_dangling_tool_calls,
    as_run_limit_error,
    translate_run_limits,
)
from chatplane.agents.react import build_react
from chatplane.errors import RunLimitError
from chatplane.llm.fake import ScriptedChatModel
from chatplane.tools import builtin_tools
from tests.agents.helpers import assert_every_tool_call_answered, call, calls, run_config
from tests.conftest import make_settings

_ids = itertools.count()


def loops_on(word: str, *, per_message: int = 1) -> ScriptedChatModel:
    """A model that calls the calculator forever when the user's last message is ``word``, else answers."""

    def reply(prompt: list[BaseMessage]) -> str | AIMessage:
        last_human = [m for m in prompt if m.type == "human"][-1]
        if last_human.text != word:
            return f"fine: {last_human.text}"
        return calls(*[("calculator", {"expression": f"{next(_ids)} + 1"}) for _ in range(per_message)])

    return ScriptedChatModel(replies=[reply])


async def run_to_limit(graph: object, settings: object, message: str) -> list[BaseMessage]:
    config = run_config("t", settings)  # type: ignore[arg-type]
    with pytest.raises(RunLimitError):
        await graph.ainvoke({"messages": [HumanMessage(message)]}, config)  # type: ignore[attr-defined]
    state = await graph.aget_state(config)  # type: ignore[attr-defined]
    return list(state.values["messages"])


def test_the_budgets_take_one_node_before_and_one_after_each_model_call() -> None:
    """Every hook is a graph step on every model call: the three budgets share one node on each side of it."""
    settings = make_settings()
    graph = build_react(loops_on("x"), settings=settings, tools=builtin_tools(settings))
    hooks = sorted(node for node in graph.nodes if "." in node)
    assert hooks == [
        "RunBudget.after_agent",
        "RunBudget.after_model",
        "RunBudget.before_model",
        "ThreadRepairMiddleware.before_agent",
    ]


async def test_model_call_limit_then_the_thread_goes_on() -> None:
    settings = make_settings(max_model_calls=3)
    model = loops_on("loop")
    graph = build_react(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    messages = await run_to_limit(graph, settings, "loop")
    assert model.calls == 3
    assert messages[-1].response_metadata[STOP_KEY] == "model_calls"
    assert "more than 3 model calls" in messages[-1].text
    assert_every_tool_call_answered(messages)
    result = await graph.ainvoke({"messages": [HumanMessage("next")]}, run_config("t", settings))
    assert result["messages"][-1].text == "fine: next"
    assert model.calls == 4  # the limit is per run: the new message had its own budget


async def test_tool_call_limit_then_the_thread_goes_on() -> None:
    settings = make_settings(max_tool_calls=3, max_model_calls=50)
    model = loops_on("loop", per_message=2)
    graph = build_react(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    messages = await run_to_limit(graph, settings, "loop")
    assert messages[-1].response_metadata[STOP_KEY] == "tool_calls"
    # 2 calls run; of the next 2, one is over the limit and the other is not run either (the run ends there)
    assert [m.status for m in messages if m.type == "tool"] == ["success", "success", "error", "error"]
    assert_every_tool_call_answered(messages)
    result = await graph.ainvoke({"messages": [HumanMessage("next")]}, run_config("t", settings))
    assert result["messages"][-1].text == "fine: next"


async def test_recursion_limit_ends_the_run_cleanly_before_langgraph_does() -> None:
    settings = make_settings(max_model_calls=100, max_tool_calls=100, recursion_limit=30)
    graph = build_react(
        loops_on("loop"), settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings)
    )
    messages = await run_to_limit(graph, settings, "loop")  # RunLimitError, not GraphRecursionError
    assert messages[-1].response_metadata[STOP_KEY] == "steps"
    assert_every_tool_call_answered(messages)
    result = await graph.ainvoke({"messages": [HumanMessage("next")]}, run_config("t", settings))
    assert result["messages"][-1].text == "fine: next"


async def test_a_run_cut_mid_tool_call_is_repaired_by_the_next_one() -> None:
    """A crash, cancel or raw recursion error between a model call and its tools leaves a dangling tool call."""
    settings = make_settings()
    graph = build_react(
        loops_on("never"), settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings)
    )
    config = run_config("t", settings)
    await graph.ainvoke({"messages": [HumanMessage("first")]}, config)
    dangling = call("calculator", {"expression": "1 + 1"})
    await graph.aupdate_state(config, {"messages": [HumanMessage("second"), dangling]}, as_node="model")
    result = await graph.ainvoke({"messages": [HumanMessage("third")]}, config)
    messages = result["messages"]
    assert [m.type for m in messages] == ["human", "ai", "human", "ai", "tool", "human", "ai"]
    assert messages[4].text == UNANSWERED_TOOL_CALL and messages[4].status == "error"
    assert messages[-1].text == "fine: third"
    assert_every_tool_call_answered(messages)


async def test_raw_recursion_errors_become_run_limit_errors() -> None:
    builder = StateGraph(MessagesState)
    builder.add_node("again", lambda state: {"messages": [AIMessage("again")]})
    builder.add_edge(START, "again")
    builder.add_edge("again", "again")
    graph = builder.compile()
    with pytest.raises(RunLimitError) as raised:
        with translate_run_limits():
            await graph.ainvoke({"messages": [HumanMessage("go")]}, {"recursion_limit": 5})
    assert isinstance(raised.value.__cause__, GraphRecursionError)
    assert isinstance(as_run_limit_error(GraphRecursionError("x")), RunLimitError)
    assert as_run_limit_error(ValueError("x")) is None
    with pytest.raises(ValueError), translate_run_limits():
        raise ValueError("not a limit")


def test_answer_dangling_tool_calls_places_answers_after_their_call() -> None:
    first = calls(("a", {}), ("b", {}))
    history = [HumanMessage("q"), first, HumanMessage("again")]
    repaired = answer_dangling_tool_calls(history)
    assert repaired is not None
    assert [m.type for m in repaired] == ["human", "ai", "tool", "tool", "human"]
    assert answer_dangling_tool_calls(repaired) is None
