"""The LangGraph API's assistants, /ok and /info, through the official ``langgraph-sdk`` async client against a
real server (the demo project), on SQLite and PostgreSQL, as two users."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.service.test_security import _create_keys

pytestmark = pytest.mark.e2e

DEMO = str(Path(__file__).parents[1] / "projects" / "demo" / "chatplane.json")
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def serve_demo(request: pytest.FixtureRequest, server_factory: Any, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A real server of the demo project on ``request.param`` storage; API keys of alice and bob."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path}/lg.db"
    keys = asyncio.run(_create_keys(url, "alice", "bob"))
    env = {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": url, "CHATPLANE_CONFIG_FILE": DEMO}
    return server_factory(env).url, keys


async def _status(call: Any) -> int:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


def test_assistants_through_the_sdk(demo: tuple[str, dict[str, str]]) -> None:
    url, keys = demo
    asyncio.run(_assistants(url, keys))


async def _assistants(url: str, keys: dict[str, str]) -> None:
    async with (
        get_client(url=url, api_key=keys["alice"]) as alice,
        get_client(url=url, api_key=keys["bob"]) as bob,
        get_client(url=url, api_key=None) as nobody,
        get_client(url=url, api_key="cp_000000000000_forged") as forger,
    ):
        assert await _status(forger.assistants.search()) == 401
        await _assistants_as(alice, bob, nobody)


async def _assistants_as(alice: Any, bob: Any, nobody: Any) -> None:
    assert await alice.http.get("/ok") == {"ok": True}
    info = await alice.http.get("/info")
    assert info["flags"]["assistants"] is True and info["flags"]["crons"] is True
    assert await _status(nobody.http.get("/info")) == 401

    # each graph's default, under LangGraph's own id
    defaults = await alice.assistants.search(graph_id="support")
    assert [a["assistant_id"] for a in defaults] == [str(uuid.uuid5(NAMESPACE_GRAPH, "support"))]
    assert defaults[0]["version"] == 1 and isinstance(defaults[0]["created_at"], str)
    default = await alice.assistants.get(defaults[0]["assistant_id"])
    assert default["graph_id"] == "support"

    created = await alice.assistants.create(
        "counter", assistant_id="fast-counter", context={"step": 2}, metadata={"team": "a"}, name="Fast counter"
    )
    assert created["assistant_id"] == "fast-counter" and created["version"] == 1
    assert created["context"] == {"step": 2} and created["metadata"] == {"team": "a"}
    again = await alice.assistants.create("counter", assistant_id="fast-counter", if_exists="do_nothing")
    assert again["assistant_id"] == "fast-counter" and again["name"] == "Fast counter"
    assert await _status(alice.assistants.create("counter", assistant_id="fast-counter")) == 409

    updated = await alice.assistants.update("fast-counter", context={"step": 3}, metadata={"tier": "b"})
    assert updated["version"] == 2 and updated["metadata"] == {"team": "a", "tier": "b"}
    versions = await alice.assistants.get_versions("fast-counter")
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["version"] for v in await alice.assistants.get_versions("fast-counter", metadata={"tier": "b"})] == [2]
    pinned = await alice.assistants.set_latest("fast-counter", 1)
    assert pinned["version"] == 1 and pinned["context"] == {"step": 2}

    assert await alice.assistants.count(graph_id="counter") == 2  # the default and alice's
    assert await alice.assistants.count(metadata={"team": "a"}) == 1
    by_name = await alice.assistants.search(sort_by="name", sort_order="asc", limit=100, select=["name"])
    assert [a["name"] for a in by_name] == sorted(a["name"] for a in by_name) and set(by_name[0]) == {"name"}
    page = await alice.assistants.search(limit=2, response_format="object")
    assert len(page["assistants"]) == 2 and page["next"] == "2"

    schemas = await alice.assistants.get_schemas("fast-counter")
    assert schemas["graph_id"] == "counter" and set(schemas) >= {"input_schema", "output_schema", "state_schema"}
    assert "step" in schemas["context_schema"]["properties"]
    drawn = await alice.assistants.get_graph("counter")
    assert {n["id"] for n in drawn["nodes"]} >= {"__start__", "tick"}
    assert await alice.assistants.get_subgraphs("counter") == {}
    subgraphs = await alice.assistants.get_subgraphs("approval")
    assert list(subgraphs) == ["review"] and subgraphs["review"]["graph_id"] == "approval"
    xray = await alice.assistants.get_graph("approval", xray=True)
    assert any(n["id"].startswith("review:") for n in xray["nodes"])

    # bob: alice's assistant is not there, the same 404 as a missing one; the defaults are
    assert await _status(bob.assistants.get("fast-counter")) == 404
    assert await _status(bob.assistants.get("no-such-assistant")) == 404
    assert await _status(bob.assistants.update("fast-counter", metadata={"x": 1})) == 404
    assert await _status(bob.assistants.delete("fast-counter")) == 404
    assert await bob.assistants.count(graph_id="counter") == 1
    assert await _status(alice.assistants.get("fast-counter")) == 200

    # refused, naming the field; read-only defaults
    assert await _status(alice.http.post("/assistants", json={"graph_id": "support", "bogus": 1})) == 422
    assert await _status(alice.assistants.delete("fast-counter", delete_threads=True)) == 422
    assert await _status(alice.assistants.update("support", name="x")) == 409
    assert await _status(alice.assistants.create("no-such-graph")) == 422

    await alice.assistants.delete("fast-counter")
    assert await _status(alice.assistants.get("fast-counter")) == 404
