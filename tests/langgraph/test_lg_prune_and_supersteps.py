"""``client.threads.prune`` (``delete``, ``keep_latest``) and ``client.threads.create(supersteps=…)`` through the
official ``langgraph-sdk`` against a real server (the demo project), on SQLite and PostgreSQL, as two users: one
user's prune never touches, or reveals, the other's threads."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.conftest import make_settings
from tests.langgraph.conftest import status_of

pytestmark = pytest.mark.e2e


def _counted(client: Any, runs: int) -> str:
    """A counter thread of ``client``'s with ``runs`` runs done."""
    tid = client.threads.create(graph_id="counter")["thread_id"]
    for _ in range(runs):
        client.runs.wait(tid, "counter", input={"count": 1})
    return tid


def test_prune_keeps_the_latest_state_or_deletes_the_caller_s_threads_only(demo: tuple[str, dict[str, str]]) -> None:
    url, keys = demo
    with (
        get_sync_client(url=url, api_key=keys["alice"]) as alice,
        get_sync_client(url=url, api_key=keys["bob"]) as bob,
    ):
        kept, gone, also_gone = (_counted(alice, 2) for _ in range(3))
        bobs = _counted(bob, 2)
        missing = str(uuid.uuid4())
        history = alice.threads.get_history(kept, limit=100)
        assert len(history) >= 2
        bobs_history = bob.threads.get_history(bobs, limit=100)
        state = alice.threads.get_state(kept)

        assert alice.threads.prune([kept, bobs, missing], strategy="keep_latest") == {"pruned_count": 1}
        (latest,) = alice.threads.get_history(kept, limit=100)
        assert latest["values"] == state["values"] == history[0]["values"]
        assert latest["checkpoint"] == state["checkpoint"]
        assert alice.threads.get_state(kept)["values"] == state["values"]
        assert alice.runs.wait(kept, "counter", input={"count": 1})["log"] == [*state["values"]["log"], "tick"]
        assert bob.threads.get_history(bobs, limit=100) == bobs_history  # another user's: untouched

        assert alice.threads.prune([gone, also_gone, gone, bobs, missing]) == {"pruned_count": 2}
        assert status_of(alice.threads.get, gone) == status_of(alice.threads.get, also_gone) == 404
        assert bob.threads.get(bobs)["thread_id"] == bobs
        assert bob.threads.prune([kept]) == {"pruned_count": 0}  # alice's: as if it did not exist
        assert alice.threads.get(kept)["thread_id"] == kept
        assert alice.threads.prune([]) == {"pruned_count": 0}
        assert status_of(alice.threads.prune, [kept], strategy="everything") == 422


async def test_keep_latest_is_refused_on_memory_storage(client_for: Any) -> None:
    """As LangGraph's in-memory server refuses it: there are no checkpoint tables to prune."""
    client = await client_for(make_settings(storage_url="memory://"))
    created = await client.post("/threads", json={})
    tid = created.json()["thread_id"]
    refused = await client.post("/threads/prune", json={"thread_ids": [tid], "strategy": "keep_latest"})
    assert refused.status_code == 422 and "keep_latest" in refused.json()["error"]["message"]
    deleted = await client.post("/threads/prune", json={"thread_ids": [tid]})
    assert deleted.json() == {"pruned_count": 1}


def test_a_thread_created_with_supersteps_starts_from_their_state(demo: tuple[str, dict[str, str]]) -> None:
    url, keys = demo
    with get_sync_client(url=url, api_key=keys["alice"]) as alice:
        supersteps = [
            {"updates": [{"values": {"done": ["seed"]}, "as_node": "__input__"}]},  # as LangGraph copies a thread:
            {"updates": [{"values": {"done": ["seed"]}, "as_node": "__start__"}]},  # its input, then each step
            {"updates": [{"values": {"done": ["a"]}, "as_node": "a"}]},
            {"updates": [{"values": None, "command": {"update": {"done": ["b"]}, "goto": "c"}, "as_node": "b"}]},
        ]
        thread = alice.threads.create(graph_id="steps", supersteps=supersteps)
        tid = thread["thread_id"]
        assert thread["values"] == {"done": ["seed", "a", "b"]} and thread["status"] == "interrupted"
        state = alice.threads.get_state(tid)
        assert state["values"] == {"done": ["seed", "a", "b"]} and state["next"] == ["c"]
        history = alice.threads.get_history(tid, limit=10)
        assert [h["values"].get("done") for h in history] == [["seed", "a", "b"], ["seed", "a"], ["seed"], []]
        assert [h["metadata"]["source"] for h in history] == ["update", "update", "update", "input"]
        assert [h["next"] for h in history] == [["c"], ["b"], ["a"], ["__start__"]]
        assert alice.runs.wait(tid, "steps", input=None) == {"done": ["seed", "a", "b", "c"]}

        tick = {"values": {"count": 5, "log": ["seeded"]}, "as_node": "tick"}
        seeded = alice.threads.create(graph_id="counter", supersteps=[{"updates": [tick]}])
        assert alice.threads.get_state(seeded["thread_id"])["next"] == []
        assert alice.runs.wait(seeded["thread_id"], "counter", input={"count": 5}) == {
            "count": 6,
            "log": ["seeded", "tick"],
        }

        for metadata, steps in (
            ({"graph_id": "counter"}, [{"updates": [{"values": {"count": 1}, "as_node": "nowhere"}]}]),
            ({}, [{"updates": [{"values": {"count": 1}, "as_node": "tick"}]}]),
        ):
            tid = str(uuid.uuid4())
            with pytest.raises(httpx.HTTPStatusError) as refused:
                alice.threads.create(thread_id=tid, metadata=metadata, supersteps=steps)
            assert refused.value.response.status_code == 422, refused.value.response.text
            assert status_of(alice.threads.get, tid) == 404  # nothing was made
