"""Each owner's store version (``chatplane.storage.item_versions``) on SQLite files and PostgreSQL: two processes'
stores (two storages opened on the same database, each with its own connection or pool and its own copy of the
vectors) see each other's writes at their next search — puts, updates, deletes, the TTL sweep, a purge; a process's
own writes patch its copy and leave it as a fresh read would; a database with items gets its versions on migration."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator

import pytest
from langchain_core.embeddings import Embeddings

from benchmarks.mock_embeddings import embed
from chatplane.llm.embeddings import LocalEmbeddings
from chatplane.storage import item_versions
from chatplane.storage.engine import Storage, open_storage
from chatplane.storage.item_versions import TABLE as VERSIONS
from chatplane.storage.items import ItemStore
from chatplane.storage.owner_store import OwnerStore
from chatplane.storage.purge import purge_owner
from tests.conftest import make_settings

HOME = "I live in Lisbon, Portugal."
DIET = "I am vegetarian and never eat meat or fish."
QUESTION = "Which city am I living in?"


class WordVectors(Embeddings):
    """The mock endpoint's hashed bag of words: texts that share words are close; deterministic and instant."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed(text)


@pytest.fixture
async def two(persistent_storage_url: str) -> AsyncIterator[tuple[Storage, Storage]]:
    settings = make_settings(storage_url=persistent_storage_url)
    async with open_storage(settings) as first, open_storage(settings) as second:
        yield first, second


async def _keys(store: OwnerStore, query: str = QUESTION) -> list[str]:
    return [item.key for item in await store.asearch(("memories",), query=query)]


async def test_each_process_sees_the_others_writes_at_its_next_search(two: tuple[Storage, Storage]) -> None:
    embeddings = LocalEmbeddings()
    items_here, items_there = ItemStore(two[0].db, embeddings=embeddings), ItemStore(two[1].db, embeddings=embeddings)
    here, there = OwnerStore(items_here, "alice"), OwnerStore(items_there, "alice")
    assert await _keys(here) == [] and await _keys(there) == []
    await here.aput(("memories",), "diet", {"text": DIET})
    assert await _keys(here) == ["diet"] and await _keys(there) == ["diet"]  # both copies made
    await there.aput(("memories",), "home", {"text": HOME})
    assert await _keys(here) == ["home", "diet"]
    await here.adelete(("memories",), "home")
    assert await _keys(there) == ["diet"]
    await there.aput(("memories",), "diet", {"text": HOME})  # the same key, another meaning
    assert [(i.key, i.value["text"]) for i in await here.asearch(("memories",), query=QUESTION)] == [("diet", HOME)]
    await here.aput(("memories",), "diet", {"text": HOME}, index=False)  # no longer searchable by meaning
    assert await _keys(there) == [] and await _keys(here) == []


async def test_the_sweep_and_a_purge_reach_the_other_process(two: tuple[Storage, Storage]) -> None:
    embeddings = WordVectors()
    items_here, items_there = ItemStore(two[0].db, embeddings=embeddings), ItemStore(two[1].db, embeddings=embeddings)
    here, there = OwnerStore(items_here, "alice"), OwnerStore(items_there, "alice")
    await here.aput(("memories",), "home", {"text": HOME}, ttl=1)
    await here.aput(("memories",), "diet", {"text": DIET})
    assert await _keys(there, "Lisbon") == ["home", "diet"]
    before = await items_there.vectors.version("alice")
    assert await items_here.sweep(time.time() + 120) == 1  # the retention job, in the first process
    assert await items_there.vectors.version("alice") == (before or 0) + 1
    assert await _keys(there, "Lisbon meat") == ["diet"]
    report = await purge_owner(two[0], "alice")  # DELETE /v1/users/me/data, in the first process
    assert report.items == 1 and await items_there.vectors.version("alice") is None
    assert await _keys(there, "meat") == []
    await here.aput(("memories",), "new", {"text": "I moved to Porto."})  # written again after the purge
    assert await _keys(there, "Porto") == ["new"]
    for storage in two:  # nothing of alice's version is left after a purge
        await purge_owner(storage, "alice")
        assert await storage.db.fetchone(f"SELECT owner FROM {VERSIONS} WHERE owner = %s", ("alice",)) is None


async def test_own_writes_patch_the_copy_as_a_fresh_read_would_make_it(
    two: tuple[Storage, Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random puts, updates, unindexed puts and deletes in two namespaces by one process; after each, its search
    (on its patched copy) ranks exactly as a process reading the vectors afresh."""
    from chatplane.storage import item_vectors

    reads: list[str] = []
    build = item_vectors._build
    monkeypatch.setattr(item_vectors, "_build", lambda rows, dims: reads.append("read") or build(rows, dims))
    embeddings, rng = WordVectors(), random.Random(5)
    writer = ItemStore(two[0].db, embeddings=embeddings)
    mine = OwnerStore(writer, "alice")
    words = "tea coffee lisbon porto python vim dark mode cat dog piano guitar".split()
    await mine.aput(("memories", "a"), "seed", {"text": "tea"})
    for step in range(40):
        namespace = ("memories", rng.choice("ab"))
        key = f"k{rng.randrange(8)}"
        choice = rng.random()
        if choice < 0.2:
            await mine.adelete(namespace, key)
        else:
            text = " ".join(rng.sample(words, 3))
            await mine.aput(namespace, key, {"text": text}, index=False if choice < 0.3 else None)
        query = " ".join(rng.sample(words, 2))
        fresh = OwnerStore(ItemStore(two[1].db, embeddings=embeddings), "alice")
        for prefix in (("memories",), ("memories", "a")):
            got = await mine.asearch(prefix, query=query, limit=20)
            expected = await fresh.asearch(prefix, query=query, limit=20)
            assert {(i.namespace, i.key, round(i.score or 0, 5)) for i in got} == {
                (i.namespace, i.key, round(i.score or 0, 5)) for i in expected
            }, step
    assert writer.vectors._copies["alice"].version == await writer.vectors.version("alice")
    assert len(reads) == 1 + 40  # the writer's copy: read once, patched since (each fresh store: one read)


async def test_a_database_with_items_gets_their_owners_versions_on_migration(
    persistent_storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatplane.storage import schema

    settings = make_settings(storage_url=persistent_storage_url)
    with monkeypatch.context() as patch:
        before = schema.MIGRATIONS.index(item_versions.MIGRATION)
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:before])  # the release before the versions
        async with open_storage(settings) as storage:
            await storage.db.execute(
                "INSERT INTO chatplane_store (owner, prefix, key, value, embedding, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                ("alice", "memories", "home", '{"text": "I live in Lisbon."}', None, 1.0, 1.0),
            )
    async with open_storage(settings) as storage:
        row = await storage.db.fetchone(f"SELECT version FROM {VERSIONS} WHERE owner = %s", ("alice",))
        assert row is not None
        alice = OwnerStore(ItemStore(storage.db, embeddings=WordVectors()), "alice")
        await alice.aput(("memories",), "diet", {"text": DIET})
        assert await _keys(alice, "vegetarian meat") == ["diet"]


async def test_a_query_is_embedded_once_and_not_at_all_for_an_owner_without_vectors(
    two: tuple[Storage, Storage],
) -> None:
    calls: list[str] = []

    class Counting(WordVectors):
        def embed_query(self, text: str) -> list[float]:
            calls.append(text)
            return embed(text)

    alice = OwnerStore(ItemStore(two[0].db, embeddings=Counting()), "alice")
    assert await _keys(alice, "tea") == [] and calls == []  # nothing of alice's: no embedding
    await alice.aput(("memories",), "drink", {"text": "I drink tea"}, index=False)
    assert await _keys(alice, "tea") == [] and calls == []  # nothing searchable by meaning either
    await alice.aput(("memories",), "tea", {"text": "I drink green tea"})
    assert await _keys(alice, "tea") == ["tea"] and await _keys(alice, "tea") == ["tea"]
    assert await _keys(alice, "green") == ["tea"] and calls == ["tea", "green"]


async def test_an_owner_over_the_copy_bound_is_searched_from_the_database(two: tuple[Storage, Storage]) -> None:
    embeddings = WordVectors()
    items_here = ItemStore(two[0].db, embeddings=embeddings, max_vectors=2)  # alice's 3 are more than a copy holds
    here, there = OwnerStore(items_here, "alice"), OwnerStore(ItemStore(two[1].db, embeddings=embeddings), "alice")
    for key, text in (("home", HOME), ("diet", DIET), ("tea", "I drink green tea")):
        await there.aput(("memories",), key, {"text": text})
    assert (await _keys(here, "green tea"))[0] == "tea" and "alice" not in items_here.vectors._copies
    await there.aput(("memories",), "tea", {"text": "I drink coffee"})
    found = await here.asearch(("memories",), query="coffee")
    assert (found[0].key, found[0].value["text"]) == ("tea", "I drink coffee") and (found[0].score or 0) > 0.5


async def test_the_copy_bound_is_a_setting(two: tuple[Storage, Storage]) -> None:
    """``CHATPLANE_STORE_VECTOR_CACHE``: how many vectors the server's store keeps in memory."""
    from chatplane.core.memories import open_store
    from tests.conftest import make_settings

    async with open_store(make_settings(store_vector_cache=2, embeddings="none"), two[0].db) as (store, _):
        assert store.vectors.max_vectors == 2
