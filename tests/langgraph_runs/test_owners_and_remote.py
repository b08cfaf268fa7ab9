"""LangGraph's clients as two users (the second sees nothing of the first's, on SQLite and PostgreSQL), stateless
runs on their temporary threads, and a ``RemoteGraph`` pointed at chatplane used as a node of a local graph."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any, TypedDict

import httpx
import pytest
from langgraph.graph import START, StateGraph
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError

pytestmark = pytest.mark.e2e


def _client(url: str, key: str) -> Any:
    return get_client(url=url, api_key=key)  # the SDK sends it as ``x-api-key``


async def test_a_second_user_sees_nothing_of_the_first_s_runs(two_users: tuple[Any, str, str]) -> None:
    server, alice_key, bob_key = two_users
    async with _client(server.url, alice_key) as alice, _client(server.url, bob_key) as bob:
        tid = str(uuid.uuid4())
        waited = await alice.runs.wait(tid, "approval", input={"request": "x"}, if_not_exists="create")
        assert waited["__interrupt__"][0]["value"] == {"question": "approve x?"}
        (run,) = await alice.runs.list(tid)
        assert run["status"] == "interrupted"
        calls = [
            lambda: bob.runs.get(tid, run["run_id"]),
            lambda: bob.runs.list(tid),
            lambda: bob.runs.join(tid, run["run_id"]),
            lambda: bob.runs.cancel(tid, run["run_id"]),
            lambda: bob.runs.delete(tid, run["run_id"]),
            lambda: bob.runs.create(tid, "approval", command={"resume": "mine"}),
        ]
        bodies = set()
        for call in calls:
            with pytest.raises(httpx.HTTPStatusError) as hidden:  # join: httpx's own, the others the SDK's
                await call()
            assert hidden.value.response.status_code == 404, hidden.value.response.text
            bodies.add(hidden.value.response.content)
        with pytest.raises(APIStatusError) as stream_hidden:
            [p async for p in bob.runs.join_stream(tid, run["run_id"])]
        assert stream_hidden.value.response.status_code == 404
        with pytest.raises(APIStatusError) as missing:
            await bob.runs.get(tid, str(uuid.uuid4()))
        assert missing.value.response.content in bodies  # the same bytes as a run that does not exist
        resumed = await alice.runs.wait(tid, "approval", command={"resume": "yes"})
        assert resumed == {"request": "x", "decision": "yes", "done": True}
        # a run waiting for a human, rolled back: the checkpoint its pause wrote goes with it
        paused = await alice.runs.wait(tid, "approval", input={"request": "y"})
        assert paused["__interrupt__"][0]["value"] == {"question": "approve y?"}
        (waiting, _) = await alice.runs.list(tid)
        await alice.runs.cancel(tid, waiting["run_id"], action="rollback")
        state = await alice.threads.get_state(tid)
        assert state["values"] == resumed and state["next"] == [] and state["tasks"] == []
        assert [r["run_id"] for r in await alice.runs.list(tid)] == [run["run_id"]]


async def test_a_stateless_run_has_a_temporary_thread(lg_client: Any) -> None:
    created: list[Any] = []
    waited = await lg_client.runs.wait(None, "counter", input={"count": 1}, on_run_created=created.append)
    assert waited == {"count": 2, "log": ["tick"]}
    (meta,) = created
    with pytest.raises(APIStatusError) as gone:  # on_completion: delete (the default)
        await lg_client.runs.get(meta["thread_id"], meta["run_id"])
    assert gone.value.response.status_code == 404

    parts = [
        p
        async for p in lg_client.runs.stream(
            None, "support", input={"messages": [{"role": "user", "content": "yo"}]}, stream_mode="messages-tuple"
        )
    ]
    assert parts[0].event == "metadata" and "".join(p.data[0]["content"] for p in parts[1:]) == "support says yo"

    kept: list[Any] = []
    await lg_client.runs.wait(None, "counter", input={"count": 1}, on_completion="keep", on_run_created=kept.append)
    assert (await lg_client.runs.get(kept[0]["thread_id"], kept[0]["run_id"]))["status"] == "success"

    batch = await lg_client.runs.create_batch(
        [{"assistant_id": "counter", "input": {"count": n}} for n in (1, 2)]  # type: ignore[typeddict-item]
    )
    assert [r["status"] in ("pending", "running", "success") for r in batch] == [True, True]


class Counter(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


async def test_remote_graph_as_a_node_of_a_local_graph(lg_client: Any) -> None:
    remote = RemoteGraph("counter", client=lg_client)
    local = StateGraph(Counter).add_node("remote", remote).add_edge(START, "remote").compile()
    assert await local.ainvoke({"count": 1, "log": []}) == {"count": 2, "log": ["tick"]}
    thread = {"configurable": {"thread_id": str(uuid.uuid4())}}  # a thread of chatplane's, created at its first run
    assert await remote.ainvoke({"count": 5}, thread) == {"count": 6, "log": ["tick"]}
    assert await remote.ainvoke({"count": 6}, thread) == {"count": 7, "log": ["tick", "tick"]}
