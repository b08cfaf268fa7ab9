"""``LeanChatOpenAI``: the same requests, answers and errors as ``ChatOpenAI``, through real HTTP servers.

Every lean test runs both ways a chat completion can go: ``direct`` (posted on the ``aiohttp`` session that
``open_chat_model`` gives the model) and ``sdk`` (through the openai SDK client: no session, as a model built without
``open_chat_model``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import openai
import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from benchmarks.mock_openai import MockOpenAIServer
from chatplane.agents.middleware import _is_timeout, is_transient_model_error
from chatplane.llm.openai import LeanChatOpenAI
from chatplane.llm.openai_direct import model_http_client, model_http_session, sse_events
from tests.tcp_proxy import TcpProxy

USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


STREAM_ERROR = b'data: {"error": {"message": "overloaded", "type": "server_error", "code": "busy"}}\n\n'


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.paths: list[str] = []
        self.status = 200
        self.stream_error = False

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
        self.server.paths.append(self.path)
        if self.server.stream_error and body.get("stream"):
            self._send(200, "text/event-stream", _chunk({"role": "assistant", "content": ""}) + STREAM_ERROR)
        elif self.server.status != 200:
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


class _Http:
    """The model HTTP clients ``open_chat_model`` makes: the SDK's client on aiohttp and the session for chat
    completions. ``sdk_requests``: how many requests went through the SDK's client."""

    def __init__(self, client: Any, session: aiohttp.ClientSession) -> None:
        self.client, self.session = client, session
        self.sdk_requests = 0
        client.event_hooks = {"request": [self._count]}

    async def _count(self, request: Any) -> None:
        self.sdk_requests += 1


@pytest.fixture
async def http() -> AsyncIterator[_Http]:
    client, session = model_http_client(), await model_http_session()
    yield _Http(client, session)
    await session.close()
    await client.aclose()


@pytest.fixture(params=["direct", "sdk"])
def route(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _lean(route: str, http: _Http, base_url: str, **options: Any) -> LeanChatOpenAI:
    """A ``LeanChatOpenAI`` built like ``make_chat_model`` builds it; ``sdk``: without the session."""
    settings: dict[str, Any] = {
        "model": "m",
        "api_key": SecretStr("sk-test"),
        "base_url": base_url,
        "timeout": 5.0,
        "max_retries": 0,
        "stream_usage": True,
        "http_async_client": http.client,
        "http_session": http.session if route == "direct" else None,
    }
    return LeanChatOpenAI(**(settings | options))


def _model(cls: type[ChatOpenAI], recorder: _Recorder, **options: Any) -> Any:
    model = cls(
        model="m",
        api_key=SecretStr("sk-test"),
        base_url=recorder.base_url,
        max_retries=0,
        temperature=0.2,
        max_completion_tokens=50,
        stream_usage=True,
        **options,
    )
    return model.bind_tools([lookup])


def _lean_model(route: str, http: _Http, recorder: _Recorder) -> Any:
    session = http.session if route == "direct" else None
    return _model(LeanChatOpenAI, recorder, http_async_client=http.client, http_session=session)


async def _answer(model: Any, streamed: bool, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    """The answer to ``messages``, whole (``ainvoke``) or put together from the chunks of ``astream``."""
    if not streamed:
        return await model.ainvoke(messages or CONVERSATION, **kwargs)
    chunks = [chunk async for chunk in model.astream(messages or CONVERSATION, **kwargs)]
    message = chunks[0]
    for chunk in chunks[1:]:
        message += chunk
    return message


@pytest.mark.parametrize("streamed", [False, True])
async def test_requests_and_answers_are_chat_openais(recorder: _Recorder, http: _Http, streamed: bool) -> None:
    answers = []
    models = [_model(ChatOpenAI, recorder), _lean_model("sdk", http, recorder), _lean_model("direct", http, recorder)]
    for model in models:
        if streamed:
            chunks = [chunk async for chunk in model.astream(CONVERSATION)]
            assert [c.text for c in chunks if c.text] == ["Hel", "lo"]
            message = chunks[0]
            for chunk in chunks[1:]:
                message += chunk
        else:
            message = await model.ainvoke(CONVERSATION)
        answers.append((message.text, message.usage_metadata, message.tool_calls))
    requests = recorder.requests
    (plain_headers, plain_body), (sdk_headers, sdk_body), (direct_headers, direct_body) = requests
    assert direct_body == sdk_body == plain_body and direct_body["stream"] is streamed
    assert len(direct_body["messages"]) == 5 and direct_body["tools"][0]["function"]["name"] == "lookup"
    assert direct_headers["authorization"] == plain_headers["authorization"] == "Bearer sk-test"
    # the SDK's headers, all of them (aiohttp keeps connections alive without saying so)
    assert direct_headers == {k: v for k, v in sdk_headers.items() if k != "connection"}
    assert direct_headers["content-type"] == "application/json"
    assert direct_headers["user-agent"] == plain_headers["user-agent"]
    assert set(recorder.paths) == {"/v1/chat/completions"}
    assert http.sdk_requests == 1
    assert answers[0] == answers[1] == answers[2] and answers[2][0] == "Hello" and answers[2][1]["total_tokens"] == 13


async def test_sync_calls_stay_chat_openais(recorder: _Recorder, http: _Http) -> None:
    """``invoke`` and ``stream`` (no event loop of their own) go through ``ChatOpenAI``'s sync client."""
    model = _lean_model("direct", http, recorder)
    message = await asyncio.to_thread(model.invoke, CONVERSATION)
    chunks = await asyncio.to_thread(lambda: list(model.stream(CONVERSATION)))
    assert message.text == "Hello" and "".join(c.text for c in chunks) == "Hello"
    assert [body["stream"] for _, body in recorder.requests] == [False, True]


async def test_per_call_options_and_client_settings_are_sent(
    recorder: _Recorder, http: _Http, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``extra_body``, ``extra_headers``, ``extra_query`` and ``timeout`` of a call, and the organization, project,
    default headers and default query of the model: sent as ``ChatOpenAI`` sends them."""
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-1")
    settings = {
        "organization": "org-1",
        "default_headers": {"X-Team": "blue"},
        "default_query": {"api-version": "7"},
        "timeout": 7.5,
    }
    call = {"extra_body": {"seed": 3}, "extra_headers": {"X-Call": "c1"}, "extra_query": {"q": "v"}, "timeout": 3}
    plain = _model(ChatOpenAI, recorder, **settings)
    direct = _model(LeanChatOpenAI, recorder, **settings, http_async_client=http.client, http_session=http.session)
    for model in (plain, direct):
        await model.ainvoke(CONVERSATION, **call)
        await model.ainvoke(CONVERSATION)  # and without per-call options: the client's settings only
    (plain, plain_body), (plain_bare, _), (direct, direct_body), (direct_bare, _) = recorder.requests
    assert direct_body == plain_body and direct_body["seed"] == 3
    assert recorder.paths[0] == recorder.paths[2] == "/v1/chat/completions?api-version=7&q=v"
    assert recorder.paths[1] == recorder.paths[3] == "/v1/chat/completions?api-version=7"
    for headers, bare in ((plain, plain_bare), (direct, direct_bare)):
        assert headers["x-call"] == "c1" and "x-call" not in bare
        assert headers["openai-organization"] == bare["openai-organization"] == "org-1"
        assert headers["openai-project"] == bare["openai-project"] == "proj-1"
        assert headers["x-team"] == bare["x-team"] == "blue"
        assert (headers["x-stainless-read-timeout"], bare["x-stainless-read-timeout"]) == ("3", "7.5")
    assert direct["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_errors_keep_the_sdks_types(
    recorder: _Recorder, http: _Http, streamed: bool, status: int, error: type
) -> None:
    recorder.status = status
    raised = []
    for model in (
        _model(ChatOpenAI, recorder),
        _lean_model("sdk", http, recorder),
        _lean_model("direct", http, recorder),
    ):
        with pytest.raises(error) as caught:
            await _answer(model, streamed)
        assert caught.value.status_code == status
        raised.append((type(caught.value), str(caught.value), caught.value.body, caught.value.response.status_code))
    assert raised[0] == raised[1] == raised[2] and raised[2][1] == f"Error code: {status} - no"


async def test_an_error_in_the_stream_is_the_sdks(recorder: _Recorder, http: _Http) -> None:
    recorder.stream_error = True
    raised = []
    for model in (
        _model(ChatOpenAI, recorder),
        _lean_model("sdk", http, recorder),
        _lean_model("direct", http, recorder),
    ):
        with pytest.raises(openai.APIError) as caught:
            await _answer(model, streamed=True)
        raised.append((type(caught.value), caught.value.message, caught.value.body, caught.value.code))
    assert raised[0] == raised[1] == raised[2]
    assert raised[2][1:] == ("overloaded", {"message": "overloaded", "type": "server_error", "code": "busy"}, "busy")


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_dead_endpoint_is_a_connection_error(
    recorder: _Recorder, http: _Http, route: str, streamed: bool
) -> None:
    recorder.shutdown()
    recorder.server_close()
    with pytest.raises(openai.APIConnectionError) as caught:
        await _answer(_lean_model(route, http, recorder), streamed)
    assert is_transient_model_error(caught.value)
    if route == "direct":  # a refused connection is no timeout (the SDK's aiohttp transport maps it to one)
        assert not _is_timeout(caught.value)


async def test_the_proxy_from_the_environment_is_used(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """Like the SDK's client, the session goes through ``HTTP_PROXY`` (read when the clients are made)."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{recorder.server_address[1]}")
    client, session = model_http_client(), await model_http_session()
    try:
        model = _lean(route, _Http(client, session), "http://model.invalid/v1")
        assert (await model.ainvoke([HumanMessage("hi")])).text == "Hello"
    finally:
        await session.close()
        await client.aclose()
    assert recorder.paths == ["http://model.invalid/v1/chat/completions"]


async def test_a_client_that_retries_by_itself_keeps_doing_so(http: _Http) -> None:
    """``max_retries`` > 0: the SDK client retries 429s itself (the direct path never does: chatplane's
    middleware retries)."""
    with MockOpenAIServer(ttft=0, token_interval=0, reply="echo", fault="429", fail_first=1, retry_after=0.01) as mock:
        model = _lean("direct", http, mock.base_url, max_retries=1)
        assert (await model.ainvoke([HumanMessage("second time lucky")])).text == "second time lucky"
        assert mock.stats()["requests"] == 2


# --- against the fault-injecting mock model server (benchmarks/mock_openai.py) -----------------------------------


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer(ttft=0, token_interval=0, reply="echo") as server:
        yield server


@pytest.fixture
def fresh_mock(mock: MockOpenAIServer) -> MockOpenAIServer:
    mock.configure(reset=True)
    mock.reset_stats()
    return mock


class _Tokens(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


@pytest.mark.parametrize("streamed", [False, True])
async def test_answers_usage_and_tokens_from_the_mock(
    fresh_mock: MockOpenAIServer, http: _Http, route: str, streamed: bool
) -> None:
    tokens = _Tokens()
    model = _lean(route, http, fresh_mock.base_url)
    message = await _answer(model, streamed, [HumanMessage("one two three four")], config={"callbacks": [tokens]})
    assert message.text == "one two three four"
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] == 4
    assert message.response_metadata["finish_reason"] == "stop"
    if streamed:
        assert len(tokens.tokens) > 1 and "".join(tokens.tokens) == "one two three four"
    stats = fresh_mock.stats()
    assert (stats["requests"], stats["streamed"]) == (1, int(streamed))
    assert http.sdk_requests == (route == "sdk")


@pytest.mark.parametrize("streamed", [False, True])
async def test_tool_calls_from_the_mock(fresh_mock: MockOpenAIServer, http: _Http, route: str, streamed: bool) -> None:
    fresh_mock.configure(tool_call={"name": "lookup", "arguments": {"query": "cats"}})
    model = _lean(route, http, fresh_mock.base_url).bind_tools([lookup])
    message = await _answer(model, streamed, [HumanMessage("look up cats")])
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("lookup", {"query": "cats"})]


@pytest.mark.parametrize("streamed", [False, True])
async def test_per_request_headers_reach_the_mock(
    fresh_mock: MockOpenAIServer, http: _Http, route: str, streamed: bool
) -> None:
    model = _lean(route, http, fresh_mock.base_url)
    headers = {"X-Mock-Reply": "text", "X-Mock-Reply-Text": "told by a header"}
    message = await _answer(model, streamed, [HumanMessage("hi")], extra_headers=headers)
    assert message.text == "told by a header"


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("fault", "error", "translated"),
    [
        ("429", openai.RateLimitError, "rate_limit"),
        ("500", openai.InternalServerError, "status"),
        ("503", openai.InternalServerError, "status"),
        ("hang", openai.APITimeoutError, "timeout"),
        ("drop", openai.APIConnectionError, "connection"),
    ],
)
async def test_faults_raise_what_the_sdk_raises(
    fresh_mock: MockOpenAIServer, http: _Http, streamed: bool, fault: str, error: type, translated: str
) -> None:
    """Same exception types both ways, classified alike by chatplane's retry and error translation."""
    fresh_mock.configure(fault=fault, retry_after=0.5, drop_after=2)
    raised = []
    for route in ("sdk", "direct"):
        # A short timeout only where it is the fault: on a busy machine 0.3 s may pass before a 500 arrives.
        model = _lean(route, http, fresh_mock.base_url, timeout=0.3 if fault == "hang" else 15)
        with pytest.raises(error) as caught:
            await _answer(model, streamed, [HumanMessage("a few words to drop")])
        exc = caught.value
        raised.append((type(exc), getattr(exc, "status_code", None), is_transient_model_error(exc), _is_timeout(exc)))
        if fault == "429":
            assert exc.response.headers["retry-after"] == "0.5"
    assert http.sdk_requests == 1  # the direct one did not go through the SDK's client
    assert raised[0] == raised[1]
    assert raised[1][2] is True and raised[1][3] is (fault == "hang")


async def test_connections_are_kept_alive_and_reused(fresh_mock: MockOpenAIServer, http: _Http) -> None:
    """Whole answers and streams ended by ``[DONE]`` hand their connection back to the pool."""
    proxy = _CountingProxy("127.0.0.1", fresh_mock.port)
    await proxy.start()
    try:
        model = _lean("direct", http, f"http://127.0.0.1:{proxy.port}/v1")
        for streamed in (False, True, True, False, True):
            assert (await _answer(model, streamed, [HumanMessage("again")])).text == "again"
    finally:
        await proxy.cut()
    assert proxy.accepted == 1


async def test_a_model_attempt_timeout_ends_a_hanging_stream(fresh_mock: MockOpenAIServer, http: _Http) -> None:
    """``ModelAttemptMiddleware``'s ``asyncio.timeout`` cancels a call the read timeout has not ended yet."""
    fresh_mock.configure(fault="hang")
    model = _lean("direct", http, fresh_mock.base_url, timeout=30)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await _answer(model, True, [HumanMessage("anyone?")])
    fresh_mock.configure(fault="none")
    assert (await model.ainvoke([HumanMessage("still works")])).text == "still works"


class _CountingProxy(TcpProxy):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.accepted = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await super()._handle(reader, writer)


# --- the server-sent events reader ----------------------------------------------------------------------------------


class _Received:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


@pytest.mark.parametrize(
    "chunks",
    [
        [b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'],
        [b"da", b'ta: {"a"', b":1}\n", b"\n", b'data: {"b":2}\n\n', b"data: [DONE]\n", b"\n"],
        [b'data: {"a":1}\r\n\r\ndata: {"b":2}\r', b"\n\r\ndata: [DONE]\r\n\r\n"],
        [b'data: {"a":1}\r\rdata:{"b":2}\r\r', b"data: [DONE]\r\r"],
        [b': keep-alive\n\nevent: ping\n\ndata: {"a":1}\nid: 1\n\nretry: 5\ndata: {"b":2}\n\ndata: [DONE]\n\n'],
    ],
)
async def test_events_in_any_framing(chunks: list[bytes]) -> None:
    events = [data async for data in sse_events(_Received(chunks))]  # type: ignore[arg-type]
    assert events == [b'{"a":1}', b'{"b":2}', b"[DONE]"]


async def test_events_join_data_lines_and_drop_an_unfinished_one() -> None:
    received = _Received([b'data: {\ndata: "a": 1}\n\ndata: {"cut": '])
    assert [data async for data in sse_events(received)] == [b'{\n"a": 1}']  # type: ignore[arg-type]


@pytest.mark.parametrize("model_name", ["m", "o3-mini"])
def test_a_message_is_converted_once_while_it_lives(monkeypatch: pytest.MonkeyPatch, model_name: str) -> None:
    """The payload is ``ChatOpenAI``'s, but a message this model sent before (the same object, unchanged) is not
    converted again: a thread's earlier turns cost nothing per call. A message given new content is converted again,
    and what is kept goes with the messages."""
    import gc

    import langchain_openai.chat_models.base as upstream

    converted: list[Any] = []
    convert = upstream._convert_message_to_dict

    def counted(message: Any, *args: Any, **kwargs: Any) -> Any:
        converted.append(message)
        return convert(message, *args, **kwargs)

    monkeypatch.setattr(upstream, "_convert_message_to_dict", counted)
    plain = ChatOpenAI(model=model_name, api_key=SecretStr("sk-test"))
    lean = LeanChatOpenAI(model=model_name, api_key=SecretStr("sk-test"))

    def payload(messages: list[Any]) -> dict[str, Any]:
        """Lean's payload, checked against ChatOpenAI's; the messages lean converted for it."""
        expected = plain._get_request_payload(messages)
        converted.clear()
        got = lean._get_request_payload(messages)
        assert got == expected
        return got

    history = [message.model_copy() for message in CONVERSATION]
    payload(history)
    assert converted == history
    longer = [*history, AIMessage("they purr"), history[1]]  # an answer since; the same message twice
    sent = payload(longer)
    assert converted == [longer[5]]
    assert sent["messages"][6] == sent["messages"][1]
    if model_name.startswith("o"):
        assert sent["messages"][0]["role"] == "developer"
    history[4].content = "and so, then?"
    payload(longer)
    assert converted == [history[4]]
    other_name = "m" if model_name.startswith("o") else "o3-mini"
    copy = lean.model_copy(update={"model_name": other_name})  # a copy converts for itself (the system role)
    other = ChatOpenAI(model=other_name, api_key=SecretStr("sk-test"))._get_request_payload(longer)
    assert copy._get_request_payload(longer) == other
    assert payload(longer)["messages"][0]["role"] != other["messages"][0]["role"]
    responses = {"api_key": SecretStr("sk-test"), "use_responses_api": True}
    expected = ChatOpenAI(model=model_name, **responses)._get_request_payload(longer)
    assert LeanChatOpenAI(model=model_name, **responses)._get_request_payload(longer) == expected
    kept = lean._sent[1] if lean._sent else None
    assert kept is not None and len(kept) == 6
    del history, longer, copy
    converted.clear()
    gc.collect()
    assert len(kept) == 0
