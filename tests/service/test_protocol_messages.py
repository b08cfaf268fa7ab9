"""LangGraph's message chunks → the thread protocol's ``messages`` data, read back by the consumer the SDK uses
(``langchain_core``'s ``ChatModelStream``): text and tool calls, streamed chunk by chunk or sent whole."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_model_stream import ChatModelStream
from langchain_core.messages import AIMessage, AIMessageChunk

from chatplane.runs.jsonable import to_jsonable
from chatplane.service.langgraph.protocol_messages import MessageTranslator

_META = {"langgraph_node": "model"}


def _read(parts: list[tuple[list[str], dict[str, Any]]]) -> AIMessage:
    stream = ChatModelStream(namespace=[], node="model", message_id="m1")
    for _namespace, data in parts:
        stream.dispatch(data)
    return stream.output


def test_a_streamed_message_with_a_tool_call_is_read_back_whole() -> None:
    translator = MessageTranslator("run-1")
    chunks = [
        AIMessageChunk(content="Let me ", id="m1"),
        AIMessageChunk(
            content="look.", id="m1", tool_call_chunks=[{"name": "lookup", "args": '{"ord', "id": "c1", "index": 0}]
        ),
        AIMessageChunk(
            content="", id="m1", tool_call_chunks=[{"name": None, "args": 'er": 7}', "id": None, "index": 0}]
        ),
        AIMessageChunk(content="", id="m1", chunk_position="last"),
    ]
    parts = [p for chunk in chunks for p in translator.part([], [to_jsonable(chunk), _META])]
    assert parts[0][1] == {"event": "message-start", "role": "ai", "id": "m1", "metadata": {"run_id": "run-1", **_META}}
    assert parts[-1][1]["event"] == "message-finish" and translator.finish_all() == []
    message = _read(parts)
    assert message.text == "Let me look."
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [("lookup", {"order": 7}, "c1")]


def test_a_whole_message_and_one_never_marked_last_are_finished() -> None:
    translator = MessageTranslator("run-1")
    whole = AIMessage("done", id="m2", tool_calls=[{"name": "lookup", "args": {"order": 1}, "id": "c2"}])
    parts = translator.part(["sub:1"], [to_jsonable(whole), _META])
    assert all(ns == ["sub:1"] for ns, _ in parts)
    message = _read(parts)
    assert message.text == "done" and message.tool_calls[0]["args"] == {"order": 1}

    opened = translator.part([], [to_jsonable(AIMessageChunk(content="half", id="m3")), _META])
    assert opened[-1][1]["event"] == "content-block-delta"
    ended = translator.finish_all()  # the run paused or ended: the message ends with it
    assert [d["event"] for _, d in ended] == ["content-block-finish", "message-finish"]
    assert _read(opened + ended).text == "half"
