"""The ReAct agent on a scripted model: tools in a loop, tool failures handed back to the model, MCP tools."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.agents.react import build_react
from chatplane.llm.fake import ScriptedChatModel
from chatplane.tools import builtin_tools, open_tools
from tests.agents.helpers import assert_every_tool_call_answered, call, run_config, tool_results
from tests.conftest import make_settings

ECHO_SERVER = Path(__file__).parents[1] / "tools" / "mcp_echo_server.py"


async def test_calls_two_tools_then_answers() -> None:
    settings = make_settings()
    model = ScriptedChatModel(
        replies=[
            call("calculator", {"expression": "1234 + 4321"}),
            call("current_time", {"timezone": "Asia/Tokyo"}),
            "5555, and it is evening in Tokyo.",
        ]
    )
    graph = build_react(model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings))
    result = await graph.ainvoke({"messages": [HumanMessage("Sum, and the time in Tokyo?")]}, run_config("t", settings))
    messages = result["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai", "tool", "ai"]
    results = tool_results(messages)
    assert results[0] == ("calculator", "5555", "success")
    assert results[1][0] == "current_time" and "(Asia/Tokyo, UTC+0900)" in results[1][1]
    assert messages[-1].text == "5555, and it is evening in Tokyo."
    assert {m.name for m in messages if isinstance(m, AIMessage)} == {"react"}
    assert "calculator" in model.prompts[0][0].text  # the system prompt tells the model about its tools


async def test_a_failing_tool_is_reported_to_the_model_and_the_run_goes_on() -> None:
    @tool
    async def flaky(x: str) -> str:
        """Always fails, with a secret in its error."""
        raise RuntimeError("db password=hunter2")

    @tool
    async def picky(x: str) -> str:
        """Refuses, with a message written for the model."""
        raise ToolException("x must be a colour")

    settings = make_settings()
    model = ScriptedChatModel(
        replies=[call("flaky", {"x": "a"}), call("picky", {"x": "b"}), call("nope", {}), call("picky", {}), "Sorry."]
    )
    graph = build_react(model, settings=settings, tools=[flaky, picky])
    result = await graph.ainvoke({"messages": [HumanMessage("go")]}, run_config("t", settings))
    results = tool_results(result["messages"])
    assert [(name, status) for name, _, status in results] == [
        ("flaky", "error"),
        ("picky", "error"),
        ("nope", "error"),
        ("picky", "error"),
    ]
    assert results[0][1] == "The tool flaky failed (RuntimeError). Try something else or answer without it."
    assert results[1][1] == "x must be a colour"
    assert "not a valid tool" in results[2][1]
    assert "x" in results[3][1] and "required" in results[3][1].lower()  # bad arguments, from ToolNode
    assert "hunter2" not in str(result["messages"])
    assert result["messages"][-1].text == "Sorry."
    assert model.prompts[1][-1].text == results[0][1]  # the model read what went wrong


async def test_a_slow_tool_times_out_as_a_message() -> None:
    @tool
    async def slow(x: str) -> str:
        """Takes too long."""
        await asyncio.sleep(30)
        return "late"

    settings = make_settings(tool_timeout_s=0.2)
    model = ScriptedChatModel(replies=[call("slow", {"x": "a"}), "gave up"])
    result = await build_react(model, settings=settings, tools=[slow]).ainvoke(
        {"messages": [HumanMessage("go")]}, run_config("t", settings)
    )
    assert tool_results(result["messages"]) == [
        ("slow", "The tool slow did not finish in time. Try again later or answer without it.", "error")
    ]
    assert result["messages"][-1].text == "gave up"


async def test_streams_tokens_and_tool_calls() -> None:
    settings = make_settings()
    model = ScriptedChatModel(replies=[call("calculator", {"expression": "6 * 7"}), "The answer is 42."])
    graph = build_react(model, settings=settings, tools=builtin_tools(settings))
    tokens, tool_call_names = [], []
    async for chunk, metadata in graph.astream(
        {"messages": [HumanMessage("6 * 7?")]}, run_config("t", settings), stream_mode="messages"
    ):
        if isinstance(chunk, AIMessageChunk):
            assert metadata["lc_agent_name"] == "react"
            tokens.append(chunk.text)
            tool_call_names += [c["name"] for c in chunk.tool_call_chunks]
    assert "".join(tokens) == "The answer is 42."
    assert tool_call_names == ["calculator"]


async def test_calls_a_real_mcp_server_tool() -> None:
    servers = {"echo": {"transport": "stdio", "command": sys.executable, "args": [str(ECHO_SERVER)]}}
    settings = make_settings(mcp_servers=servers)
    model = ScriptedChatModel(replies=[call("echo", {"text": "over stdio"}), call("explode", {"text": "x"}), "done"])
    async with open_tools(settings) as tools:
        graph = build_react(model, settings=settings, checkpointer=InMemorySaver(), tools=tools)
        result = await graph.ainvoke({"messages": [HumanMessage("echo it")]}, run_config("t", settings))
    results = tool_results(result["messages"])
    assert results[0] == ("echo", "echo: over stdio", "success")
    assert results[1][0] == "explode" and results[1][2] == "error"  # the server's error, as a message
    assert result["messages"][-1].text == "done"
    assert_every_tool_call_answered(result["messages"])


async def test_without_tools_it_is_a_plain_chat() -> None:
    settings = make_settings()
    graph = build_react(ScriptedChatModel(echo=True), settings=settings)
    result = await graph.ainvoke({"messages": [HumanMessage("hi")]}, run_config("t", settings))
    assert result["messages"][-1].text == "echo: hi"


async def test_a_tool_that_could_not_connect_is_retried_once() -> None:
    attempts: list[str] = []

    @tool
    async def remote(x: str) -> str:
        """Reaches a server that refuses the first connection."""
        attempts.append(x)
        if len(attempts) == 1:
            raise httpx.ConnectError("connection refused")
        return "reached"

    settings = make_settings()
    model = ScriptedChatModel(replies=[call("remote", {"x": "a"}), "ok"])
    result = await build_react(model, settings=settings, tools=[remote]).ainvoke(
        {"messages": [HumanMessage("go")]}, run_config("t", settings)
    )
    assert attempts == ["a", "a"]
    assert tool_results(result["messages"]) == [("remote", "reached", "success")]
