"""``chatplane memory`` and ``chatplane users purge``: on local storage (as ``--user``) and against a server."""

from __future__ import annotations

import asyncio

import httpx
import pexpect

from chatplane.storage.engine import open_storage
from chatplane.storage.items import ItemStore
from chatplane.storage.owner_store import OwnerStore
from tests.cli.helpers import spawn
from tests.conftest import make_settings


async def _seed(url: str) -> None:
    async with open_storage(make_settings(storage_url=url)) as storage:
        from chatplane.llm.embeddings import LocalEmbeddings

        items = ItemStore(storage.db, embeddings=LocalEmbeddings())
        alice = OwnerStore(items, "alice")
        await alice.aput(("memories",), "home", {"content": "I live in Lisbon."})
        await alice.aput(("memories",), "diet", {"content": "I am vegetarian."})
        await OwnerStore(items, "bob").aput(("memories",), "bobs", {"content": "Bob's memory."})


async def _counts(url: str) -> dict[str, int]:
    async with open_storage(make_settings(storage_url=url)) as storage:
        items = ItemStore(storage.db)
        return {user: await items.count(user) for user in ("alice", "bob")}


def _run(args: list[str], tmp_path, *expected: str) -> None:
    child = spawn(args, tmp_path)
    for text in expected:
        child.expect(text)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_memory_and_purge_on_local_storage(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/local.db"
    asyncio.run(_seed(url))
    local = ["--user", "alice", "--storage", url]
    _run(["memory", "list", *local], tmp_path, "diet", "home")
    _run(["memory", "search", "Which city do I live in?", *local], tmp_path, "home", "Lisbon", "diet")
    _run(["memory", "delete", "home", *local], tmp_path, "Deleted home")
    _run(["users", "purge", *local, "--yes"], tmp_path, "Deleted 0 threads.*1 items")  # "diet" was left
    assert asyncio.run(_counts(url)) == {"alice": 0, "bob": 1}


def test_memory_and_purge_against_a_server(server_factory, tmp_path) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    body = {"namespace": ["memories"], "key": "k1", "value": {"content": "I like tea."}}
    assert httpx.put(f"{server.url}/v1/store/items", json=body, timeout=30).status_code == 204
    _run(["memory", "list", "--url", server.url], tmp_path, "k1", "I like tea")
    _run(["users", "purge", "--url", server.url, "--yes"], tmp_path, "1 items")
    assert httpx.post(f"{server.url}/v1/store/items/search", json={}, timeout=30).json() == {"items": []}
