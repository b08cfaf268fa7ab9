"""/v1/assistants in-process: versions and pinning, the graphs' read-only defaults, ownership, checks, the cap."""

from __future__ import annotations

import time

import jwt

from chatplane.agents.catalog import default_assistant_id
from tests.conftest import make_settings

SECRET = "s" * 40


def _as(user: str) -> dict[str, str]:
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def test_assistant_lifecycle(client_for, storage_url: str) -> None:
    client = await client_for(make_settings(storage_url=storage_url))
    created = await client.post(
        "/v1/assistants",
        json={"graph_id": "react", "name": "Tutor", "context": {"system_prompt": "Be kind."}, "metadata": {"k": 1}},
    )
    assert created.status_code == 201, created.text
    tutor = created.json()
    aid = tutor["assistant_id"]
    assert (tutor["graph_id"], tutor["version"], tutor["default"], tutor["config"]) == ("react", 1, False, {})
    assert (await client.get(f"/v1/assistants/{aid}")).json() == tutor

    patched = await client.patch(f"/v1/assistants/{aid}", json={"config": {"tags": ["math"]}, "metadata": {"level": 2}})
    assert patched.status_code == 200, patched.text
    v2 = patched.json()
    assert (v2["version"], v2["name"], v2["context"]) == (2, "Tutor", {"system_prompt": "Be kind."})
    assert v2["config"] == {"tags": ["math"]} and v2["metadata"] == {"k": 1, "level": 2}
    versions = (await client.get(f"/v1/assistants/{aid}/versions")).json()
    assert [v["version"] for v in versions] == [2, 1] and versions[1]["config"] == {}
    assert [v["version"] for v in (await client.get(f"/v1/assistants/{aid}/versions?limit=1&offset=1")).json()] == [1]

    pinned = await client.post(f"/v1/assistants/{aid}/latest", json={"version": 1})
    assert pinned.status_code == 200 and pinned.json()["version"] == 1 and pinned.json()["config"] == {}
    assert (await client.get(f"/v1/assistants/{aid}")).json()["version"] == 1
    assert (await client.post(f"/v1/assistants/{aid}/latest", json={"version": 7})).status_code == 404
    v3 = (await client.patch(f"/v1/assistants/{aid}", json={"name": "Tutor 3"})).json()
    assert (v3["version"], v3["config"]) == (3, {})

    listed = (await client.get("/v1/assistants")).json()
    assert [a["assistant_id"] for a in listed if not a["default"]] == [aid]
    found = await client.post("/v1/assistants/search", json={"metadata": {"k": 1}, "name": "tutor"})
    assert [a["assistant_id"] for a in found.json()] == [aid]

    assert (await client.delete(f"/v1/assistants/{aid}")).status_code == 204
    for method, path in (("GET", ""), ("GET", "/versions"), ("DELETE", ""), ("PATCH", "")):
        gone = await client.request(method, f"/v1/assistants/{aid}{path}", json={} if method == "PATCH" else None)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "assistant_not_found"


async def test_the_defaults_are_everyones_and_read_only(client_for) -> None:
    client = await client_for(make_settings(jwt_secret=SECRET))
    for user in ("alice", "bob"):
        listed = (await client.get("/v1/assistants", headers=_as(user))).json()
        assert [(a["graph_id"], a["assistant_id"], a["default"]) for a in listed] == [
            (g, default_assistant_id(g), True) for g in ("chat", "react", "multi")
        ]
    chat = listed[0]
    assert (chat["name"], chat["version"], chat["config"], chat["context"]) == ("chat", 1, {}, {})
    assert chat["metadata"] == {"created_by": "system"} and chat["description"]
    alice = _as("alice")
    for ref in ("chat", default_assistant_id("chat")):
        assert (await client.get(f"/v1/assistants/{ref}", headers=alice)).json() == chat
        assert (await client.get(f"/v1/assistants/{ref}/versions", headers=alice)).json() == [chat]
        for method, path, body in (
            ("PATCH", "", {"name": "mine now"}),
            ("DELETE", "", None),
            ("POST", "/latest", {"version": 1}),
        ):
            refused = await client.request(method, f"/v1/assistants/{ref}{path}", json=body, headers=alice)
            assert refused.status_code == 409, (method, path)
            assert refused.json()["error"]["code"] == "assistant_read_only"
            assert "project" in refused.json()["error"]["message"]
    # A default's id (or a graph's) cannot be chosen for an assistant of one's own.
    taken = {"graph_id": "chat", "assistant_id": default_assistant_id("react")}
    assert (await client.post("/v1/assistants", json=taken, headers=alice)).json()["error"]["code"] == (
        "assistant_exists"
    )
    same = await client.post("/v1/assistants", json={**taken, "if_exists": "do_nothing"}, headers=alice)
    assert same.status_code == 201 and same.json()["assistant_id"] == default_assistant_id("react")
    graph_named = await client.post("/v1/assistants", json={"graph_id": "chat", "assistant_id": "chat"}, headers=alice)
    assert graph_named.status_code == 409
    only = await client.post("/v1/assistants/search", json={"graph_id": "react"}, headers=alice)
    assert [a["assistant_id"] for a in only.json()] == [default_assistant_id("react")]
    paged = (await client.get("/v1/assistants?limit=2&offset=1", headers=alice)).json()
    assert [a["graph_id"] for a in paged] == ["react", "multi"]


async def test_another_users_assistant_is_a_404_on_every_route(client_for) -> None:
    client = await client_for(make_settings(jwt_secret=SECRET))
    alice, bob = _as("alice"), _as("bob")
    body = {"graph_id": "chat", "assistant_id": "helper", "name": "Alice's", "metadata": {"owner": "alice"}}
    aid = (await client.post("/v1/assistants", json=body, headers=alice)).json()["assistant_id"]
    await client.patch(f"/v1/assistants/{aid}", json={"name": "Alice's v2"}, headers=alice)
    before = (await client.get(f"/v1/assistants/{aid}/versions", headers=alice)).json()

    for method, path, payload in (
        ("GET", "", None),
        ("PATCH", "", {"name": "pwned"}),
        ("DELETE", "", None),
        ("GET", "/versions", None),
        ("POST", "/latest", {"version": 1}),
    ):
        response = await client.request(method, f"/v1/assistants/{aid}{path}", json=payload, headers=bob)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "assistant_not_found"
    assert all(a["default"] for a in (await client.get("/v1/assistants", headers=bob)).json())
    searched = await client.post("/v1/assistants/search", json={"metadata": {"owner": "alice"}}, headers=bob)
    assert searched.json() == []
    # Ids are per user: bob may have a "helper" of his own, and alice's is untouched.
    his = await client.post("/v1/assistants", json={**body, "name": "Bob's"}, headers=bob)
    assert his.status_code == 201 and his.json()["version"] == 1
    assert (await client.get(f"/v1/assistants/{aid}/versions", headers=alice)).json() == before
    assert (await client.get(f"/v1/assistants/{aid}", headers=bob)).json()["name"] == "Bob's"
    assert (await client.get("/v1/assistants")).status_code == 401


async def test_bad_assistants_are_refused_and_nothing_is_stored(client_for) -> None:
    client = await client_for(make_settings(recursion_limit=10))
    aid = (await client.post("/v1/assistants", json={"graph_id": "chat"})).json()["assistant_id"]
    bad_fields = [
        ({"graph_id": "no-such-graph"}, "no-such-graph"),
        ({"config": {"configurable": {"thread_id": "someone-elses"}}}, "thread_id"),
        ({"config": {"configurable": {"user_id": "root"}}}, "user_id"),
        ({"config": {"recursion_limit": 11}}, "recursion_limit"),
        ({"config": {"callbacks": []}}, "callbacks"),
        ({"context": []}, "context"),
        ({"name": "a\x00b"}, "NUL"),
        ({"metadata": {"k": "x" * 17_000}}, "metadata"),
        ({"unknown": 1}, "unknown"),
    ]
    for fields, named in bad_fields:
        for refused in (
            await client.post("/v1/assistants", json={"graph_id": "chat", **fields}),
            await client.patch(f"/v1/assistants/{aid}", json=fields),
        ):
            assert refused.status_code == 422, (fields, refused.request.method)
            assert named in refused.json()["error"]["message"], (fields, refused.json())
    bad_id = await client.post("/v1/assistants", json={"graph_id": "chat", "assistant_id": "has space"})
    assert bad_id.status_code == 422 and "assistant_id" in bad_id.json()["error"]["message"]
    not_json = b'{"graph_id": "chat", "metadata": {"x": NaN}}'
    nan = await client.post("/v1/assistants", content=not_json, headers={"Content-Type": "application/json"})
    assert nan.status_code == 422
    assert [a["assistant_id"] for a in (await client.get("/v1/assistants")).json() if not a["default"]] == [aid]
    assert [v["version"] for v in (await client.get(f"/v1/assistants/{aid}/versions")).json()] == [1]
    assert (await client.get("/v1/assistants/bad%20id")).status_code == 422
    for pin in ({"version": 0}, {"version": True}, {}):
        assert (await client.post(f"/v1/assistants/{aid}/latest", json=pin)).status_code == 422
    assert (await client.post("/v1/assistants/search", json={"limit": 0})).status_code == 422
    assert (await client.get("/v1/assistants?limit=1001")).status_code == 422


async def test_a_user_keeps_at_most_max_assistants_per_user(client_for) -> None:
    client = await client_for(make_settings(max_assistants_per_user=2))
    made = [(await client.post("/v1/assistants", json={"graph_id": "chat"})).json()["assistant_id"] for _ in range(2)]
    over = await client.post("/v1/assistants", json={"graph_id": "chat"})
    assert over.status_code == 422 and over.json()["error"]["code"] == "assistant_limit_reached"
    # Updating makes versions, not assistants; deleting one makes room.
    assert (await client.patch(f"/v1/assistants/{made[0]}", json={"name": "again"})).status_code == 200
    await client.delete(f"/v1/assistants/{made[0]}")
    assert (await client.post("/v1/assistants", json={"graph_id": "chat"})).status_code == 201
