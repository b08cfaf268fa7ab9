"""A team's own graphs through /v1, on SQLite and PostgreSQL: every run input, stream modes, interrupts, errors,
ownership. The graphs are ``tests/projects/demo`` (only their LLM is a fake)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatplane.storage.engine import open_storage
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings

DEMO = str(Path(__file__).parent.parent / "projects" / "demo" / "chatplane.json")


@pytest.fixture
async def api(client_for, persistent_storage_url: str) -> httpx.AsyncClient:
    return await client_for(make_settings(storage_url=persistent_storage_url, config_file=DEMO))


async def _thread(api: httpx.AsyncClient, agent: str, **headers: str) -> str:
    response = await api.post("/v1/threads", json={"agent": agent}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["thread_id"])


async def _stream(api: httpx.AsyncClient, url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    async with api.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        kind = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind:
                events.append((kind, json.loads(line.split(":", 1)[1])["data"]))
    return events


async def test_a_messages_graph_answers_and_streams_every_mode(api: httpx.AsyncClient) -> None:
    tid = await _thread(api, "support")
    waited = (await api.post(f"/v1/threads/{tid}/runs", json={"message": "hi"})).json()
    assert waited["status"] == "succeeded" and waited["output"]["content"] == "support says hi"
    modes = ["values", "updates", "messages", "custom", "debug"]
    events = await _stream(api, f"/v1/threads/{tid}/runs/stream", {"message": "again", "stream_mode": modes})
    kinds = [kind for kind, _ in events]
    for mode in modes:
        assert mode in kinds, mode
    assert "token" in kinds and kinds[-1] == "run_completed"
    custom = next(data for kind, data in events if kind == "custom")
    assert custom == {"namespace": [], "data": {"progress": "thinking"}}
    values = [data["data"] for kind, data in events if kind == "values"][-1]
    assert [m["content"] for m in values["messages"]][-2:] == ["again", "support says again"]
    chunk, metadata = next(data["data"] for kind, data in events if kind == "messages")
    assert chunk["type"] == "AIMessageChunk" and metadata["langgraph_node"] == "answer"
    history = (await api.get(f"/v1/threads/{tid}/messages")).json()["messages"]
    assert [m["content"] for m in history] == ["hi", "support says hi", "again", "support says again"]


async def test_a_graph_without_messages_takes_input_and_context(api: httpx.AsyncClient) -> None:
    tid = await _thread(api, "counter")
    body = {"input": {"count": 10}, "context": {"step": 5, "label": "five"}}
    run = (await api.post(f"/v1/threads/{tid}/runs", json=body)).json()
    assert run["status"] == "succeeded" and run["output"] is None
    assert run["values"] == {"count": 15, "log": ["five"]}
    events = await _stream(api, f"/v1/threads/{tid}/runs/stream", {"input": {}, "stream_mode": ["custom"]})
    assert ("custom", {"namespace": [], "data": {"adding": 1}}) in events
    state = (await api.get(f"/v1/threads/{tid}/state")).json()
    assert state["values"] == {"count": 16, "log": ["five", "tick"]} and state["next"] == []
    refused = await api.get(f"/v1/threads/{tid}/messages")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_messages"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi"}, "`message`"),
        ({"input": {"nope": 1}}, "`input.nope`"),
        ({"input": {"count": "many"}}, "`input.count`"),
        ({"input": {}, "context": {"step": "x"}}, "`context.step`"),
        ({"input": {}, "config": {"configurable": {"thread_id": "other"}}}, "`config.configurable.thread_id`"),
        ({"input": {}, "config": {"recursion_limit": 10_000}}, "`config.recursion_limit`"),
        ({"input": {}, "config": {"callbacks": []}}, "`config.callbacks`"),
        ({"command": {"goto": "nowhere"}}, "`command.goto`"),
        ({"command": {"update": {"nope": 1}}}, "`command.update.nope`"),
        ({"input": {}, "message": "both"}, "one of `message`, `input` or `command`"),
    ],
)
async def test_a_bad_run_is_a_422_naming_the_field_and_stores_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    tid = await _thread(api, "counter")
    refused = await api.post(f"/v1/threads/{tid}/runs", json=body)
    assert refused.status_code == 422, refused.text
    assert field in refused.json()["error"]["message"]
    assert (await api.get(f"/v1/threads/{tid}/runs")).json() == []


async def test_a_factory_gets_the_run_s_config(api: httpx.AsyncClient) -> None:
    tid = await _thread(api, "greeter")
    plain = (await api.post(f"/v1/threads/{tid}/runs", json={"message": "ann"})).json()
    assert plain["output"]["content"] == "hello, ann"
    body = {"message": "bob", "config": {"configurable": {"greeting": "good day"}}}
    assert (await api.post(f"/v1/threads/{tid}/runs", json=body)).json()["output"]["content"] == "good day, bob"


async def test_an_interrupt_in_a_subgraph_waits_then_resumes(api: httpx.AsyncClient) -> None:
    tid = await _thread(api, "approval")
    body = {"input": {"request": "refund"}, "stream_mode": ["updates"], "stream_subgraphs": True}
    events = await _stream(api, f"/v1/threads/{tid}/runs/stream", body)
    kind, paused = events[-1]
    assert kind == "interrupt" and paused["requests"][0]["value"] == {"question": "approve refund?"}
    assert any(kind == "updates" and data["namespace"] for kind, data in events)  # the subgraph's own parts
    run_id = (await api.get(f"/v1/threads/{tid}/runs")).json()[0]["run_id"]
    assert (await api.get(f"/v1/runs/{run_id}")).json()["status"] == "waiting"
    resumed = await api.post(f"/v1/runs/{run_id}/resume", json={"resume": "yes"})
    assert resumed.status_code == 202
    async with api.stream("GET", f"/v1/runs/{run_id}/stream?after={len(events)}") as response:
        _ = [line async for line in response.aiter_lines()]
    assert (await api.get(f"/v1/runs/{run_id}")).json()["status"] == "succeeded"
    state = (await api.get(f"/v1/threads/{tid}/state")).json()["values"]
    assert state == {"request": "refund", "decision": "yes", "done": True}

    # the same through a run with `command.resume`: the waiting run takes it
    await api.post(f"/v1/threads/{tid}/runs", json={"input": {"request": "swap"}, "background": True})
    waiting = await _wait_status(api, tid, "waiting")
    answer = await api.post(f"/v1/threads/{tid}/runs", json={"command": {"resume": "no"}, "background": True})
    assert answer.json()["run_id"] == waiting
    await _wait_status(api, tid, "succeeded")
    assert (await api.get(f"/v1/threads/{tid}/state")).json()["values"]["decision"] == "no"


async def _wait_status(api: httpx.AsyncClient, tid: str, status: str) -> str:
    for _ in range(200):
        latest = (await api.get(f"/v1/threads/{tid}/runs")).json()[0]
        if latest["status"] == status:
            return str(latest["run_id"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no run reached {status}")


async def test_a_graph_s_run_is_cancelled_and_double_texting_holds(api: httpx.AsyncClient) -> None:
    tid = await _thread(api, "steps")
    run = (await api.post(f"/v1/threads/{tid}/runs", json={"input": {}, "background": True})).json()
    busy = await api.post(f"/v1/threads/{tid}/runs", json={"input": {}})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "thread_busy"
    queued = (
        await api.post(f"/v1/threads/{tid}/runs", json={"input": {}, "multitask": "enqueue", "background": True})
    ).json()
    await asyncio.sleep(0.6)  # step a has finished
    cancelled = (await api.post(f"/v1/runs/{run['run_id']}/cancel")).json()
    assert cancelled["status"] == "cancelled"
    await _wait_status(api, tid, "succeeded")
    assert (await api.get(f"/v1/runs/{queued['run_id']}")).json()["status"] == "succeeded"
    done = (await api.get(f"/v1/threads/{tid}/state")).json()["values"]["done"]
    assert done[0] == "a" and done[-3:] == ["a", "b", "c"] and "c" not in done[:-3]  # cut short, then a whole run


async def test_assistants_configure_graphs_and_agent_kinds(api: httpx.AsyncClient) -> None:
    counter = (await api.post("/v1/assistants", json={"graph_id": "counter", "context": {"step": 3}})).json()
    tid = await _thread(api, counter["assistant_id"])
    run = (await api.post(f"/v1/threads/{tid}/runs", json={"input": {"count": 0}})).json()
    assert run["values"]["count"] == 3
    agents = (await api.get("/agents")).json()
    assert "lookup_order" in agents["tools"]
    counter_info = next(a for a in agents["agents"] if a["name"] == "counter")
    assert counter_info["kind"] == "graph" and not counter_info["messages"]
    assert set(counter_info["input_schema"]["properties"]) == {"count", "log"}
    assert set(counter_info["context_schema"]["properties"]) == {"step", "label"}
    context = {"system_prompt": "You are the helpdesk.", "tools": ["lookup_order"]}
    helpdesk = await api.post("/v1/assistants", json={"graph_id": "helpdesk", "context": context})
    assert helpdesk.status_code == 201, helpdesk.text
    tid = await _thread(api, helpdesk.json()["assistant_id"])
    answered = (await api.post(f"/v1/threads/{tid}/runs", json={"message": "where is 7?"})).json()
    assert answered["status"] == "succeeded" and answered["output"]["content"]
    bad = await api.post("/v1/assistants", json={"graph_id": "helpdesk", "context": {"tools": ["nope"]}})
    assert bad.status_code == 422 and "`context.tools`" in bad.json()["error"]["message"]
    run_context = await api.post(f"/v1/threads/{tid}/runs", json={"message": "x", "context": {"a": 1}})
    assert run_context.status_code == 422


async def test_another_user_sees_none_of_it(client_for, persistent_storage_url: str) -> None:
    settings = make_settings(storage_url=persistent_storage_url, config_file=DEMO)
    async with open_storage(settings) as storage:
        store = ApiKeyStore(storage.db)
        alice = {"Authorization": f"Bearer {(await store.create('alice'))[1]}"}
        bob = {"Authorization": f"Bearer {(await store.create('bob'))[1]}"}
    api = await client_for(settings)
    mine = (await api.post("/v1/assistants", json={"graph_id": "counter"}, headers=alice)).json()["assistant_id"]
    tid = (await api.post("/v1/threads", json={"agent": mine}, headers=alice)).json()["thread_id"]
    run = (await api.post(f"/v1/threads/{tid}/runs", json={"input": {}}, headers=alice)).json()
    assert run["status"] == "succeeded"
    for method, url in [
        ("GET", f"/v1/assistants/{mine}"),
        ("GET", f"/v1/threads/{tid}"),
        ("GET", f"/v1/threads/{tid}/state"),
        ("GET", f"/v1/runs/{run['run_id']}"),
        ("POST", f"/v1/runs/{run['run_id']}/cancel"),
    ]:
        assert (await api.request(method, url, headers=bob)).status_code == 404, url
    assert (await api.post(f"/v1/threads/{tid}/runs", json={"input": {}}, headers=bob)).status_code == 404
    refused = await api.post("/v1/threads", json={"agent": mine}, headers=bob)
    assert refused.status_code == 422


async def test_usage_counts_under_the_model_that_ran(client_for, persistent_storage_url: str) -> None:
    """An assistant's own model, and a graph's own (``graph:<id>``), are what its usage is counted under."""
    settings = make_settings(storage_url=persistent_storage_url, config_file=DEMO, model_allowlist=["fake:other"])
    api = await client_for(settings)
    assistant = await api.post("/v1/assistants", json={"graph_id": "chat", "context": {"model": "fake:other"}})
    tid = await _thread(api, assistant.json()["assistant_id"])
    assert (await api.post(f"/v1/threads/{tid}/runs", json={"message": "hi"})).json()["status"] == "succeeded"
    tid = await _thread(api, "support")
    assert (await api.post(f"/v1/threads/{tid}/runs", json={"message": "hi"})).json()["status"] == "succeeded"
    models = {m["model"]: m["runs"] for m in (await api.get("/v1/usage")).json()["by_model"]}
    assert models == {"fake:other": 1, "graph:support": 1}


async def test_a_streamed_resume_starts_where_the_run_paused(api: httpx.AsyncClient) -> None:
    tid = await _thread(api, "approval")
    first = await _stream(api, f"/v1/threads/{tid}/runs/stream", {"input": {"request": "refund"}})
    assert first[-1][0] == "interrupt"
    resumed = await _stream(api, f"/v1/threads/{tid}/runs/stream", {"command": {"resume": "ok"}})
    kinds = [kind for kind, _ in resumed]
    assert kinds[0] == "run_resumed" and kinds[-1] == "run_completed" and "interrupt" not in kinds
    assert resumed[0][1] == {"resume": "ok"}


async def test_a_run_that_takes_too_long_fails_with_the_run_limit(client_for, persistent_storage_url: str) -> None:
    settings = make_settings(storage_url=persistent_storage_url, config_file=DEMO, run_timeout_s=0.5)
    api = await client_for(settings)
    tid = await _thread(api, "steps")  # three steps of 0.4 s each
    refused = await api.post(f"/v1/threads/{tid}/runs", json={"input": {}})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "run_limit_exceeded"
    assert (await api.get(f"/v1/threads/{tid}/runs")).json()[0]["status"] == "failed"
    state = (await api.get(f"/v1/threads/{tid}/state")).json()
    assert state["values"]["done"] == ["a"]  # what it finished is kept; a retry goes on from there


async def test_a_run_names_its_assistant(api: httpx.AsyncClient) -> None:
    tid = (await api.post("/v1/threads", json={})).json()["thread_id"]  # the server's default agent, no run yet
    first = await api.post(f"/v1/threads/{tid}/runs", json={"input": {"count": 1}, "assistant_id": "counter"})
    assert first.status_code == 200 and first.json()["values"]["count"] == 2  # the thread took the counter graph
    other = await api.post(f"/v1/threads/{tid}/runs", json={"input": {}, "assistant_id": "chat"})
    assert other.status_code == 409


async def test_a_static_breakpoint_stops_the_run_and_a_run_with_no_input_goes_on(api: httpx.AsyncClient) -> None:
    tid = await _thread(api, "steps")
    body = {"input": {}, "interrupt_before": ["b"], "durability": "sync"}
    first = await api.post(f"/v1/threads/{tid}/runs", json=body)
    assert first.status_code == 200, first.text
    state = (await api.get(f"/v1/threads/{tid}/state")).json()
    assert state["values"]["done"] == ["a"] and state["next"] == ["b"]
    assert (await api.post(f"/v1/threads/{tid}/runs", json={})).status_code == 200  # no input: goes on from b
    assert (await api.get(f"/v1/threads/{tid}/state")).json()["values"]["done"] == ["a", "b", "c"]
    bad = await api.post(f"/v1/threads/{tid}/runs", json={"input": {}, "interrupt_after": ["nowhere"]})
    assert bad.status_code == 422 and "`interrupt_after`" in bad.json()["error"]["message"]
