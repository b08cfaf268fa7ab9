"""The real embedded model (SmolLM2-135M on llama.cpp) completing a calculator round trip in the ReAct agent."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.agents.react import build_react
from chatplane.llm import open_chat_model
from chatplane.tools import builtin_tools
from tests.agents.helpers import assert_every_tool_call_answered, run_config
from tests.conftest import make_settings

pytestmark = pytest.mark.embedded


async def test_react_answers_with_a_calculator_call_on_the_embedded_model(tmp_path) -> None:
    settings = make_settings(model="local:smollm2-135m", docs_dir=str(tmp_path / "docs"))
    async with open_chat_model(settings.model, settings) as handle:
        graph = build_react(
            handle.model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings)
        )
        config = run_config("embedded", settings)
        result = await graph.ainvoke({"messages": [HumanMessage("what is 1234 + 4321")]}, config)
        messages = result["messages"]
        calculator_results = [m for m in messages if isinstance(m, ToolMessage) and m.name == "calculator"]
        assert calculator_results, [m.pretty_repr() for m in messages]
        assert "5555" in calculator_results[0].text
        assert isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls and messages[-1].text.strip()
        assert_every_tool_call_answered(messages)

        # the same thread goes on, streamed: history with tool calls is sent back to llama.cpp without trouble
        pieces = []
        async for chunk, _meta in graph.astream(
            {"messages": [HumanMessage("What is 17 * 23?")]}, config, stream_mode="messages"
        ):
            if isinstance(chunk, AIMessageChunk) and chunk.text:
                pieces.append(chunk.text)
        state = await graph.aget_state(config)
        later = state.values["messages"][len(messages) :]
        assert [m.type for m in later] == ["human", "ai", "tool", "ai"]
        assert later[2].name == "calculator" and later[2].text == "391"
        assert "".join(pieces).strip()
