"""``LeanChatOpenAI``: the same requests, answers and errors as ``ChatOpenAI``, through a real HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from chatplane.openai_model import LeanChatOpenAI

USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        if self.server.status != 200:
            error = json.dumps({"error": {"message": "no", "type": "x", "code": None}}).encode()
            self._send(self.server.status, "application/json", error)
        elif body.get("stream"):
            chunks = [
                _chunk({"role": "assistant", "content": ""}),
                _chunk({"content": "Hel"}),
                _chunk({"content": "lo"}),
                _chunk({}, finish="stop"),
                _chunk({}, usage=USAGE),
                b"data: [DONE]\n\n",
            ]
            self._send(200, "text/event-stream", b"".join(chunks))
        else:
            message = {"role": "assistant", "content": "Hello"}
            completion = {
                "id": "c1",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": USAGE,
            }
            self._send(200, "application/json", json.dumps(completion).encode())

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return query


CONVERSATION = [
    SystemMessage("Be brief."),
    HumanMessage("look up cats"),
    AIMessage("", tool_calls=[{"id": "call-1", "name": "lookup", "args": {"query": "cats"}}]),
    ToolMessage("cats purr", tool_call_id="call-1"),
    HumanMessage("and so?"),
]


def _model(cls: type[ChatOpenAI], recorder: _Recorder) -> Any:
    model = cls(
        model="m",
        api_key=SecretStr("sk-test"),
        base_url=recorder.base_url,
        max_retries=0,
        temperature=0.2,
        max_completion_tokens=50,
        stream_usage=True,
    )
    return model.bind_tools([lookup])


@pytest.mark.parametrize("streamed", [False, True])
async def test_requests_and_answers_are_chat_openais(recorder: _Recorder, streamed: bool) -> None:
    answers = []
    for cls in (ChatOpenAI, LeanChatOpenAI):
        model = _model(cls, recorder)
        if streamed:
            chunks = [chunk async for chunk in model.astream(CONVERSATION)]
            assert [c.text for c in chunks if c.text] == ["Hel", "lo"]
            message = chunks[0]
            for chunk in chunks[1:]:
                message += chunk
        else:
            message = await model.ainvoke(CONVERSATION)
        answers.append((message.text, message.usage_metadata, message.tool_calls))
    (plain_headers, plain_body), (lean_headers, lean_body) = recorder.requests
    assert lean_body == plain_body and lean_body["stream"] is streamed and len(lean_body["messages"]) == 5
    assert lean_headers["authorization"] == plain_headers["authorization"] == "Bearer sk-test"
    assert answers[0] == answers[1] and answers[1][0] == "Hello" and answers[1][1]["total_tokens"] == 13


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("status", "error"),
    [(400, openai.BadRequestError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
async def test_errors_keep_the_sdks_types(recorder: _Recorder, streamed: bool, status: int, error: type) -> None:
    recorder.status = status
    model = _model(LeanChatOpenAI, recorder)
    with pytest.raises(error) as caught:
        if streamed:
            async for _ in model.astream(CONVERSATION):
                pass
        else:
            await model.ainvoke(CONVERSATION)
    assert caught.value.status_code == status


async def test_a_dead_endpoint_is_a_connection_error(recorder: _Recorder) -> None:
    recorder.shutdown()
    recorder.server_close()
    model = _model(LeanChatOpenAI, recorder)
    with pytest.raises(openai.APIConnectionError):
        await model.ainvoke(CONVERSATION)
