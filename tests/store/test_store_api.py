"""The store over HTTP, in process, on memory, SQLite and PostgreSQL: ``/v1/store`` and the LangGraph API's
``/store`` through the official ``langgraph-sdk`` client, as two users; bad input refused with nothing stored; a
graph's ``get_store()`` / ``runtime.store`` holding its run's owner's items only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings

NOTES = str(Path(__file__).parents[1] / "projects" / "notes" / "chatplane.json")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def users(client_for, storage_url: str) -> dict[str, httpx.AsyncClient]:
    """An in-process app on ``storage_url``; an httpx client for alice and one for bob."""
    client = await client_for(make_settings(storage_url=storage_url, config_file=NOTES))
    keys = ApiKeyStore(client.app.state.agent.storage.db)
    clients = {}
    for name in ("alice", "bob"):
        key = (await keys.create(name))[1]
        clients[name] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=client.app), base_url="http://chatplane.test", headers=auth(key)
        )
    yield clients
    for c in clients.values():
        await c.aclose()


async def _status(call: Any) -> int:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


async def test_the_langgraph_sdk_store_client_as_two_users(users: dict[str, httpx.AsyncClient]) -> None:
    alice, bob = LangGraphClient(users["alice"]).store, LangGraphClient(users["bob"]).store
    await alice.put_item(["memories", "profile"], "home", {"text": "I live in Lisbon."})
    await alice.put_item(["memories", "profile"], "diet", {"text": "I am vegetarian."}, ttl=60)
    await alice.put_item(["memories", "work"], "repo", {"text": "Our repository uses Python 3.12."}, index=False)
    await bob.put_item(["memories", "profile"], "home", {"text": "I live in Oslo."})

    item = await alice.get_item(["memories", "profile"], key="home")
    assert item["namespace"] == ["memories", "profile"] and item["value"] == {"text": "I live in Lisbon."}
    assert isinstance(item["created_at"], str)
    found = await alice.search_items(["memories"], query="Where does the user live?", limit=5)
    keys = [i["key"] for i in found["items"]]
    assert keys[0] == "home" and "repo" not in keys and found["items"][0]["score"] > 0
    assert [i["key"] for i in (await alice.search_items(["memories", "work"]))["items"]] == ["repo"]
    listed = await alice.list_namespaces(prefix=["memories"])
    assert listed == {"namespaces": [["memories", "profile"], ["memories", "work"]]}

    # bob sees his own only; alice's item is the same 404 as none
    assert (await bob.get_item(["memories", "profile"], key="home"))["value"] == {"text": "I live in Oslo."}
    assert [i["key"] for i in (await bob.search_items([]))["items"]] == ["home"]
    theirs = await users["bob"].get("/store/items", params={"namespace": "memories.profile", "key": "diet"})
    missing = await users["bob"].get("/store/items", params={"namespace": "memories.profile", "key": "nope"})
    assert theirs.status_code == missing.status_code == 404 and theirs.content == missing.content
    await bob.delete_item(["memories", "profile"], "diet")  # not his: nothing happens
    assert (await alice.get_item(["memories", "profile"], key="diet"))["key"] == "diet"
    await alice.delete_item(["memories", "profile"], "diet")
    assert await _status(alice.get_item(["memories", "profile"], key="diet")) == 404


async def test_v1_store_routes(users: dict[str, httpx.AsyncClient]) -> None:
    alice = users["alice"]
    put = await alice.put("/v1/store/items", json={"namespace": ["notes"], "key": "a", "value": {"text": "hello"}})
    assert put.status_code == 204
    got = await alice.get("/v1/store/items", params={"namespace": "notes", "key": "a"})
    assert got.status_code == 200 and got.json()["value"] == {"text": "hello"}
    searched = await alice.post("/v1/store/items/search", json={"namespace_prefix": ["notes"], "query": "greeting"})
    assert [i["key"] for i in searched.json()["items"]] == ["a"]
    assert (await alice.post("/v1/store/namespaces", json={})).json() == {"namespaces": [["notes"]]}
    deleted = await alice.request("DELETE", "/v1/store/items", json={"namespace": ["notes"], "key": "a"})
    assert deleted.status_code == 204
    assert (await alice.get("/v1/store/items", params={"namespace": "notes", "key": "a"})).status_code == 404


BAD = [
    ("PUT", "/v1/store/items", {"namespace": ["m"], "key": "k", "value": {"text": "x" * 70_000}}),
    ("PUT", "/store/items", {"namespace": list("abcdefghi"), "key": "k", "value": {}}),
    ("PUT", "/v1/store/items", {"namespace": ["a.b"], "key": "k", "value": {}}),
    ("PUT", "/store/items", {"namespace": ["a\u001bb"], "key": "k", "value": {}}),
    ("PUT", "/v1/store/items", {"namespace": ["m"], "key": "k\n", "value": {}}),
    ("PUT", "/v1/store/items", {"namespace": [], "key": "k", "value": {}}),
    ("PUT", "/v1/store/items", {"namespace": ["m"], "key": "k", "value": {}, "ttl": 0}),
    ("PUT", "/v1/store/items", {"namespace": ["m"], "key": "k", "value": [1]}),
    ("PUT", "/v1/store/items", {"namespace": ["m"], "key": "k", "value": {}, "extra": 1}),
    ("POST", "/store/items/search", {"namespace_prefix": ["m"], "limit": 10_000}),
    ("POST", "/v1/store/items/search", {"query": "x" * 3000}),
    ("POST", "/store/namespaces", {"limit": 10_000}),
]
"""An oversized value, a too-deep namespace, invalid characters, a limit of 10,000 …"""


async def test_bad_input_is_a_422_and_nothing_is_stored(users: dict[str, httpx.AsyncClient]) -> None:
    alice = users["alice"]
    for method, path, body in BAD:
        response = await alice.request(method, path, json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert set(response.json()["error"]) == {"code", "message"}
    everything = await alice.post("/v1/store/items/search", json={"namespace_prefix": []})
    assert everything.json() == {"items": []}


async def test_a_graph_gets_its_run_owner_s_store(users: dict[str, httpx.AsyncClient]) -> None:
    async def run(who: str, key: str, text: str) -> dict[str, Any]:
        client = users[who]
        thread = (await client.post("/v1/threads", json={"agent": "notes"})).json()["thread_id"]
        run = (await client.post(f"/v1/threads/{thread}/runs", json={"input": {"key": key, "text": text}})).json()
        assert run["status"] == "succeeded", run
        return dict(run["values"])

    first = await run("alice", "a1", "alice's first")
    assert first == {"key": "a1", "text": "alice's first", "seen": ["a1"], "count": 1}
    assert (await run("alice", "a2", "alice's second"))["seen"] == ["a1", "a2"]
    bobs = await run("bob", "b1", "bob's")
    assert bobs["seen"] == ["b1"] and bobs["count"] == 1  # no run of bob's sees alice's notes
    # what the graph wrote is what its owner reads, under the same namespace
    got = await users["alice"].get("/v1/store/items", params={"namespace": "notes", "key": "a2"})
    assert got.json()["value"] == {"text": "alice's second"}
    assert (await users["bob"].get("/v1/store/items", params={"namespace": "notes", "key": "a2"})).status_code == 404


async def test_an_openai_compatible_embeddings_endpoint(client_for) -> None:
    from benchmarks.mock_openai import MockOpenAIServer

    with MockOpenAIServer(ttft=0, token_interval=0) as mock:
        settings = make_settings(embeddings="openai:mock-embed", embeddings_base_url=f"{mock.base_url}")
        client = await client_for(settings)
        for key, text in (("home", "I live in Lisbon"), ("diet", "I am vegetarian"), ("repo", "our repo uses python")):
            put = await client.put("/v1/store/items", json={"namespace": ["m"], "key": key, "value": {"text": text}})
            assert put.status_code == 204
        found = (await client.post("/v1/store/items/search", json={"query": "which python does the repo use"})).json()
        assert found["items"][0]["key"] == "repo"
        mock.configure(fault="503")  # the endpoint fails: a 5xx of ours, nothing stored, no exception text
        failed = await client.put("/v1/store/items", json={"namespace": ["m"], "key": "new", "value": {"text": "x"}})
        assert failed.status_code in (502, 503) and set(failed.json()["error"]) == {"code", "message"}
        assert "Injected" not in failed.text
        assert (await client.get("/v1/store/items", params={"namespace": "m", "key": "new"})).status_code == 404


async def test_the_python_sdk_store_methods(users: dict[str, httpx.AsyncClient]) -> None:
    from chatplane.client import AsyncClient, NotFoundError

    alice = AsyncClient("http://chatplane.test", http_client=users["alice"])
    await alice.put_item(["memories"], "tea", {"content": "I drink green tea."}, ttl=60)
    await alice.put_item(["notes", "work"], "repo", {"content": "Python 3.12"}, index=False)
    assert (await alice.get_item(["memories"], "tea")).value == {"content": "I drink green tea."}
    found = await alice.search_items(["memories"], query="what do I drink?")
    assert [i.key for i in found] == ["tea"] and found[0].score is not None
    assert await alice.list_namespaces() == [["memories"], ["notes", "work"]]
    await alice.delete_item(["memories"], "tea")
    with pytest.raises(NotFoundError):
        await alice.get_item(["memories"], "tea")
    deleted = await alice.purge_my_data()
    assert deleted["items"] == 1 and await alice.search_items() == []
