"""A real embedded model through ``react``: routed to the calculator, arguments under its schema, an answer streamed.

On Qwen2.5-Coder-0.5B, the smallest model whose routing means something (SmolLM2-135M picks whatever option comes
first: ``benchmarks/agent_eval.py``); ``make test`` installs it (491 MB, once, hash-checked). The 1.5B default would
cost the suite twice the download and three times the time for the same mechanism; which model answers how well is
measured in the benchmark, not asserted here.
"""

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

E2E_MODEL = "local:qwen2.5-coder-0.5b"


async def test_react_routes_to_a_tool_and_answers_on_a_real_embedded_model(tmp_path) -> None:
    # generous per-call timeout: the suite shares the machine; speed is measured in benchmarks/, not here
    settings = make_settings(model=E2E_MODEL, docs_dir=str(tmp_path / "docs"), model_timeout_s=300)
    async with open_chat_model(settings.model, settings) as handle:
        graph = build_react(
            handle.model, settings=settings, checkpointer=InMemorySaver(), tools=builtin_tools(settings)
        )
        config = run_config("embedded", settings)
        result = await graph.ainvoke({"messages": [HumanMessage("What is 1234 + 4321?")]}, config)
        messages = result["messages"]
        assert [m.type for m in messages] == ["human", "ai", "tool", "ai"], [m.pretty_repr() for m in messages]
        assert messages[1].tool_calls[0]["name"] == "calculator" and messages[2].text == "5555"
        assert isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls and "5555" in messages[-1].text
        assert_every_tool_call_answered(messages)

        # the same thread goes on, streamed: only the answer's tokens reach the client, not the routing JSON
        pieces = []
        async for chunk, _meta in graph.astream(
            {"messages": [HumanMessage("What is 17 * 23?")]}, config, stream_mode="messages"
        ):
            if isinstance(chunk, AIMessageChunk) and chunk.text:
                pieces.append(chunk.text)
        state = await graph.aget_state(config)
        later = state.values["messages"][len(messages) :]
        assert [m.type for m in later] == ["human", "ai", "tool", "ai"]
        assert isinstance(later[2], ToolMessage) and later[2].name == "calculator" and later[2].text == "391"
        assert "391" in later[3].text
        assert '"action"' not in "".join(pieces)
