"""A thread as a tree of turns: edit, regenerate, switch branch, history, fork — through /v1, on every backend."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.messages import BaseMessage

from chatplane.llm.fake import ScriptedChatModel
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings


def _saw(prompt: list[BaseMessage]) -> str:
    """The fake model's answer: the user messages it was shown, in order (what the run saw as context)."""
    return "saw " + ",".join(m.text for m in prompt if m.type == "human")


def echo_model(**options: Any) -> ScriptedChatModel:
    return ScriptedChatModel(replies=[_saw], **options)


async def _client(client_for: Any, storage_url: str, **options: Any) -> Any:
    return await client_for(make_settings(storage_url=storage_url), model=echo_model(**options))


async def _send(client: Any, tid: str, text: str) -> dict[str, Any]:
    run = await client.post(f"/v1/threads/{tid}/runs", json={"message": text})
    assert run.status_code == 200, run.text
    return run.json()


async def _branch(client: Any, tid: str) -> list[dict[str, Any]]:
    got = await client.get(f"/v1/threads/{tid}/branch")
    assert got.status_code == 200, got.text
    return got.json()["messages"]


def _texts(items: list[dict[str, Any]]) -> list[str]:
    return [item["message"]["content"] for item in items]


async def _messages(client: Any, tid: str) -> list[str]:
    got = (await client.get(f"/v1/threads/{tid}/messages", params={"limit": 500})).json()
    return [m["content"] for m in got["messages"]]


async def _thread_with_turns(client: Any, n: int) -> str:
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    for i in range(1, n + 1):
        assert (await _send(client, tid, f"u{i}"))["output"]["content"] == "saw " + ",".join(
            f"u{k}" for k in range(1, i + 1)
        )
    return tid


async def test_edit_at_turn_three_of_six_branches_and_keeps_the_old_branch(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url)
    tid = await _thread_with_turns(client, 6)
    old = await _branch(client, tid)
    assert len(old) == 12 and all(item["siblings"] is None for item in old)
    third = old[4]["message"]
    assert third["content"] == "u3"

    edited = await client.post(f"/v1/threads/{tid}/messages/{third['id']}/edit", json={"message": "u3-edited"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["output"]["content"] == "saw u1,u2,u3-edited"  # turns 1–2, then the edit: its context

    new = await _branch(client, tid)
    assert _texts(new) == ["u1", "saw u1", "u2", "saw u1,u2", "u3-edited", "saw u1,u2,u3-edited"]
    assert new[4]["siblings"] == {"index": 1, "count": 2, "message_ids": [third["id"], new[4]["message"]["id"]]}
    assert await _messages(client, tid) == _texts(new)  # the messages API returns the current branch too

    # The old branch is intact and reachable: switch to it by its first message there.
    back = await client.post(f"/v1/threads/{tid}/branch", json={"message_id": third["id"]})
    assert back.status_code == 200, back.text
    assert _texts(back.json()["messages"]) == _texts(old)
    assert back.json()["messages"][4]["siblings"]["index"] == 0
    assert await _messages(client, tid) == _texts(old)

    # The next run on it sees the old branch's context.
    assert (await _send(client, tid, "u7"))["output"]["content"] == "saw u1,u2,u3,u4,u5,u6,u7"

    # And the edited branch, switched to again, goes on from its own messages.
    await client.post(f"/v1/threads/{tid}/branch", json={"message_id": new[4]["message"]["id"]})
    assert (await _send(client, tid, "u4b"))["output"]["content"] == "saw u1,u2,u3-edited,u4b"
    assert _texts(await _branch(client, tid))[-2:] == ["u4b", "saw u1,u2,u3-edited,u4b"]


async def test_regenerate_three_times_gives_four_siblings(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url)
    tid = await _thread_with_turns(client, 2)
    answer = (await _branch(client, tid))[-1]["message"]
    for _ in range(3):
        again = await client.post(f"/v1/threads/{tid}/messages/{answer['id']}/regenerate", json={})
        assert again.status_code == 200, again.text
        assert again.json()["output"]["content"] == "saw u1,u2"  # the same context: the turn's own user message
        answer = (await _branch(client, tid))[-1]["message"]
    branch = await _branch(client, tid)
    assert _texts(branch) == ["u1", "saw u1", "u2", "saw u1,u2"]
    siblings = branch[2]["siblings"]
    assert siblings["count"] == 4 and siblings["index"] == 3
    seen = []
    for first in siblings["message_ids"]:  # every version is there to move to
        moved = (await client.post(f"/v1/threads/{tid}/branch", json={"message_id": first})).json()["messages"]
        assert _texts(moved) == ["u1", "saw u1", "u2", "saw u1,u2"]
        seen.append(moved[2]["siblings"]["index"])
    assert seen == [0, 1, 2, 3]


async def test_switching_branch_changes_what_the_next_run_sees(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url)
    tid = await _thread_with_turns(client, 2)
    first = (await _branch(client, tid))[0]["message"]
    edited = await client.post(f"/v1/threads/{tid}/messages/{first['id']}/edit", json={"message": "v1"})
    assert edited.json()["output"]["content"] == "saw v1"  # editing the first message: nothing before it
    assert (await _send(client, tid, "next"))["output"]["content"] == "saw v1,next"
    await client.post(f"/v1/threads/{tid}/branch", json={"message_id": first["id"]})
    assert (await _send(client, tid, "next"))["output"]["content"] == "saw u1,u2,next"


async def test_history_is_newest_first_and_paginated(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url)
    tid = await _thread_with_turns(client, 5)
    page = (await client.get(f"/v1/threads/{tid}/history", params={"limit": 2})).json()
    assert [t["index"] for t in page["turns"]] == [4, 3] and page["next_cursor"] == "2"
    assert _texts(page["turns"][0]["messages"]) == ["u5", "saw u1,u2,u3,u4,u5"]
    rest = (await client.get(f"/v1/threads/{tid}/history", params={"limit": 5, "cursor": "2"})).json()
    assert [t["index"] for t in rest["turns"]] == [2, 1, 0] and rest["next_cursor"] is None


async def test_fork_refers_to_the_source_and_copies_nothing(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url)
    tid = await _thread_with_turns(client, 3)
    agent = client.app.state.agent
    db = agent.storage.db

    async def rows(thread_id: str | None = None) -> int:
        where, params = ("WHERE thread_id = %s", (thread_id,)) if thread_id else ("", ())
        row = await db.fetchone(f"SELECT count(*) AS n FROM chatplane_messages {where}", params)
        return int(row["n"])

    second = (await _branch(client, tid))[2]["message"]
    forked = await client.post(f"/v1/threads/{tid}/fork", json={"message_id": second["id"], "title": "fork"})
    assert forked.status_code == 201, forked.text
    fid = forked.json()["thread_id"]
    assert forked.json()["title"] == "fork"
    assert await rows(fid) == 0 and await rows() == 6  # nothing copied: each message stored once, in the source
    assert await _messages(client, fid) == ["u1", "saw u1", "u2", "saw u1,u2"]
    assert (await _send(client, fid, "f3"))["output"]["content"] == "saw u1,u2,f3"
    assert (await _send(client, fid, "f4"))["output"]["content"] == "saw u1,u2,f3,f4"
    assert await rows(fid) == 2  # a turn's own messages (archived at the next run), nothing of the source's
    assert (await _send(client, tid, "u4"))["output"]["content"] == "saw u1,u2,u3,u4"  # the source goes on alone

    # Deleting the source keeps what the fork reads; deleting the fork then frees it.
    assert (await client.delete(f"/v1/threads/{tid}")).status_code == 204
    assert (await _messages(client, fid))[:4] == ["u1", "saw u1", "u2", "saw u1,u2"]
    assert (await _send(client, fid, "f5"))["output"]["content"] == "saw u1,u2,f3,f4,f5"
    assert (await client.delete(f"/v1/threads/{fid}")).status_code == 204
    assert await rows() == 0


async def test_another_user_gets_the_same_404(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url)
    store = ApiKeyStore(client.app.state.agent.storage.db)
    alice = {"Authorization": f"Bearer {(await store.create('alice'))[1]}"}
    bob = {"Authorization": f"Bearer {(await store.create('bob'))[1]}"}
    tid = (await client.post("/v1/threads", json={}, headers=alice)).json()["thread_id"]
    await client.post(f"/v1/threads/{tid}/runs", json={"message": "hi"}, headers=alice)
    mid = (await client.get(f"/v1/threads/{tid}/branch", headers=alice)).json()["messages"][0]["message"]["id"]
    missing = "00000000-0000-0000-0000-000000000000"
    calls = [
        ("POST", f"/v1/threads/{{}}/messages/{mid}/edit", {"message": "x"}),
        ("POST", f"/v1/threads/{{}}/messages/{mid}/regenerate", {}),
        ("GET", "/v1/threads/{}/branch", None),
        ("POST", "/v1/threads/{}/branch", {"message_id": mid}),
        ("GET", "/v1/threads/{}/history", None),
        ("POST", "/v1/threads/{}/fork", {}),
    ]
    for method, path, body in calls:
        theirs = await client.request(method, path.format(tid), json=body, headers=bob)
        nothing = await client.request(method, path.format(missing), json=body, headers=bob)
        assert theirs.status_code == 404, (path, theirs.text)
        assert theirs.content == nothing.content
    unknown = await client.post(f"/v1/threads/{tid}/messages/nope/edit", json={"message": "x"}, headers=alice)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "message_not_found"
    answer = (await client.get(f"/v1/threads/{tid}/branch", headers=alice)).json()["messages"][1]["message"]["id"]
    bad = await client.post(f"/v1/threads/{tid}/messages/{answer}/edit", json={"message": "x"}, headers=alice)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_edits_and_sends_on_a_busy_thread_follow_the_multitask_policy(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url, delay=0.5)
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    await _send(client, tid, "u1")
    first = (await _branch(client, tid))[0]["message"]["id"]

    async def busy() -> str:
        run = await client.post(f"/v1/threads/{tid}/runs", json={"message": "slow", "background": True})
        assert run.status_code == 202
        return str(run.json()["run_id"])

    # reject: a 409, and nothing changed.
    running = await busy()
    refused = await client.post(f"/v1/threads/{tid}/messages/{first}/edit", json={"message": "e1"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "thread_busy"
    switch = await client.post(f"/v1/threads/{tid}/branch", json={"message_id": first})
    assert switch.status_code == 409
    # enqueue: the edit waits for the active run, then branches.
    queued = await client.post(
        f"/v1/threads/{tid}/messages/{first}/edit", json={"message": "e2", "multitask": "enqueue"}
    )
    assert queued.status_code == 200 and queued.json()["output"]["content"] == "saw e2"
    assert (await client.get(f"/v1/runs/{running}")).json()["status"] == "succeeded"
    # interrupt: the active run is cancelled, then the edit branches.
    first = (await _branch(client, tid))[0]["message"]["id"]
    running = await busy()
    cut = await client.post(
        f"/v1/threads/{tid}/messages/{first}/edit", json={"message": "e3", "multitask": "interrupt"}
    )
    assert cut.status_code == 200 and cut.json()["output"]["content"] == "saw e3"
    assert (await client.get(f"/v1/runs/{running}")).json()["status"] == "cancelled"
    # A send racing an edit: one of them is refused (reject), the thread stays on one branch.
    first = (await _branch(client, tid))[0]["message"]["id"]
    edit, send = await asyncio.gather(
        client.post(f"/v1/threads/{tid}/messages/{first}/edit", json={"message": "e4", "background": True}),
        client.post(f"/v1/threads/{tid}/runs", json={"message": "s4", "background": True}),
    )
    assert sorted([edit.status_code, send.status_code]) in ([202, 409], [202, 202])
    for _ in range(200):
        runs = (await client.get(f"/v1/threads/{tid}/runs")).json()
        if all(r["status"] in ("succeeded", "failed", "cancelled") for r in runs):
            break
        await asyncio.sleep(0.05)
    branch = _texts(await _branch(client, tid))
    assert branch[0] in ("e3", "e4") and len(branch) % 2 == 0
    for user, answer in zip(branch[::2], branch[1::2], strict=True):  # every answer saw exactly this branch
        assert answer == "saw " + ",".join(branch[: branch.index(user) + 1 : 2])


# --- the LangGraph API: history as branch points, a run from one of them, copy ---------------------------------------


async def _lg_wait(client: Any, tid: str, body: dict[str, Any]) -> dict[str, Any]:
    got = await client.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "chat", **body})
    assert got.status_code == 200, got.text
    return got.json()


def _contents(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"]]


async def test_langgraph_history_and_runs_from_a_checkpoint_follow_branches(client_for, storage_url: str) -> None:
    client = await _client(client_for, storage_url)
    tid = (await client.post("/threads", json={})).json()["thread_id"]
    for text in ("u1", "u2", "u3"):
        await _lg_wait(client, tid, {"input": {"messages": [{"role": "user", "content": text}]}})
    history = (await client.post(f"/threads/{tid}/history", json={"limit": 10})).json()
    assert [len(s["values"]["messages"]) for s in history] == [6, 4, 2, 0]
    assert all(
        s["parent_checkpoint"]["checkpoint_id"] == p["checkpoint_id"]
        for s, p in zip(history, history[1:], strict=False)
    )
    assert history[-1]["parent_checkpoint"] is None
    page = (await client.post(f"/threads/{tid}/history", json={"limit": 2, "before": history[1]["checkpoint"]})).json()
    assert [s["checkpoint_id"] for s in page] == [history[2]["checkpoint_id"], history[3]["checkpoint_id"]]

    # Edit u2 as LangGraph's clients do: a run from the parent checkpoint of the state where u2 first appears.
    parent = history[1]["parent_checkpoint"]
    edited = await _lg_wait(
        client, tid, {"input": {"messages": [{"role": "user", "content": "u2-edited"}]}, "checkpoint": parent}
    )
    assert _contents(edited)[-1] == "saw u1,u2-edited"
    latest = (await client.get(f"/threads/{tid}/state")).json()
    assert _contents(latest["values"]) == ["u1", "saw u1", "u2-edited", "saw u1,u2-edited"]
    # Regenerate: the same, with no input.
    again = await _lg_wait(client, tid, {"input": None, "checkpoint_id": parent["checkpoint_id"]})
    assert _contents(again)[-1] == "saw u1,u2-edited"
    latest = (await client.get(f"/threads/{tid}/state")).json()
    assert _contents(latest["values"]) == ["u1", "saw u1", "u2-edited", "saw u1,u2-edited"]
    branch = await _branch(client, tid)
    assert branch[2]["siblings"]["count"] == 3  # u2, u2-edited, and u2-edited again
    state = (await client.get(f"/threads/{tid}/state/{parent['checkpoint_id']}")).json()
    assert _contents(state["values"]) == ["u1", "saw u1"]

    # A copy follows the current branch.
    copied = (await client.post(f"/threads/{tid}/copy")).json()["thread_id"]
    assert _texts(await _branch(client, copied)) == _texts(branch)
    assert (await _send(client, copied, "u3c"))["output"]["content"] == "saw u1,u2-edited,u3c"

    bad = await client.post(
        f"/threads/{tid}/runs/wait", json={"assistant_id": "chat", "input": None, "checkpoint_id": "1ef-not-a-point"}
    )
    assert bad.status_code == 422


async def test_retention_keeps_every_reachable_branch_and_what_forks_refer_to(
    client_for, persistent_storage_url: str
) -> None:
    from chatplane.retention.prune import prune

    day = 86_400.0
    client = await _client(client_for, persistent_storage_url)
    agent = client.app.state.agent
    live = await _thread_with_turns(client, 3)
    old_branch = await _branch(client, live)
    await client.post(f"/v1/threads/{live}/messages/{old_branch[2]['message']['id']}/edit", json={"message": "v2"})
    await _send(client, live, "v3")
    new_branch = await _branch(client, live)
    old = await _thread_with_turns(client, 2)
    fork = (await client.post(f"/v1/threads/{old}/fork", json={})).json()["thread_id"]
    now = time.time() + 2 * day
    for thread_id in (old, fork):  # the source is old; its fork was used recently
        idle = 40 * day if thread_id == old else day
        await agent.storage.db.execute(
            "UPDATE chatplane_threads SET updated_at = %s WHERE thread_id = %s", (now - idle, thread_id)
        )

    report = await prune(agent.storage, 30 * day, now)
    assert report.threads == 1
    assert (await client.get(f"/v1/threads/{old}")).status_code == 404
    assert await _messages(client, fork) == ["u1", "saw u1", "u2", "saw u1,u2"]  # what the fork refers to stays
    assert _texts(await _branch(client, live)) == _texts(new_branch)
    back = await client.post(f"/v1/threads/{live}/branch", json={"message_id": old_branch[2]["message"]["id"]})
    assert _texts(back.json()["messages"]) == _texts(old_branch)  # the other branch is still reachable
    assert (await _send(client, fork, "f3"))["output"]["content"] == "saw u1,u2,f3"
