"""``DELETE /v1/users/me/data`` on memory, SQLite and PostgreSQL: after it, nothing of the user is left in any table
(threads, runs, messages, checkpoints, assistants, idempotency keys, usage, memories, schedules, webhooks); the
other user keeps all."""

from __future__ import annotations

from typing import Any

import httpx

from chatplane.storage.engine import Storage
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings


async def _make_data(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> set[str]:
    """A bit of everything for one user; the thread ids made."""
    threads = set()
    for i in range(2):
        thread = (await client.post("/v1/threads", json={}, headers=headers)).json()["thread_id"]
        threads.add(thread)
        sent = await client.post(
            f"/v1/threads/{thread}/runs",
            json={"message": f"{name} says {i}", "webhook": "https://hooks.example.com/runs"},
            headers={**headers, "Idempotency-Key": f"{name}-{i}"},
        )
        assert sent.status_code in (200, 201), sent.text
    completion = await client.post(
        "/v1/chat/completions",
        json={"model": "chatplane-chat", "messages": [{"role": "user", "content": "stateless"}]},
        headers=headers,
    )
    assert completion.status_code == 200
    created = await client.post("/v1/assistants", json={"graph_id": "chat", "name": f"{name}'s"}, headers=headers)
    assistant = created.json()["assistant_id"]
    await client.patch(f"/v1/assistants/{assistant}", json={"name": "v2"}, headers=headers)
    await client.put("/v1/store/items", json={"namespace": ["m"], "key": "k", "value": {"x": name}}, headers=headers)
    scheduled = await client.post("/v1/crons", json={"schedule": "0 9 * * *", "message": "report"}, headers=headers)
    assert scheduled.status_code in (200, 201), scheduled.text
    assert (await client.get("/v1/webhooks/secret", headers=headers)).status_code == 200
    return threads


async def _tables(storage: Storage) -> list[str]:
    if storage.kind == "postgres":
        rows = await storage.db.fetchall("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    else:
        rows = await storage.db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    return sorted(row["name"] for row in rows)


def _mentions(row: dict[str, Any], user: str, threads: set[str]) -> bool:
    if row.get("owner") == user or row.get("user_id") == user:
        return True
    return any(isinstance(v, str) and v in threads for v in row.values())


async def _left_of(storage: Storage, user: str, threads: set[str]) -> dict[str, int]:
    """How many rows of each table still mention ``user`` or one of their threads (API keys aside)."""
    left: dict[str, int] = {}
    for table in await _tables(storage):
        if table in ("chatplane_api_keys", "chatplane_schema"):
            continue
        rows = await storage.db.fetchall(f"SELECT * FROM {table}")  # noqa: S608 - names from the catalog
        count = sum(_mentions(row, user, threads) for row in rows)
        if count:
            left[table] = count
    checkpointer_storage = getattr(storage.checkpointer, "storage", None)  # memory://: InMemorySaver
    if isinstance(checkpointer_storage, dict):
        if kept := [t for t in checkpointer_storage if t in threads]:
            left["memory checkpoints"] = len(kept)
    return left


async def test_a_purge_leaves_nothing_of_the_user(client_for, storage_url: str) -> None:
    client = await client_for(make_settings(storage_url=storage_url))
    storage: Storage = client.app.state.agent.storage
    keys = ApiKeyStore(storage.db)
    alice = {"Authorization": f"Bearer {(await keys.create('alice'))[1]}"}
    bob = {"Authorization": f"Bearer {(await keys.create('bob'))[1]}"}
    alices, bobs = await _make_data(client, alice, "alice"), await _make_data(client, bob, "bob")
    before = await _left_of(storage, "alice", alices)
    assert {"chatplane_threads", "chatplane_runs", "chatplane_assistants"} <= set(before)
    assert "chatplane_assistant_versions" in before
    assert {"chatplane_idempotency", "chatplane_store", "chatplane_schedules"} <= set(before)
    assert "chatplane_webhook_secrets" in before
    assert "chatplane_webhooks" in before
    if storage.kind != "memory":
        assert {"checkpoints", "chatplane_messages"} & set(before)
    bob_before = await _left_of(storage, "bob", bobs)

    purged = await client.delete("/v1/users/me/data", headers=alice)
    assert purged.status_code == 200, purged.text
    deleted = purged.json()["deleted"]
    assert purged.json()["user"] == "alice"
    assert (deleted["threads"], deleted["runs"], deleted["assistants"], deleted["items"]) == (2, 1, 1, 1)
    assert deleted["idempotency_keys"] == 2

    assert await _left_of(storage, "alice", alices) == {}
    assert await _left_of(storage, "bob", bobs) == bob_before  # bob keeps everything
    assert (await client.get("/v1/threads", headers=alice)).json()["threads"] == []
    usage = (await client.get("/v1/usage", headers=alice)).json()
    assert usage["total"]["runs"] == 0
    assert (await client.get("/v1/usage", headers=bob)).json()["total"]["runs"] == 3
    again = await client.delete("/v1/users/me/data", headers=alice)  # nothing left: all zeros
    assert set(again.json()["deleted"].values()) == {0}
