"""The LangGraph API's threads through the official ``langgraph-sdk`` sync client against a real server (the demo
project), on SQLite and PostgreSQL, as two users: create, get, patch, search, count, state, update state, history,
status and interrupts, the whole conversation in ``values.messages``, delete."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.langgraph.conftest import status_of

pytestmark = pytest.mark.e2e


def test_threads_through_the_sdk(demo: tuple[str, dict[str, str]]) -> None:
    url, keys = demo
    with (
        get_sync_client(url=url, api_key=keys["alice"]) as alice,
        get_sync_client(url=url, api_key=keys["bob"]) as bob,
        httpx.Client(base_url=url, headers={"x-api-key": keys["alice"]}, timeout=30) as native,
    ):
        _crud_and_search(alice, bob)
        _state_and_history(alice, bob)
        _status_interrupts_and_messages(alice, native)


def _crud_and_search(alice: Any, bob: Any) -> None:
    tid = str(uuid.uuid4())
    thread = alice.threads.create(thread_id=tid, metadata={"team": "a"}, graph_id="counter")
    assert thread["thread_id"] == tid and thread["status"] == "idle" and thread["interrupts"] == {}
    assert thread["metadata"] == {"team": "a", "graph_id": "counter"} and isinstance(thread["created_at"], str)
    assert alice.threads.create(thread_id=tid, if_exists="do_nothing")["metadata"]["team"] == "a"
    assert status_of(alice.threads.create, thread_id=tid) == 409
    assert status_of(bob.threads.create, thread_id=tid, if_exists="do_nothing") == 409  # never alice's thread
    other = alice.threads.create(metadata={"team": "b"})
    patched = alice.threads.update(other["thread_id"], metadata={"tier": 1})
    assert patched["metadata"] == {"team": "b", "tier": 1}

    assert [t["thread_id"] for t in alice.threads.search(metadata={"team": "a"})] == [tid]
    assert [t["thread_id"] for t in alice.threads.search(limit=1)] == [other["thread_id"]]  # newest first
    oldest = alice.threads.search(sort_by="created_at", sort_order="asc", select=["thread_id"])
    assert oldest == [{"thread_id": tid}, {"thread_id": other["thread_id"]}]
    assert [t["thread_id"] for t in alice.threads.search(ids=[tid])] == [tid]
    assert alice.threads.count() == 2 and alice.threads.count(metadata={"tier": 1}) == 1
    assert alice.threads.count(status="idle") == 2 and alice.threads.count(status="busy") == 0

    # bob: alice's threads are not there, the same 404 as a missing one
    assert bob.threads.search() == [] and bob.threads.count() == 0
    for call, args in [
        (bob.threads.get, (tid,)),
        (bob.threads.get_state, (tid,)),
        (bob.threads.get_history, (tid,)),
        (bob.threads.update_state, (tid, {"count": 1})),
        (bob.threads.delete, (tid,)),
    ]:
        assert status_of(call, *args) == 404
    assert status_of(bob.threads.get, str(uuid.uuid4())) == 404
    assert status_of(bob.threads.update, tid, metadata={"x": 1}) == 404
    assert alice.threads.get(tid)["metadata"] == {"team": "a", "graph_id": "counter"}

    # refused, naming the field
    assert status_of(alice.threads.search, extract={"x": "values.x"}) == 422
    alice.threads.delete(other["thread_id"])
    assert status_of(alice.threads.get, other["thread_id"]) == 404


def _state_and_history(alice: Any, bob: Any) -> None:
    tid = alice.threads.create(graph_id="counter")["thread_id"]
    first = alice.threads.update_state(tid, {"count": 5, "log": ["set"]}, as_node="tick")
    assert first["checkpoint"]["thread_id"] == tid and first["checkpoint"]["checkpoint_id"]
    alice.threads.update_state(tid, {"count": 7, "log": ["again"]}, as_node="tick")
    state = alice.threads.get_state(tid)
    assert state["values"] == {"count": 7, "log": ["set", "again"]} and state["next"] == []
    assert state["parent_checkpoint"]["checkpoint_id"] == first["checkpoint"]["checkpoint_id"]
    assert alice.threads.get(tid)["values"] == {"count": 7, "log": ["set", "again"]}

    at_first = alice.threads.get_state(tid, checkpoint_id=first["checkpoint"]["checkpoint_id"])
    assert at_first["values"]["count"] == 5
    assert alice.threads.get_state(tid, checkpoint=first["checkpoint"])["values"]["count"] == 5
    history = alice.threads.get_history(tid)
    assert [h["values"].get("count") for h in history][:2] == [7, 5]
    assert len(alice.threads.get_history(tid, limit=1)) == 1
    older = alice.threads.get_history(tid, before=state["checkpoint"])
    assert older[0]["checkpoint"]["checkpoint_id"] == first["checkpoint"]["checkpoint_id"]
    assert [h["values"].get("count") for h in alice.threads.get_history(tid, checkpoint=first["checkpoint"])][0] == 5

    assert alice.threads.search(values={"count": 7}, select=["thread_id"]) == [{"thread_id": tid}]
    assert alice.threads.count(values={"count": 8}) == 0
    assert status_of(alice.threads.update_state, tid, {"count": 1}, as_node="no-such-node") == 422
    assert status_of(alice.threads.get_state, tid, checkpoint_id="no-such-checkpoint") == 404

    copied = alice.threads.copy(tid)
    assert copied["thread_id"] != tid and copied["values"] == {"count": 7, "log": ["set", "again"]}
    copied_history = alice.threads.get_history(copied["thread_id"])
    assert [h["values"].get("count") for h in copied_history] == [h["values"].get("count") for h in history]
    alice.threads.update_state(copied["thread_id"], {"count": 9, "log": []}, as_node="tick")
    assert alice.threads.get_state(tid)["values"]["count"] == 7  # the original is left as it was
    assert status_of(bob.threads.copy, tid) == 404


def _status_interrupts_and_messages(alice: Any, native: httpx.Client) -> None:
    # a graph's interrupt: the thread is interrupted, its interrupts by task (runs made through /v1 for now)
    tid = alice.threads.create(graph_id="approval")["thread_id"]
    native.post(f"/v1/threads/{tid}/runs", json={"input": {"request": "refund"}})
    thread = alice.threads.get(tid)
    assert thread["status"] == "interrupted"
    [(task_id, [interrupt])] = thread["interrupts"].items()
    assert interrupt["value"] == {"question": "approve refund?"} and interrupt["id"]
    state = alice.threads.get_state(tid, subgraphs=True)
    assert state["next"] == ["review"] and state["tasks"][0]["id"] == task_id
    assert state["tasks"][0]["state"]["next"] == ["ask"]  # the paused subgraph's own state
    assert [t["thread_id"] for t in alice.threads.search(status="interrupted")] == [tid]
    assert status_of(alice.threads.update_state, tid, {"decision": "no"}) == 409  # a run waits on it

    # a thread created without a graph talks to the server's default agent; its values are the whole conversation
    chat = alice.threads.create()["thread_id"]
    for text in ("first", "second", "third"):
        assert native.post(f"/v1/threads/{chat}/runs", json={"message": text}).status_code == 200
    messages = alice.threads.get(chat)["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"] * 3 and messages[0]["content"] == "first"
    assert alice.threads.get_state(chat)["values"]["messages"] == messages
    assert alice.threads.copy(chat)["values"]["messages"] == messages  # the transcript is copied too
