"""Runs through LangGraph's own client (``langgraph-sdk``, pinned in the lock file): create, stream, wait, join,
join the stream, cancel, list, get, delete, each multitask strategy and what is refused — against a real server
serving the demo project."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langgraph_sdk.errors import APIStatusError

pytestmark = pytest.mark.e2e


def _new() -> str:
    return str(uuid.uuid4())


def _status_of(exc: pytest.ExceptionInfo[APIStatusError]) -> tuple[int, str]:
    return exc.value.response.status_code, exc.value.response.json()["error"]["message"]


def test_create_join_get_list_and_delete_with_the_sync_client(lg_sync_client: Any) -> None:
    client = lg_sync_client
    tid = _new()
    run = client.runs.create(tid, "counter", input={"count": 1}, metadata={"origin": "test"}, if_not_exists="create")
    assert run["thread_id"] == tid and run["status"] in ("pending", "running", "success")
    assert client.runs.join(tid, run["run_id"]) == {"count": 2, "log": ["tick"]}
    again = client.runs.get(tid, run["run_id"])
    assert (again["status"], again["metadata"]) == ("success", {"origin": "test"})
    assert again["multitask_strategy"] == "reject"
    second = client.runs.wait(tid, "counter", input={"count": 5}, context={"step": 3, "label": "x"})
    assert second == {"count": 8, "log": ["tick", "x"]}
    listed = client.runs.list(tid)
    assert [r["run_id"] for r in listed][1] == run["run_id"] and len(listed) == 2
    assert [r["status"] for r in client.runs.list(tid, status="success", limit=1, offset=1)] == ["success"]
    assert client.runs.list(tid, select=["run_id"])[0].keys() == {"run_id"}
    client.runs.delete(tid, run["run_id"])
    unbound = client.threads.create()  # no graph yet: it takes the one of its first run
    assert client.runs.wait(unbound["thread_id"], "counter", input={"count": 0}) == {"count": 1, "log": ["tick"]}
    with pytest.raises(APIStatusError) as missing:
        client.runs.get(tid, run["run_id"])
    assert missing.value.response.status_code == 404
    with pytest.raises(APIStatusError) as unknown_thread:
        client.runs.create(_new(), "counter", input={"count": 1})  # if_not_exists defaults to reject
    assert unknown_thread.value.response.status_code == 404


def test_a_waited_run_of_a_messages_graph_answers_with_the_whole_conversation(lg_sync_client: Any) -> None:
    """chatplane keeps earlier turns in the thread's transcript, not its checkpoint: what ``wait`` and ``join``
    answer merges them, as LangGraph's own state would hold every message."""
    client = lg_sync_client
    tid = client.threads.create()["thread_id"]  # no graph yet: its first run binds it
    for text in ("one", "two", "three"):
        values = client.runs.wait(tid, "chat", input={"messages": [{"role": "user", "content": text}]})
    contents = [m["content"] for m in values["messages"]]
    assert contents == ["one", "echo: one", "two", "echo: two", "three", "echo: three"]
    assert client.threads.get_state(tid)["values"]["messages"] == values["messages"]
    assert client.threads.get(tid)["metadata"].get("graph_id", "chat") == "chat"


async def test_every_stream_mode_with_subgraphs_then_resume_with_a_command(lg_client: Any) -> None:
    client = lg_client
    tid = _new()
    modes = ["values", "updates", "debug", "tasks", "checkpoints", "custom"]
    parts = [
        p
        async for p in client.runs.stream(
            tid, "approval", input={"request": "x"}, stream_mode=modes, stream_subgraphs=True, if_not_exists="create"
        )
    ]
    assert parts[0].event == "metadata" and set(parts[0].data) == {"run_id", "attempt"}
    events = {p.event.split("|")[0] for p in parts[1:]}
    assert events == {"values", "updates", "debug", "tasks", "checkpoints"}
    assert any(p.event.startswith("values|review:") for p in parts)  # a subgraph's part, with its namespace
    interrupted = [p for p in parts if p.event == "values" and "__interrupt__" in p.data]
    assert interrupted[-1].data["__interrupt__"][0]["value"] == {"question": "approve x?"}
    assert "__interrupt__" in [p for p in parts if p.event == "values"][-1].data  # the interrupt ends the stream
    run_id = parts[0].data["run_id"]
    assert (await client.runs.get(tid, run_id))["status"] == "interrupted"

    resumed = [p async for p in client.runs.stream(tid, "approval", command={"resume": "yes"}, stream_mode="values")]
    assert resumed[0].event == "metadata"
    assert resumed[-1].event == "values" and resumed[-1].data == {"request": "x", "decision": "yes", "done": True}
    assert all("__interrupt__" not in p.data for p in resumed[1:])  # nothing from before the resume
    assert (await client.runs.get(tid, run_id))["status"] == "success"


async def test_the_message_modes_and_custom_on_a_messages_graph(lg_client: Any) -> None:
    client = lg_client
    tid = _new()
    parts = [
        p
        async for p in client.runs.stream(
            tid,
            "support",
            input={"messages": [{"role": "user", "content": "hi"}]},
            stream_mode=["messages-tuple", "messages", "custom"],
            if_not_exists="create",
        )
    ]
    tuples = [p.data for p in parts if p.event == "messages"]
    assert "".join(chunk["content"] for chunk, _ in tuples) == "support says hi"
    assert all(chunk["type"] == "AIMessageChunk" and meta["langgraph_node"] == "answer" for chunk, meta in tuples)
    assert [p.event for p in parts if p.event.startswith("messages/")][0] == "messages/metadata"
    partial = [p.data for p in parts if p.event == "messages/partial"]
    assert partial[-1][0]["content"] == "support says hi" and partial[-1][0]["type"] == "ai"
    assert {"event": "custom", "data": {"progress": "thinking"}} in [{"event": p.event, "data": p.data} for p in parts]
    ids = [p.id for p in parts]
    assert len(set(ids)) == len(ids)  # one id per part: a reconnect resumes between any two

    # ``events``: LangChain's callback events, as langgraph-api streams that mode, beside the graph's own parts
    mixed = [
        p
        async for p in client.runs.stream(
            tid, "support", input={"messages": [{"role": "user", "content": "again"}]}, stream_mode=["events", "values"]
        )
    ]
    kinds = [p.data["event"] for p in mixed if p.event == "events"]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end"
    assert {"on_chat_model_start", "on_chat_model_stream", "on_chat_model_end"} <= set(kinds)
    streamed = [
        p.data["data"]["chunk"]["content"]
        for p in mixed
        if p.event == "events" and p.data["event"] == "on_chat_model_stream"
    ]
    assert "".join(streamed) == "support says again"
    assert mixed[-1].event == "events" or mixed[-1].event == "values"
    assert [p.data["messages"][-1]["content"] for p in mixed if p.event == "values"][-1] == "support says again"


async def test_a_dropped_stream_is_rejoined_and_every_part_arrives_exactly_once(lg_client: Any) -> None:
    client = lg_client
    for graph, body, modes in (
        ("steps", {}, ["updates", "values"]),
        ("support", {"messages": [{"role": "user", "content": "hello there"}]}, ["messages", "messages-tuple"]),
    ):
        tid = _new()
        first: list[Any] = []
        stream = client.runs.stream(
            tid, graph, input=body, stream_mode=modes, stream_resumable=True, if_not_exists="create"
        )
        async for part in stream:
            first.append(part)
            if len(first) == 4:
                break  # the connection drops
        await stream.aclose()
        run_id = first[0].data["run_id"]
        rest = [p async for p in client.runs.join_stream(tid, run_id, stream_mode=modes, last_event_id=first[-1].id)]
        everything = [p async for p in client.runs.join_stream(tid, run_id, stream_mode=modes)]
        assert [(p.event, p.data) for p in first + rest] == [(p.event, p.data) for p in everything]
        assert rest and rest[0].event != "metadata"


async def test_cancel_and_each_multitask_strategy(lg_client: Any) -> None:
    client = lg_client
    tid = _new()
    first = await client.runs.create(tid, "steps", input={}, if_not_exists="create")
    with pytest.raises(APIStatusError) as busy:
        await client.runs.create(tid, "steps", input={}, multitask_strategy="reject")
    assert busy.value.response.status_code == 409
    queued = await client.runs.create(tid, "steps", input={}, multitask_strategy="enqueue")
    assert queued["status"] == "pending"
    assert (await client.runs.join(tid, queued["run_id"]))["done"] == ["a", "b", "c", "a", "b", "c"]
    assert (await client.runs.get(tid, first["run_id"]))["status"] == "success"

    slow = await client.runs.create(tid, "steps", input={})
    taking_over = await client.runs.create(tid, "steps", input={}, multitask_strategy="interrupt")
    await client.runs.join(tid, taking_over["run_id"])
    assert (await client.runs.get(tid, slow["run_id"]))["status"] == "interrupted"
    assert (await client.runs.get(tid, taking_over["run_id"]))["status"] == "success"

    cancelled = await client.runs.create(tid, "steps", input={})
    await client.runs.cancel(tid, cancelled["run_id"], wait=True)
    assert (await client.runs.get(tid, cancelled["run_id"]))["status"] == "interrupted"

    # rollback: the run is undone — its steps' checkpoints deleted, its record gone — as a strategy and as a cancel
    before = (await client.threads.get_state(tid))["values"]["done"]
    undone = await client.runs.create(tid, "steps", input={})
    await asyncio.sleep(0.5)  # step a has checkpointed
    rolling = await client.runs.create(tid, "steps", input={}, multitask_strategy="rollback")
    assert rolling["multitask_strategy"] == "rollback"
    await client.runs.join(tid, rolling["run_id"])
    with pytest.raises(APIStatusError) as gone:
        await client.runs.get(tid, undone["run_id"])
    assert gone.value.response.status_code == 404
    after = (await client.threads.get_state(tid))["values"]["done"]
    assert after == [*before, "a", "b", "c"]
    dropped = await client.runs.create(tid, "steps", input={})
    await asyncio.sleep(0.5)
    await client.runs.cancel(tid, dropped["run_id"], wait=True, action="rollback")
    assert (await client.threads.get_state(tid))["values"]["done"] == after
    assert [r["run_id"] for r in await client.runs.list(tid, limit=100)].count(dropped["run_id"]) == 0


async def test_cancel_many_by_ids_and_by_status(lg_client: Any) -> None:
    client = lg_client
    one, two = _new(), _new()
    running = await client.runs.create(one, "steps", input={}, if_not_exists="create")
    queued = await client.runs.create(one, "steps", input={}, multitask_strategy="enqueue")
    elsewhere = await client.runs.create(two, "steps", input={}, if_not_exists="create")
    with pytest.raises(APIStatusError) as not_there:  # a run of another thread: as if it did not exist
        await client.runs.cancel_many(thread_id=one, run_ids=[running["run_id"], elsewhere["run_id"]])
    assert not_there.value.response.status_code == 404
    assert (await client.runs.get(one, running["run_id"]))["status"] in ("pending", "running")
    await client.runs.cancel_many(thread_id=one, run_ids=[queued["run_id"]])
    assert (await client.runs.get(one, queued["run_id"]))["status"] == "interrupted"
    await client.runs.cancel_many(status="all")
    for tid, run in ((one, running), (two, elsewhere)):
        await client.runs.join(tid, run["run_id"])
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    with pytest.raises(APIStatusError) as both:
        await client.runs.cancel_many(thread_id=one, run_ids=[running["run_id"]], status="all")
    assert both.value.response.status_code == 422


async def test_deleting_an_active_run_is_a_conflict(lg_client: Any) -> None:
    client = lg_client
    tid = _new()
    run = await client.runs.create(tid, "steps", input={}, if_not_exists="create")
    with pytest.raises(APIStatusError) as active:
        await client.runs.delete(tid, run["run_id"])
    assert active.value.response.status_code == 409
    await client.runs.cancel(tid, run["run_id"], wait=True)
    await client.runs.delete(tid, run["run_id"])


_REFUSED: list[tuple[str, Any]] = [
    ("checkpoint_id", "1f0"),
    ("webhook", "ftp://127.0.0.1:9/hook"),
    ("after_seconds", -1),
    ("feedback_keys", ["score"]),
    ("stream_mode", "tools"),
    ("stream_mode", "lifecycle"),
]


def test_a_static_breakpoint_is_resumed_with_input_none(lg_sync_client: Any) -> None:
    """``interrupt_before`` stops the run before the node; the thread reports ``interrupted``; a run with
    ``input=None`` goes on from there (what Aegra refuses)."""
    client = lg_sync_client
    tid = _new()
    client.runs.wait(tid, "steps", input={}, if_not_exists="create", interrupt_before=["b"], durability="sync")
    thread = client.threads.get(tid)
    assert thread["status"] == "interrupted" and thread["values"]["done"] == ["a"]
    assert client.threads.get_state(tid)["next"] == ["b"]
    values = client.runs.wait(tid, "steps", input=None)
    assert values["done"] == ["a", "b", "c"] and client.threads.get(tid)["status"] == "idle"


def test_a_field_chatplane_does_not_support_is_refused_by_name(lg_sync_client: Any) -> None:
    client = lg_sync_client
    for field, value in _REFUSED:
        with pytest.raises(APIStatusError) as refused:
            list(client.runs.stream(_new(), "counter", input={"count": 1}, if_not_exists="create", **{field: value}))
        status, message = _status_of(refused)
        assert status == 422 and (field in message or str(value) in message), (field, message)


async def test_the_thread_stream_follows_every_run_of_the_thread(lg_client: Any) -> None:
    """``client.threads.join_stream``: each run's parts in its own modes, then ``run_done``; ``lifecycle`` only the
    runs' starts and ends."""
    client = lg_client
    tid = (await client.threads.create(graph_id="counter"))["thread_id"]
    seen: dict[str, list[Any]] = {"run_modes": [], "lifecycle": []}

    async def listen(mode: str) -> None:
        async for part in await client.threads.join_stream(tid, stream_mode=mode):
            seen[mode].append(part)
            if sum(1 for p in seen[mode] if p.event == "metadata" and p.data.get("status") == "run_done") == 2:
                return

    listeners = [asyncio.create_task(listen(mode)) for mode in seen]
    await asyncio.sleep(0.5)
    first = await client.runs.wait(tid, "counter", input={"count": 1})
    second = await client.runs.create(tid, "counter", input={"count": 10}, stream_mode=["updates"])
    await client.runs.join(tid, second["run_id"])
    await asyncio.wait_for(asyncio.gather(*listeners), 30)
    events = [(p.event, p.data.get("status") if p.event == "metadata" else None) for p in seen["run_modes"]]
    assert events[:3] == [("metadata", None), ("values", None), ("values", None)]
    assert ("metadata", "run_done") in events and ("updates", None) in events
    assert [p.data for p in seen["run_modes"] if p.event == "values"][-1] == first
    assert [p.event for p in seen["lifecycle"]] == ["metadata"] * 4
    assert seen["lifecycle"][-1].data == {"status": "run_done", "run_id": second["run_id"]}
    with pytest.raises(APIStatusError) as unknown:
        async for _ in await client.threads.join_stream(tid, stream_mode="everything"):  # type: ignore[arg-type]
            pass
    assert unknown.value.response.status_code == 422
