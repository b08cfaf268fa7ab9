"""How a local model is steered through tool use — route, arguments, answer — on scripted outputs (no llama.cpp)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.agents.embedded import (
    called_a_tool_this_turn,
    handed_tool,
    route_choices,
    route_instruction,
    without_invalid_tool_calls,
)
from chatplane.agents.handoff import make_handoff_tool
from chatplane.agents.multi import build_multi
from chatplane.agents.react import build_react
from chatplane.agents.tool_json import call_arguments, first_json_object, looks_like_a_tool_call
from chatplane.llm.fake import ScriptedChatModel
from chatplane.tools import builtin_tools
from tests.agents.helpers import assert_every_tool_call_answered, call, run_config
from tests.conftest import make_settings


class RecordingModel(ScriptedChatModel):
    """Remembers what each call was bound with (tools offered, tool_choice, the JSON schema …)."""

    bindings: list[dict[str, Any]] = []

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bindings.append({"tools": [getattr(t, "name", t) for t in tools], **kwargs})
        return self

    def bind(self, **kwargs: Any) -> Any:
        self.bindings.append({"tools": [], **kwargs})
        return self


def local_react(model: ScriptedChatModel, **overrides: Any) -> tuple[Any, Any]:
    settings = make_settings(model="local:qwen2.5-coder-1.5b", **overrides)
    graph = build_react(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    return graph, settings


def enum_of(binding: dict[str, Any]) -> list[str]:
    return list(binding["extra_body"]["json_schema"]["properties"]["action"]["enum"])


async def test_route_then_arguments_then_an_answer_without_tools() -> None:
    model = RecordingModel(replies=['{"action": "calculator"}', '{"expression": "2 + 2"}', "2 + 2 = 4"], bindings=[])
    graph, settings = local_react(model)
    result = await graph.ainvoke({"messages": [HumanMessage("what is 2 + 2")]}, run_config("t", settings))

    route, arguments, answer = model.bindings
    assert enum_of(route) == ["calculator", "current_time", "search_docs", "answer"]  # the choice is constrained
    schema = arguments["extra_body"]["json_schema"]
    assert schema["required"] == ["expression"] and schema["properties"]["expression"]["type"] == "string"
    assert answer["tools"] == [] and answer.get("tool_choice") is None  # the answer is written with no tools
    assert answer["stop"] == ["<tool_call>", '{"name":']  # cut where it would start another call as text
    route_prompt, arguments_prompt, answer_prompt = model.prompts
    assert route_prompt[0].type == "system" and route_prompt[1].text == "what is 2 + 2"
    assert '"what is 2 + 2"' in route_prompt[-1].text and "- answer: no tool is needed" in route_prompt[-1].text
    assert arguments_prompt[:-1] == route_prompt[:-1]  # the same prefix: llama.cpp's prompt cache serves both
    assert "Call the tool calculator" in arguments_prompt[-1].text
    assert answer_prompt[-2].type == "tool" and answer_prompt[-2].text == "4"
    assert answer_prompt[-1].text == 'Using the results above, answer the user\'s message: "what is 2 + 2"'

    messages = result["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[1].tool_calls[0]["name"] == "calculator"
    assert messages[1].tool_calls[0]["args"] == {"expression": "2 + 2"}
    assert messages[1].name == "react" and messages[1].usage_metadata is not None  # the two steps' tokens
    assert messages[-1].text == "2 + 2 = 4"
    assert_every_tool_call_answered(messages)


async def test_the_route_can_answer_directly() -> None:
    model = RecordingModel(replies=['{"action": "answer"}', "Paris."], bindings=[])
    graph, settings = local_react(model)
    result = await graph.ainvoke({"messages": [HumanMessage("capital of France?")]}, run_config("t", settings))
    assert [m.type for m in result["messages"]] == ["human", "ai"]
    assert result["messages"][-1].text == "Paris."
    assert model.bindings[-1]["tools"] == []
    assert model.prompts[-1][-1].text == "capital of France?"  # answered from the plain conversation


@pytest.mark.parametrize(
    "written",
    [
        'Sure! ```json\n{"name": "calculator", "arguments": {"expression": "6 * 7"}}\n```',  # fenced, whole call
        'I will compute it: {"expression": "6 * 7"} and tell you.',  # bare, among prose
        '<tool_call>\n{"name": "calculator", "arguments": "{\\"expression\\": \\"6 * 7\\"}"}\n</tool_call>',
    ],
)
async def test_arguments_written_outside_the_schema_are_read_leniently(written: str) -> None:
    model = ScriptedChatModel(replies=['{"action": "calculator"}', written, "42"])
    graph, settings = local_react(model)
    result = await graph.ainvoke({"messages": [HumanMessage("6 * 7?")]}, run_config("t", settings))
    assert result["messages"][1].tool_calls[0]["args"] == {"expression": "6 * 7"}
    assert result["messages"][2].text == "42"


async def test_arguments_that_do_not_fit_the_schema_give_an_answer_without_the_tool() -> None:
    model = RecordingModel(
        replies=['{"action": "calculator"}', '{"expr": 12}', "I could not compute that."], bindings=[]
    )
    graph, settings = local_react(model)
    result = await graph.ainvoke({"messages": [HumanMessage("6 * 7?")]}, run_config("t", settings))
    assert [m.type for m in result["messages"]] == ["human", "ai"]
    assert not result["messages"][-1].tool_calls and model.bindings[-1]["tools"] == []


async def test_a_tool_call_written_as_the_answer_ends_with_the_result() -> None:
    """Bounded: one call per turn by default; an answer that is another call becomes the result, stated."""
    again = '```json\n{"name": "calculator", "arguments": {"expression": "6 * 7"}}\n```'
    model = ScriptedChatModel(replies=['{"action": "calculator"}', '{"expression": "6 * 7"}', again])
    graph, settings = local_react(model)
    result = await graph.ainvoke({"messages": [HumanMessage("6 * 7?")]}, run_config("t", settings))
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "ai"]
    assert result["messages"][-1].text == "The calculator tool returned: 42"


async def test_more_calls_per_turn_route_again_after_each_result() -> None:
    replies = [
        '{"action": "current_time"}',
        '{"timezone": "Asia/Tokyo"}',
        '{"action": "calculator"}',
        '{"expression": "9 + 1"}',
        "Done: 10.",
    ]
    model = RecordingModel(replies=replies, bindings=[])
    graph, settings = local_react(model, local_tool_calls_per_turn=2)
    result = await graph.ainvoke({"messages": [HumanMessage("time in Tokyo, then 9 + 1")]}, run_config("t", settings))
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "ai", "tool", "ai"]
    assert "what the tool results above already tell" in model.prompts[2][-1].text
    assert model.bindings[-1]["tools"] == [] and result["messages"][-1].text == "Done: 10."


async def test_only_the_answer_is_streamed() -> None:
    model = ScriptedChatModel(replies=['{"action": "calculator"}', '{"expression": "2 + 2"}', "It is 4."])
    graph, settings = local_react(model)
    pieces = []
    async for chunk, _meta in graph.astream(
        {"messages": [HumanMessage("2 + 2?")]}, run_config("t", settings), stream_mode="messages"
    ):
        if isinstance(chunk, AIMessageChunk) and chunk.text:
            pieces.append(chunk.text)
    assert "".join(pieces) == "It is 4."  # not the route's or the arguments' JSON


async def test_the_supervisor_routes_among_its_agents_tools_and_names_the_tool() -> None:
    replies = [
        '{"action": "calculator"}',  # supervisor: route, among the agents' tools
        '{"task": "compute 17 * 23"}',  # supervisor: the hand-off's argument
        '{"expression": "17 * 23"}',  # math: arguments, no route of its own (the hand-off named the tool)
        "17 * 23 = 391.",  # math: answer
        "It is 391.",  # supervisor: answer, tools removed
    ]
    model = RecordingModel(replies=replies, bindings=[])
    settings = make_settings(model="local:qwen2.5-coder-1.5b")
    graph = build_multi(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("17 * 23?")]}, run_config("t", settings))
    route, handoff_args, math_args = model.bindings[:3]
    assert enum_of(route) == ["calculator", "current_time", "search_docs", "transfer_to_writer", "answer"]
    assert "- search_docs: Search chatplane's documentation" in model.prompts[0][-1].text
    assert model.prompts[0][0].text == settings.system_prompt  # the options describe the team, not the prompt
    assert list(handoff_args["extra_body"]["json_schema"]["properties"]) == ["task"]  # the route fills use_tool
    assert math_args["extra_body"]["json_schema"]["required"] == ["expression"]
    calls = [
        (m.name, c["name"], c["args"]) for m in result["messages"] if isinstance(m, AIMessage) for c in m.tool_calls
    ]
    assert calls == [
        ("supervisor", "transfer_to_math", {"task": "compute 17 * 23", "use_tool": "calculator"}),
        ("math", "calculator", {"expression": "17 * 23"}),
    ]
    handoff = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert handoff.artifact["handoff"] == {
        "from": "supervisor",
        "to": "math",
        "task": "compute 17 * 23",
        "use_tool": "calculator",
    }
    assert result["messages"][-1].text == "It is 391." and result["messages"][-1].name == "supervisor"
    assert model.bindings[-1]["tools"] == []


async def test_the_supervisor_can_answer_or_hand_to_an_agent_without_tools() -> None:
    model = RecordingModel(replies=['{"action": "answer"}', "Tokyo."], bindings=[])
    settings = make_settings(model="local:qwen2.5-coder-1.5b")
    graph = build_multi(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("capital of Japan?")]}, run_config("t", settings))
    assert [m.type for m in result["messages"]] == ["human", "ai"] and result["messages"][-1].text == "Tokyo."

    replies = ['{"action": "transfer_to_writer"}', '{"task": "a plan"}', "The plan."]
    model = RecordingModel(replies=replies, bindings=[])
    graph = build_multi(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("write a plan")]}, run_config("t", settings))
    assert result["messages"][1].tool_calls[0]["args"] == {"task": "a plan"}  # no tool named
    assert result["messages"][-1].name == "writer" and result["messages"][-1].text == "The plan."


async def test_a_hand_off_names_only_a_tool_the_agent_has() -> None:
    """``use_tool`` naming a tool the agent lacks is dropped: the agent then chooses for itself."""
    settings = make_settings()
    script = [call("transfer_to_math", {"task": "2 + 2", "use_tool": "search_docs"}), "4.", "It is 4."]
    graph = build_multi(ScriptedChatModel(replies=script), settings=settings, tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("2 + 2?")]}, run_config("t", settings))
    handoff = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert handoff.artifact["handoff"] == {"from": "supervisor", "to": "math", "task": "2 + 2"}
    assert handoff.text == "Handed off to math. Task: 2 + 2"
    assert handed_tool(result["messages"][:3], "math") is None


def test_route_choices_and_the_instruction() -> None:
    settings = make_settings(model="local:qwen2.5-coder-1.5b")
    tools = builtin_tools(settings)
    research = make_handoff_tool("research", "looking things up.", tools=tools[1:])
    writer = make_handoff_tool("writer", "writing.")
    choices = route_choices([research, writer])
    assert [(c.name, c.tool.name, c.via) for c in choices] == [
        ("current_time", "transfer_to_research", "current_time"),
        ("search_docs", "transfer_to_research", "search_docs"),
        ("transfer_to_writer", "transfer_to_writer", None),
    ]
    text = route_instruction(choices, "Which agents are there?", after_result=False)
    assert text.index("- current_time:") < text.index("- answer:") < text.index('"Which agents are there?"')
    assert text.endswith('Reply with JSON only: {"action": "<option>"}.')


def test_handed_tool_reads_the_hand_off_that_started_this_agent() -> None:
    supervisor = call("transfer_to_math", {"task": "2 + 2", "use_tool": "calculator"})
    handoff = {"handoff": {"from": "supervisor", "to": "math", "task": "2 + 2", "use_tool": "calculator"}}
    answered = ToolMessage("Handed off", tool_call_id=supervisor.tool_calls[0]["id"], artifact=handoff)
    history = [HumanMessage("2 + 2?"), supervisor, answered]
    assert handed_tool(history, "math") == "calculator"
    assert handed_tool(history, "research") is None  # handed to another agent
    assert handed_tool([*history, AIMessage("4"), HumanMessage("and 3 + 3?")], "math") is None  # a new turn


async def test_not_applied_to_other_models() -> None:
    settings = make_settings(model="fake:echo")
    model = RecordingModel(replies=["plain"], bindings=[])
    graph = build_react(model, settings=settings, tools=builtin_tools(settings))
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, run_config("t", settings))
    assert len(model.bindings) == 1 and model.bindings[0]["tool_choice"] is None
    assert model.prompts[0][-1].type == "human"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('text {not json} then {"a": [1, {"b": 2}]} more', {"a": [1, {"b": 2}]}),
        ('<tool_call>{"name": "t", "arguments": {}}</tool_call> {"z": 0}', {"name": "t", "arguments": {}}),
        ("no object here", None),
        ("[1, 2]", None),
    ],
)
def test_first_json_object(text: str, expected: Any) -> None:
    assert first_json_object(text) == expected


def test_call_arguments_refuses_a_call_to_another_tool() -> None:
    assert call_arguments('{"name": "search_docs", "arguments": {"query": "x"}}', "calculator") is None
    assert call_arguments('{"name": "calculator", "parameters": {"expression": "1"}}', "calculator") == {
        "expression": "1"
    }
    assert looks_like_a_tool_call('{"name": "calculator", "arguments": {"expression": "1"}}')
    assert not looks_like_a_tool_call("The answer is {1, 2}.")


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
