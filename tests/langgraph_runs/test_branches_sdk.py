"""Branches through ``langgraph-sdk`` against a real server: the history's branch points, a run from one of them
(an edit with input, a regenerate without), the state at a point."""

from __future__ import annotations

from typing import Any


def _contents(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"]]


def test_edit_and_regenerate_as_langgraph_clients_send_them(lg_sync_client: Any) -> None:
    client = lg_sync_client
    tid = client.threads.create()["thread_id"]
    for text in ("one", "two"):
        client.runs.wait(tid, "chat", input={"messages": [{"role": "user", "content": text}]})
    history = client.threads.get_history(tid, limit=10)
    assert [len(s["values"]["messages"]) for s in history] == [4, 2, 0]
    # The state where "two" first appears (the newest); its parent checkpoint is where an edit or regenerate starts.
    parent = history[0]["parent_checkpoint"]
    client.runs.wait(tid, "chat", input={"messages": [{"role": "user", "content": "TWO"}]}, checkpoint=parent)
    assert _contents(client.threads.get_state(tid)["values"]) == ["one", "echo: one", "TWO", "echo: TWO"]
    client.runs.wait(tid, "chat", input=None, checkpoint_id=parent["checkpoint_id"])
    assert _contents(client.threads.get_state(tid)["values"]) == ["one", "echo: one", "TWO", "echo: TWO"]
    at = client.threads.get_state(tid, checkpoint_id=parent["checkpoint_id"])
    assert _contents(at["values"]) == ["one", "echo: one"]
    assert [len(s["values"]["messages"]) for s in client.threads.get_history(tid, limit=10)] == [4, 2, 0]
