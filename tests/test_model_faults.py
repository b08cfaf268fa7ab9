"""Model faults through a real server, against the fault-injecting mock OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from benchmarks.mock_openai import MockOpenAIServer
from chatplane.llm.fake import FAKE_SECRET
from tests.sse import iter_events

pytestmark = pytest.mark.e2e


@pytest.fixture
def mock() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer(ttft=0.01, token_interval=0.001, tokens=8, reply="echo") as server:
        yield server


@pytest.fixture
def server(server_factory, mock: MockOpenAIServer):  # type: ignore[no-untyped-def]
    return server_factory(
        {
            "CHATPLANE_MODEL": "openai:mock-model",
            "OPENAI_BASE_URL": mock.base_url,
            "OPENAI_API_KEY": f"not-a-real-key-{FAKE_SECRET}",
            "CHATPLANE_STORAGE_URL": "memory://",
            "CHATPLANE_MODEL_TIMEOUT_S": "1.5",
            "CHATPLANE_MODEL_MAX_RETRIES": "2",
        }
    )


def _chat(server, message: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(f"{server.url}/chat", json={"user_id": "u", "message": message}, timeout=60)


def test_429s_are_retried_then_answered(server, mock: MockOpenAIServer) -> None:
    mock.configure(fault="429", fail_first=2, retry_after=0.05)
    mock.reset_stats()
    response = _chat(server, "hello after rate limits")
    assert response.status_code == 200 and response.json()["response"] == "hello after rate limits"
    assert mock.stats()["requests"] == 3


def test_persistent_500s_give_502_keep_the_message_and_retry_works(server, mock: MockOpenAIServer) -> None:
    mock.configure(fault="500")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        tid = client.post("/v1/threads", json={}).json()["thread_id"]
        failed = client.post(f"/v1/threads/{tid}/runs", json={"message": "keep this"})
        assert failed.status_code == 502
        error = failed.json()["error"]
        assert error["code"] == "model_error" and FAKE_SECRET not in failed.text
        assert [m["content"] for m in client.get(f"/v1/threads/{tid}/messages").json()["messages"]] == ["keep this"]
        mock.configure(fault="none")
        retried = client.post(f"/v1/runs/{error['run_id']}/retry")
        assert retried.status_code == 202
        events = list(iter_events(client, "GET", f"/v1/runs/{retried.json()['run_id']}/stream"))
        assert events[-1]["type"] == "run_completed"
        messages = client.get(f"/v1/threads/{tid}/messages").json()["messages"]
        assert [m["content"] for m in messages] == ["keep this", "keep this"]  # the echo answers the kept message
    assert FAKE_SECRET not in server.log()


def test_a_hanging_model_is_a_504(server, mock: MockOpenAIServer) -> None:
    mock.configure(fault="hang")
    response = _chat(server, "anyone?")
    assert response.status_code == 504 and response.json()["error"]["code"] == "model_timeout"


def test_a_dropped_stream_is_retried(server, mock: MockOpenAIServer) -> None:
    mock.configure(fault="drop", fail_first=1, drop_after=2)
    response = _chat(server, "finish this sentence please")
    assert response.status_code == 200 and response.json()["response"] == "finish this sentence please"


def test_a_waiting_caller_gets_a_whole_answer_and_a_streaming_one_gets_tokens(server, mock: MockOpenAIServer) -> None:
    mock.reset_stats()
    assert _chat(server, "in one piece").json()["response"] == "in one piece"
    assert (mock.stats()["requests"], mock.stats()["streamed"]) == (1, 0)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        tid = client.post("/v1/threads", json={}).json()["thread_id"]
        events = list(iter_events(client, "POST", f"/v1/threads/{tid}/runs/stream", json={"message": "bit by bit"}))
        tokens = [e["data"]["text"] for e in events if e["type"] == "token"]
        assert len(tokens) > 1 and "".join(tokens) == "bit by bit"
        assert (mock.stats()["requests"], mock.stats()["streamed"]) == (2, 1)
        waited = client.post(f"/v1/threads/{tid}/runs", json={"message": "and whole again"}).json()
        replay = list(iter_events(client, "GET", f"/v1/runs/{waited['run_id']}/stream"))
        assert [e["type"] for e in replay if e["type"] in ("token", "message")] == ["message"]
        assert waited["output"]["content"] == "and whole again"
    assert mock.stats()["streamed"] == 1


@pytest.mark.parametrize(("fault", "changes"), [("429", {"retry_after": 0.05}), ("drop", {"drop_after": 2})])
def test_a_failed_stream_is_retried(server, mock: MockOpenAIServer, fault: str, changes: dict) -> None:  # type: ignore[type-arg]
    mock.configure(fault=fault, fail_first=1, **changes)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        tid = client.post("/v1/threads", json={}).json()["thread_id"]
        events = list(iter_events(client, "POST", f"/v1/threads/{tid}/runs/stream", json={"message": "streamed twice"}))
    assert events[-1]["type"] == "run_completed"
    (answer,) = [
        e["data"]["message"] for e in events if e["type"] == "message" and e["data"]["message"]["role"] == "assistant"
    ]
    assert answer["content"] == "streamed twice"
