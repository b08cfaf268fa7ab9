"""The mock OpenAI-compatible server of ``benchmarks/`` through the official ``openai`` SDK, and a smoke run of the
load generator against a real chatplane server that talks to it. Behaviour only: no timing is asserted."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from benchmarks.load import Subject, run_concurrency
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.procs import ProcessProbe
from benchmarks.storage_probes import SqliteProbe
from benchmarks.targets import CHATPLANE_NO_QUOTAS, TARGETS, launched

FILLER_5 = "lorem ipsum dolor sit amet"
HELLO: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello mock"},
]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer(ttft=0, token_interval=0, tokens=5) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_mock(mock: MockOpenAIServer) -> None:
    mock.configure(reset=True)
    mock.reset_stats()


@pytest.fixture
async def client(mock: MockOpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=mock.base_url, api_key="x", max_retries=0, timeout=10) as client:
        yield client


async def _until(mock: MockOpenAIServer, key: str, value: int) -> dict[str, Any]:
    """Poll the mock's stats until ``key`` equals ``value`` (fails after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        stats = await mock.astats(prompts=False)
        if stats[key] == value:
            return stats
        assert time.monotonic() < deadline, f"{key} stayed {stats[key]}, expected {value}"
        await asyncio.sleep(0.02)


async def test_completion_has_text_usage_and_the_requested_model(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-test", messages=HELLO)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-test"
    assert completion.choices[0].message.content == FILLER_5
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 5


async def test_streaming_with_include_usage_ends_with_a_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FILLER_5
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


async def test_streaming_without_include_usage_has_no_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == FILLER_5


async def test_echo_and_fixed_replies(mock: MockOpenAIServer, client: openai.AsyncOpenAI) -> None:
    await mock.aconfigure(reply="echo")
    completion = await client.chat.completions.create(model="m", messages=HELLO)
    assert completion.choices[0].message.content == "hello mock"
    headers = {"X-Mock-Reply": "text", "X-Mock-Reply-Text": "Fixed, per request."}
    stream = await client.chat.completions.create(
        model="m",
        messages=HELLO,
        stream=True,
        extra_headers=headers,
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "Fixed, per request."


async def test_429_is_a_rate_limit_error_with_retry_after(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(
            model="m",
            messages=HELLO,
            extra_headers={"X-Mock-Fault": "429", "X-Mock-Retry-After": "7"},
        )
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors(mock: MockOpenAIServer, client: openai.AsyncOpenAI, status: int) -> None:
    await mock.aconfigure(fault=str(status))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=HELLO)
    assert caught.value.status_code == status
    assert (await mock.astats())["faults"] == {str(status): 1}


async def test_a_dropped_stream_raises_after_the_chunks_sent(
    mock: MockOpenAIServer, client: openai.AsyncOpenAI
) -> None:
    await mock.aconfigure(fault="drop", drop_after=2)
    received: list[str] = []
    stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["lorem", " ipsum"]
    with pytest.raises(openai.APIConnectionError):  # not streamed: the body is cut halfway
        await client.chat.completions.create(model="m", messages=HELLO)


async def test_a_hang_ends_in_a_client_timeout(mock: MockOpenAIServer, client: openai.AsyncOpenAI) -> None:
    await mock.aconfigure(fault="hang")
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=HELLO, timeout=0.3)
    await _until(mock, "in_flight", 0)  # the mock noticed the client going away


async def test_fail_first_n_then_succeed(mock: MockOpenAIServer) -> None:
    await mock.aconfigure(fault="429", fail_first=2, retry_after=0.01)
    async with openai.AsyncOpenAI(base_url=mock.base_url, api_key="x", max_retries=2) as retrying:
        completion = await retrying.chat.completions.create(model="m", messages=HELLO)
    assert completion.choices[0].message.content == FILLER_5
    stats = await mock.astats()
    assert (stats["requests"], stats["completed"], stats["faults"]) == (3, 1, {"429": 2})


async def test_fail_first_per_request_key(client: openai.AsyncOpenAI) -> None:
    headers = {"X-Mock-Fault": "503", "X-Mock-Fail-First": "1", "X-Mock-Fail-Key": "test-key"}
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="m", messages=HELLO, extra_headers=headers)
    completion = await client.chat.completions.create(model="m", messages=HELLO, extra_headers=headers)
    assert completion.choices[0].message.content == FILLER_5


async def test_stats_record_prompt_sizes_and_peak_concurrency(
    mock: MockOpenAIServer, client: openai.AsyncOpenAI
) -> None:
    history: list[ChatCompletionMessageParam] = [
        *HELLO,
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "And now?"},
    ]
    await client.chat.completions.create(model="m", messages=history)
    stats = await mock.astats()
    assert stats["prompt_messages"] == [4]
    assert stats["prompt_chars"] == [len("Be brief.hello mockHi.And now?")]
    assert stats["prompt_bytes"][0] > stats["prompt_chars"][0]

    hanging = {"X-Mock-Fault": "hang"}
    tasks = [
        asyncio.create_task(client.chat.completions.create(model="m", messages=HELLO, extra_headers=hanging))
        for _ in range(4)
    ]
    await _until(mock, "in_flight", 4)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stats = await _until(mock, "in_flight", 0)
    assert stats["in_flight_peak"] == 4
    assert stats["requests"] == 5


async def test_tool_calls_when_tools_are_offered(mock: MockOpenAIServer, client: openai.AsyncOpenAI) -> None:
    await mock.aconfigure(tool_call={"name": "get_weather", "arguments": {"city": "Paris"}})
    tools: list[ChatCompletionFunctionToolParam] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    first = await client.chat.completions.create(model="m", messages=HELLO, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    call = (first.choices[0].message.tool_calls or [])[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    after_tool: list[ChatCompletionMessageParam] = [
        *HELLO,
        {
            "role": "assistant",
            "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await client.chat.completions.create(model="m", messages=after_tool, tools=tools)
    assert second.choices[0].message.content == FILLER_5

    stream = await client.chat.completions.create(model="m", messages=HELLO, tools=tools, stream=True)
    chunks = [c async for c in stream]
    arguments = ""
    for chunk in chunks[:-1]:
        for delta in chunk.choices[0].delta.tool_calls or []:
            arguments += delta.function.arguments or "" if delta.function else ""
    assert json.loads(arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_models_health_and_control_validation(mock: MockOpenAIServer, client: openai.AsyncOpenAI) -> None:
    assert [m.id async for m in client.models.list()] == ["mock"]
    async with httpx.AsyncClient(base_url=mock.url) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.post("/_control", json={"no_such_setting": 1})).status_code == 400
        assert (await http.post("/_control", json={"fault": "explode"})).status_code == 400
        assert (await http.get("/_control")).json()["tokens"] == 5


def test_runs_in_its_own_process() -> None:
    with MockOpenAIServer(own_process=True, ttft=0, token_interval=0, tokens=3) as mock:
        assert mock.pid > 0 and mock.url.startswith("http://127.0.0.1:")
        assert mock.configure(reply="echo")["reply"] == "echo"
        answer = httpx.post(f"{mock.base_url}/chat/completions", json={"model": "m", "messages": HELLO}, timeout=10)
        assert answer.json()["choices"][0]["message"]["content"] == "hello mock"
        assert mock.stats()["requests"] == 1


@pytest.mark.e2e
async def test_load_generator_smoke_against_chatplane(
    mock: MockOpenAIServer, server_factory: Any, tmp_path: Path
) -> None:
    db = tmp_path / "bench.db"
    server = server_factory(
        {
            "CHATPLANE_MODEL": "openai:mock",
            "OPENAI_BASE_URL": mock.base_url,
            "OPENAI_API_KEY": "x",
            "CHATPLANE_STORAGE_URL": f"sqlite:///{db}",
            **CHATPLANE_NO_QUOTAS,
        }
    )
    pid = server.proc.pid
    subject = Subject("chatplane-sqlite", server.url, mock.url, pid, SqliteProbe(str(db), ProcessProbe(pid)))
    result = await run_concurrency(subject, users=2, turns=2)
    summary = result.summary()
    assert (result.ok, result.errors, result.stopped) == (4, 0, None)
    assert len(result.prompt_messages) >= 4  # at least one model call per turn
    assert max(result.prompt_messages) > min(result.prompt_messages)  # the second turn carries the history
    for key in ("throughput", "p50", "p99", "overhead_p50", "cpu_ms_per_turn", "peak_rss_mib", "stored_kib_per_turn"):
        assert summary[key] is not None, key


@pytest.mark.e2e
async def test_the_floor_target_answers_each_message_alone(mock: MockOpenAIServer, tmp_path: Path) -> None:
    """``floor`` (``benchmarks/floor_app.py``), started as a benchmark run starts it: every turn is one model call
    carrying only its message, answered in the shape the load generator reads."""
    async with launched(TARGETS["floor"], mock_url=mock.url, workdir=tmp_path, pg_admin_url="") as subject:
        result = await run_concurrency(subject, users=2, turns=2)
    assert (result.ok, result.errors, result.stopped) == (4, 0, None)
    assert result.prompt_messages == [1, 1, 1, 1]
    assert result.summary()["overhead_p50"] is not None
