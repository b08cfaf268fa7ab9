"""The multi-agent: the supervisor hands off to specialists; history and streams say which agent did what."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.agents.multi import build_multi
from chatplane.errors import RunLimitError
from chatplane.llm.fake import ScriptedChatModel
from chatplane.tools import builtin_tools
from tests.agents.helpers import assert_every_tool_call_answered, call, calls, run_config
from tests.conftest import make_settings


def two_specialists_script() -> list[Any]:
    return [
        call("transfer_to_math", {"task": "Add 1234 and 4321."}),  # supervisor
        call("calculator", {"expression": "1234 + 4321"}),  # math
        "1234 + 4321 = 5555.",  # math
        call("transfer_to_research", {"task": "What time is it in Tokyo?"}),  # supervisor
        call("current_time", {"timezone": "Asia/Tokyo"}),  # research
        "It is evening in Tokyo.",  # research
        "The sum is 5555, and it is evening in Tokyo.",  # supervisor
    ]


async def test_hands_off_to_two_specialists_and_history_names_them() -> None:
    settings = make_settings()
    model = ScriptedChatModel(replies=two_specialists_script())
    graph = build_multi(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    config = run_config("t", settings)
    result = await graph.ainvoke({"messages": [HumanMessage("Sum, and the time in Tokyo?")]}, config)
    messages = result["messages"]
    said = [(m.name, m.text) for m in messages if isinstance(m, AIMessage) and m.text]
    assert said == [
        ("math", "1234 + 4321 = 5555."),
        ("research", "It is evening in Tokyo."),
        ("supervisor", "The sum is 5555, and it is evening in Tokyo."),
    ]
    handoffs = [m for m in messages if isinstance(m, ToolMessage) and m.name.startswith("transfer_to_")]
    assert [m.text for m in handoffs] == [
        "Handed off to math. Task: Add 1234 and 4321.",
        "Handed off to research. Task: What time is it in Tokyo?",
    ]
    assert handoffs[0].artifact == {"handoff": {"from": "supervisor", "to": "math", "task": "Add 1234 and 4321."}}
    tool_users = [
        (m.name, [c["name"] for c in m.tool_calls]) for m in messages if isinstance(m, AIMessage) and m.tool_calls
    ]
    assert tool_users == [
        ("supervisor", ["transfer_to_math"]),
        ("math", ["calculator"]),
        ("supervisor", ["transfer_to_research"]),
        ("research", ["current_time"]),
    ]
    assert_every_tool_call_answered(messages)
    state = await graph.aget_state(config)
    assert state.values["messages"][-1].name == "supervisor"
    # the specialists were told their job and given their own tools only
    math_prompt = model.prompts[1]
    assert math_prompt[0].text.endswith(
        "You are the math agent. Do the calculation the supervisor asked for with the calculator, then state the "
        "result in one sentence."
    )


async def test_the_writer_composes_the_final_answer() -> None:
    settings = make_settings()
    model = ScriptedChatModel(
        replies=[call("transfer_to_writer", {"task": "Write a haiku about tea."}), "Green leaves, warm water."]
    )
    graph = build_multi(model, settings=settings, tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("A haiku about tea?")]}, run_config("t", settings))
    last = result["messages"][-1]
    assert (last.name, last.text) == ("writer", "Green leaves, warm water.")
    assert model.calls == 2  # the writer's answer ends the run: no further supervisor turn


async def test_streaming_makes_handoffs_observable() -> None:
    settings = make_settings()
    graph = build_multi(
        ScriptedChatModel(replies=two_specialists_script()), settings=settings, tools=builtin_tools(settings)
    )
    token_agents: list[str] = []
    namespaces: list[str] = []
    handoffs: list[tuple[str, str]] = []
    seen: set[str | None] = set()
    async for namespace, mode, data in graph.astream(
        {"messages": [HumanMessage("Sum, and the time in Tokyo?")]},
        run_config("t", settings),
        stream_mode=["messages", "updates"],
        subgraphs=True,
    ):
        if mode == "messages":
            chunk, metadata = data
            if isinstance(chunk, AIMessageChunk) and chunk.text:
                agent = metadata["lc_agent_name"]
                if not token_agents or token_agents[-1] != agent:
                    token_agents.append(agent)
                    namespaces.append(namespace[0].split(":")[0])
        elif namespace == () and "supervisor" in data:
            for message in data["supervisor"]["messages"]:  # an agent's update repeats earlier messages
                if message.id in seen:
                    continue
                seen.add(message.id)
                if isinstance(message, ToolMessage) and message.name.startswith("transfer_to_"):
                    handoffs.append((message.artifact["handoff"]["from"], message.artifact["handoff"]["to"]))
    assert token_agents == ["math", "research", "supervisor"]
    assert namespaces == token_agents  # each agent streams from its own node of the parent graph
    assert handoffs == [("supervisor", "math"), ("supervisor", "research")]


async def test_one_handoff_at_a_time() -> None:
    settings = make_settings()
    model = ScriptedChatModel(
        replies=[
            calls(("transfer_to_math", {"task": "a"}), ("transfer_to_research", {"task": "b"})),
            "math here",
            "done",
        ]
    )
    graph = build_multi(model, settings=settings, tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("both?")]}, run_config("t", settings))
    first = next(m for m in result["messages"] if isinstance(m, AIMessage) and m.tool_calls)
    assert [c["name"] for c in first.tool_calls] == ["transfer_to_math"]
    assert [(m.name, m.text) for m in result["messages"][-2:]] == [("math", "math here"), ("supervisor", "done")]
    assert_every_tool_call_answered(result["messages"])


async def test_a_specialist_over_its_limit_stops_the_run_and_the_thread_goes_on() -> None:
    settings = make_settings(max_model_calls=2)

    def script() -> list[Any]:
        return [
            call("transfer_to_math", {"task": "loop"}),
            call("calculator", {"expression": "1 + 1"}),
            call("calculator", {"expression": "2 + 2"}),  # math's 2nd call; a 3rd is over the limit
            "Hello again.",  # supervisor, next message
        ]

    model = ScriptedChatModel(replies=script())
    graph = build_multi(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    config = run_config("t", settings)
    with pytest.raises(RunLimitError):
        await graph.ainvoke({"messages": [HumanMessage("loop")]}, config)
    state = await graph.aget_state(config)
    assert_every_tool_call_answered(state.values["messages"])
    result = await graph.ainvoke({"messages": [HumanMessage("hi")]}, config)
    assert (result["messages"][-1].name, result["messages"][-1].text) == ("supervisor", "Hello again.")
    assert_every_tool_call_answered(result["messages"])


def test_specialists_without_tools_are_left_out() -> None:
    settings = make_settings()
    graph = build_multi(ScriptedChatModel(), settings=settings, tools=[])
    assert set(graph.get_graph().nodes) == {"__start__", "supervisor", "writer", "__end__"}
