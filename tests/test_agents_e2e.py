"""The three agents through a real server: tools, hand-offs, agent choice per session, human approval."""

from __future__ import annotations

import httpx
import pytest

from tests.sse import iter_events

pytestmark = pytest.mark.e2e

CALC = 'tool:calculator:{"expression":"1234+4321"}|The answer is 5555.'


def _session_thread(client: httpx.Client, session_id: str) -> str:
    threads = client.get("/v1/threads").json()["threads"]
    return next(t["thread_id"] for t in threads if t["session_id"] == session_id)


def test_chat_with_the_react_agent_calls_a_tool(server_factory) -> None:
    server = server_factory({"CHATPLANE_MODEL": f"fake:{CALC}", "CHATPLANE_STORAGE_URL": "memory://"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        reply = client.post("/chat", json={"user_id": "a", "message": "what is 1234 + 4321", "agent": "react"})
        assert reply.status_code == 200 and reply.json()["response"] == "The answer is 5555."
        messages = client.get(f"/v1/threads/{_session_thread(client, 'session-a')}/messages").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
        assert messages[1]["tool_calls"][0]["name"] == "calculator" and messages[2]["content"] == "5555"
        again = client.post("/chat", json={"user_id": "a", "message": "hi", "agent": "chat"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "agent_mismatch"


def test_chat_with_the_multi_agent(server_factory) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        reply = client.post("/chat", json={"user_id": "m", "message": "hello team", "agent": "multi"})
        assert reply.status_code == 200 and reply.json()["response"]
        messages = client.get(f"/v1/threads/{_session_thread(client, 'session-m')}/messages").json()["messages"]
        assert messages[-1]["role"] == "assistant" and messages[-1]["name"]


def test_sensitive_tool_waits_for_approval_over_http(server_factory) -> None:
    server = server_factory(
        {
            "CHATPLANE_MODEL": f"fake:{CALC}",
            "CHATPLANE_STORAGE_URL": "memory://",
            "CHATPLANE_SENSITIVE_TOOLS": '["calculator"]',
        }
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tid = client.post("/v1/threads", json={"agent": "react"}).json()["thread_id"]
        first = list(iter_events(client, "POST", f"/v1/threads/{tid}/runs/stream", json={"message": "add them"}))
        assert first[-1]["type"] == "interrupt"
        request = first[-1]["data"]["requests"][0]["value"]["action_requests"][0]
        assert request["name"] == "calculator" and request["args"] == {"expression": "1234+4321"}
        run_id = first[-1]["run_id"]
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "waiting"
        assert client.post(f"/v1/threads/{tid}/runs", json={"message": "meanwhile"}).status_code == 409
        resumed = client.post(f"/v1/runs/{run_id}/resume", json={"decisions": [{"type": "approve"}]})
        assert resumed.status_code == 202
        rest = list(
            iter_events(client, "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": str(first[-1]["id"])})
        )
        assert rest[0]["type"] == "run_resumed" and rest[-1]["type"] == "run_completed"
        assert any(e["type"] == "tool_result" and e["data"]["content"] == "5555" for e in rest)
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"
