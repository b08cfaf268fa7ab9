"""The long-term store on memory, SQLite and PostgreSQL, through LangGraph's ``BaseStore`` interface: put, get,
search (by filter and by meaning, with the real offline embedding model), delete, namespaces, TTL, owners apart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from langgraph.store.base import BaseStore, InvalidNamespaceError

from chatplane.errors import InvalidInputError
from chatplane.llm.embeddings import LocalEmbeddings
from chatplane.storage.engine import Storage, open_storage
from chatplane.storage.items import ItemStore
from chatplane.storage.owner_store import OwnerStore, StoreLimits
from tests.conftest import make_settings

# A small labelled set: each question's right answer is the memory named beside it.
MEMORIES = {
    "diet": "I am vegetarian and never eat meat or fish.",
    "python": "Our repository is written in Python 3.12 and uses pytest.",
    "daughter": "My daughter Alice is seven years old.",
    "home": "I live in Lisbon, Portugal.",
    "editor": "I prefer dark mode and the Vim editor.",
    "allergy": "I am allergic to peanuts.",
}
QUESTIONS = {
    "Which programming language version does the codebase use?": "python",
    "How old is my child?": "daughter",
    "Which city am I living in?": "home",
    "Which editor theme do I like?": "editor",
}


@pytest.fixture
async def storage(storage_url: str) -> AsyncIterator[Storage]:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        yield storage


@pytest.fixture
def items(storage: Storage) -> ItemStore:
    return ItemStore(storage.db, embeddings=LocalEmbeddings())


def alice_and_bob(items: ItemStore) -> tuple[BaseStore, BaseStore]:
    return OwnerStore(items, "alice"), OwnerStore(items, "bob")


async def test_put_get_update_delete(items: ItemStore) -> None:
    alice, _ = alice_and_bob(items)
    await alice.aput(("memories", "profile"), "diet", {"text": MEMORIES["diet"]})
    item = await alice.aget(("memories", "profile"), "diet")
    assert item is not None and item.namespace == ("memories", "profile") and item.value == {"text": MEMORIES["diet"]}
    first_created = item.created_at
    await alice.aput(("memories", "profile"), "diet", {"text": "I eat everything."})
    updated = await alice.aget(("memories", "profile"), "diet")
    assert updated is not None and updated.value == {"text": "I eat everything."}
    assert updated.created_at == first_created and updated.updated_at >= first_created
    await alice.adelete(("memories", "profile"), "diet")
    assert await alice.aget(("memories", "profile"), "diet") is None
    assert await items.count("alice") == 0


async def test_search_ranks_the_right_memory_first(items: ItemStore) -> None:
    alice, _ = alice_and_bob(items)
    for key, text in MEMORIES.items():
        await alice.aput(("memories",), key, {"text": text})
    for question, expected in QUESTIONS.items():
        found = await alice.asearch(("memories",), query=question, limit=3)
        assert found[0].key == expected, (question, [(f.key, f.score) for f in found])
        assert found[0].score is not None and found[0].score >= (found[1].score or 0)
    # without a query: newest first; a filter narrows; offset pages
    newest = await alice.asearch(("memories",), limit=2)
    assert [i.key for i in newest] == ["allergy", "editor"] and newest[0].score is None
    assert [i.key for i in await alice.asearch(("memories",), limit=2, offset=2)] == ["home", "daughter"]
    filtered = await alice.asearch(("memories",), filter={"text": MEMORIES["home"]})
    assert [i.key for i in filtered] == ["home"]


async def test_not_indexed_items_are_found_by_filter_but_not_by_meaning(items: ItemStore) -> None:
    alice, _ = alice_and_bob(items)
    await alice.aput(("notes",), "secret", {"text": MEMORIES["home"], "kind": "private"}, index=False)
    assert await alice.asearch(("notes",), query="Which city am I living in?") == []  # nothing searchable yet
    await alice.aput(("notes",), "indexed", {"text": MEMORIES["diet"], "kind": "public"}, index=["text"])
    by_meaning = await alice.asearch(("notes",), query="Which city am I living in?")
    assert [i.key for i in by_meaning] == ["indexed"]
    assert [i.key for i in await alice.asearch(("notes",), filter={"kind": {"$ne": "public"}})] == ["secret"]


async def test_namespaces_and_prefixes(items: ItemStore) -> None:
    alice, _ = alice_and_bob(items)
    await alice.aput(("a", "b", "c"), "k", {"x": 1})
    await alice.aput(("a", "b"), "k", {"x": 2})
    await alice.aput(("a", "bb"), "k", {"x": 3})
    await alice.aput(("z",), "k", {"x": 4})
    assert await alice.alist_namespaces() == [("a", "b"), ("a", "b", "c"), ("a", "bb"), ("z",)]
    assert await alice.alist_namespaces(prefix=("a", "b")) == [("a", "b"), ("a", "b", "c")]
    assert await alice.alist_namespaces(suffix=("c",)) == [("a", "b", "c")]
    assert await alice.alist_namespaces(max_depth=1) == [("a",), ("z",)]
    under_ab = await alice.asearch(("a", "b"))
    assert sorted(i.value["x"] for i in under_ab) == [1, 2]  # not ("a", "bb")
    assert len(await alice.asearch(())) == 4


async def test_two_owners_never_see_each_other(items: ItemStore) -> None:
    alice, bob = alice_and_bob(items)
    await alice.aput(("memories",), "home", {"text": MEMORIES["home"]})
    await bob.aput(("memories",), "diet", {"text": MEMORIES["diet"]})
    assert await bob.aget(("memories",), "home") is None
    assert [i.key for i in await bob.asearch(("memories",), query="Which city am I living in?")] == ["diet"]
    assert [i.key for i in await alice.asearch(())] == ["home"]
    await bob.adelete(("memories",), "home")  # not bob's: nothing happens
    assert await alice.aget(("memories",), "home") is not None
    assert await bob.alist_namespaces() == [("memories",)]
    # an owner's name is not a namespace another user can write into
    await bob.aput(("alice", "memories"), "home", {"text": "bob was here"})
    assert (await alice.aget(("memories",), "home")).value == {"text": MEMORIES["home"]}  # type: ignore[union-attr]


async def test_ttl_expires_items_and_reads_refresh_it(items: ItemStore) -> None:
    alice, _ = alice_and_bob(items)
    await alice.aput(("tmp",), "short", {"v": 1}, ttl=0.002)  # 0.12 s
    await alice.aput(("tmp",), "long", {"v": 2}, ttl=60)
    await alice.aput(("tmp",), "forever", {"v": 3})
    await asyncio.sleep(0.3)
    assert await alice.aget(("tmp",), "short") is None
    assert sorted(i.key for i in await alice.asearch(("tmp",))) == ["forever", "long"]
    assert await items.count("alice") == 3  # expired, not yet swept
    assert await items.sweep() == 1
    assert await items.sweep(now=time.time() + 2 * 3600) == 1  # "long" after its hour
    assert [i.key for i in await alice.asearch(("tmp",))] == ["forever"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.aput(("m",), "k", {"text": "x" * 70_000}), "bytes"),
        (lambda s: s.aput(tuple("abcdefghi"), "k", {"v": 1}), "labels"),
        (lambda s: s.aput(("a.b",), "k", {"v": 1}), r"\('\.'\)"),  # LangGraph's own check, before the store's
        (lambda s: s.aput(("a\nb",), "k", {"v": 1}), "control"),
        (lambda s: s.aput(("m",), "k\x01", {"v": 1}), "control"),
        (lambda s: s.aput(("m",), "", {"v": 1}), "key"),
        (lambda s: s.aput(("langgraph",), "k", {"v": 1}), "langgraph"),
        (lambda s: s.aput(("m",), "k", {"v": 1}, ttl=-1), "ttl"),
        (lambda s: s.asearch(("m",), limit=10_000), "limit"),
        (lambda s: s.asearch(("m",), offset=-1), "offset"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(items: ItemStore, call, message: str) -> None:
    alice = OwnerStore(items, "alice", StoreLimits())
    with pytest.raises((InvalidInputError, InvalidNamespaceError), match=message):
        await call(alice)
    assert await items.count("alice") == 0


async def test_a_synchronous_caller_in_a_thread_uses_the_store(items: ItemStore) -> None:
    alice, _ = alice_and_bob(items)
    await alice.aput(("m",), "a", {"v": 1})  # the store learns its loop

    def in_a_thread() -> int:
        alice.put(("m",), "b", {"v": 2})
        return len(alice.search(("m",)))

    assert await asyncio.to_thread(in_a_thread) == 2
    with pytest.raises(RuntimeError, match="abatch"):
        alice.get(("m",), "a")  # on the event loop: refused, not deadlocked


async def test_the_retention_job_sweeps_expired_items(storage: Storage, items: ItemStore) -> None:
    from chatplane.retention.prune import prune

    alice, _ = alice_and_bob(items)
    await alice.aput(("tmp",), "hour", {"v": 1}, ttl=60)
    await alice.aput(("tmp",), "kept", {"v": 2})
    later = time.time() + 2 * 3600
    dry = await prune(storage, None, later, dry_run=True)
    assert dry.items == 1 and await items.count("alice") == 2
    assert (await prune(storage, None, later)).items == 1
    assert [i.key for i in await alice.asearch(("tmp",))] == ["kept"]


async def test_a_search_sees_what_another_process_wrote_since(storage: Storage) -> None:
    """Each process keeps a copy of a user's vectors for searches; a write by another process (another store on
    the same database) is seen at the next search."""
    embeddings = LocalEmbeddings()
    here = OwnerStore(ItemStore(storage.db, embeddings=embeddings), "alice")
    there = OwnerStore(ItemStore(storage.db, embeddings=embeddings), "alice")
    await here.aput(("memories",), "diet", {"text": MEMORIES["diet"]})
    question = "Which city am I living in?"
    assert [i.key for i in await here.asearch(("memories",), query=question)] == ["diet"]
    await there.aput(("memories",), "home", {"text": MEMORIES["home"]})
    assert [i.key for i in await here.asearch(("memories",), query=question)] == ["home", "diet"]
    await there.adelete(("memories",), "home")
    assert [i.key for i in await here.asearch(("memories",), query=question)] == ["diet"]
    await there.aput(("memories",), "diet", {"text": MEMORIES["home"]})  # the same key, another meaning
    found = await here.asearch(("memories",), query=question)
    assert [(i.key, i.value["text"]) for i in found] == [("diet", MEMORIES["home"])]
