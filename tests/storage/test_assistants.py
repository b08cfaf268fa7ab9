"""The assistant store on memory, SQLite and PostgreSQL: versions, pinning, search, owners kept apart, chosen ids."""

from __future__ import annotations

import asyncio

import pytest

from chatplane.errors import AssistantExistsError, AssistantLimitError, AssistantNotFoundError, InvalidInputError
from chatplane.storage.assistants import Assistant
from chatplane.storage.engine import open_storage
from tests.conftest import make_settings


async def test_versions_update_and_pin(storage_url: str) -> None:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = storage.assistants
        first = await store.create(
            "alice", "chat", name="Helper", config={"tags": ["a"]}, context={"model": "m1"}, metadata={"team": "x"}
        )
        assert (first.owner, first.version, first.name, first.description) == ("alice", 1, "Helper", None)
        assert not first.is_default and first.created_at == first.updated_at
        assert await store.get(first.assistant_id, "alice") == first

        second = await store.update(first.assistant_id, "alice", context={"model": "m2"}, metadata={"env": "prod"})
        assert second.version == 2 and second.name == "Helper" and second.config == {"tags": ["a"]}
        assert second.context == {"model": "m2"} and second.metadata == {"team": "x", "env": "prod"}
        assert second.created_at == first.created_at
        third = await store.update(first.assistant_id, "alice", name="Helper 3", description="the third")
        assert (third.version, third.context, third.description) == (3, {"model": "m2"}, "the third")

        history = await store.versions(first.assistant_id, "alice")
        assert [v.version for v in history] == [3, 2, 1]
        assert history[2].context == {"model": "m1"} and history[2].name == "Helper"
        assert [v.version for v in await store.versions(first.assistant_id, "alice", limit=1, offset=1)] == [2]
        assert await store.versions(first.assistant_id, "alice", offset=10) == []
        assert (await store.get_version(first.assistant_id, "alice", 2)).context == {"model": "m2"}

        pinned = await store.set_version(first.assistant_id, "alice", 1)
        assert (pinned.version, pinned.name, pinned.context) == (1, "Helper", {"model": "m1"})
        assert await store.get(first.assistant_id, "alice") == pinned
        # The next update builds on the pinned version, numbered after the latest.
        fourth = await store.update(first.assistant_id, "alice", metadata={"k": 1})
        assert (fourth.version, fourth.name, fourth.metadata) == (4, "Helper", {"team": "x", "k": 1})
        assert [v.version for v in await store.versions(first.assistant_id, "alice")] == [4, 3, 2, 1]
        with pytest.raises(AssistantNotFoundError):
            await store.set_version(first.assistant_id, "alice", 9)
        with pytest.raises(AssistantNotFoundError):
            await store.get_version(first.assistant_id, "alice", 9)

        await store.delete(first.assistant_id, "alice")
        assert await store.find(first.assistant_id, "alice") is None
        for gone in (
            store.get(first.assistant_id, "alice"),
            store.versions(first.assistant_id, "alice"),
            store.get_version(first.assistant_id, "alice", 1),
            store.delete(first.assistant_id, "alice"),
        ):
            with pytest.raises(AssistantNotFoundError):
                await gone
        # Its versions went with it: the same id starts again at version 1.
        again = await store.create("alice", "chat", assistant_id=first.assistant_id)
        assert [v.version for v in await store.versions(again.assistant_id, "alice")] == [1]


async def test_a_check_that_refuses_stores_nothing(storage_url: str) -> None:
    def refuse(assistant: Assistant) -> None:
        raise InvalidInputError(f"no version {assistant.version}")

    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = storage.assistants
        created = await store.create("alice", "chat", context={"a": 1})
        await store.update(created.assistant_id, "alice", context={"a": 2})
        with pytest.raises(InvalidInputError, match="no version 3"):
            await store.update(created.assistant_id, "alice", context={"a": 3}, check=refuse)
        with pytest.raises(InvalidInputError, match="no version 1"):
            await store.set_version(created.assistant_id, "alice", 1, check=refuse)
        current = await store.get(created.assistant_id, "alice")
        assert (current.version, current.context) == (2, {"a": 2})
        assert [v.version for v in await store.versions(created.assistant_id, "alice")] == [2, 1]
        assert (await store.update(created.assistant_id, "alice", name="n")).version == 3


async def test_another_owners_assistant_is_not_there(storage_url: str) -> None:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = storage.assistants
        mine = await store.create("alice", "chat", name="mine")
        assert await store.find(mine.assistant_id, "bob") is None
        for attempt in (
            store.get(mine.assistant_id, "bob"),
            store.get_version(mine.assistant_id, "bob", 1),
            store.versions(mine.assistant_id, "bob"),
            store.update(mine.assistant_id, "bob", name="taken"),
            store.set_version(mine.assistant_id, "bob", 1),
            store.delete(mine.assistant_id, "bob"),
        ):
            with pytest.raises(AssistantNotFoundError):
                await attempt
        assert await store.search("bob") == [] and await store.count("bob") == 0
        assert await store.get(mine.assistant_id, "alice") == mine
        # Ids are per owner: bob may choose alice's id for his own, and neither sees the other's.
        bobs = await store.create("bob", "react", assistant_id=mine.assistant_id, name="his")
        assert (await store.get(mine.assistant_id, "bob")).name == "his"
        assert (await store.get(mine.assistant_id, "alice")).name == "mine"
        await store.update(mine.assistant_id, "bob", name="his v2")
        assert [v.version for v in await store.versions(mine.assistant_id, "alice")] == [1]
        await store.delete(bobs.assistant_id, "bob")
        assert await store.get(mine.assistant_id, "alice") == mine


async def test_chosen_ids_if_exists_and_the_cap(storage_url: str) -> None:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = storage.assistants
        made = await store.create("alice", "chat", assistant_id="support-bot", name="Support")
        assert made.assistant_id == "support-bot"
        with pytest.raises(AssistantExistsError):
            await store.create("alice", "react", assistant_id="support-bot")
        same = await store.create("alice", "react", assistant_id="support-bot", if_exists="do_nothing")
        assert same == made
        # The same id created at once by two requests: one creates it, the other gets it (or is told it exists).
        racing = await asyncio.gather(
            *(store.create("alice", "chat", assistant_id="raced", if_exists="do_nothing") for _ in range(4))
        )
        assert len({a.created_at for a in racing}) == 1

        await store.create("alice", "chat", max_per_owner=3)
        with pytest.raises(AssistantLimitError):
            await store.create("alice", "chat", max_per_owner=3)
        # At the cap, an id the owner has already is still answered as if_exists says.
        assert await store.create("alice", "chat", assistant_id="raced", if_exists="do_nothing", max_per_owner=3)
        assert await store.count("alice") == 3
        assert (await store.create("bob", "chat", max_per_owner=3)).version == 1


async def test_search_filters_and_pages_newest_first(storage_url: str) -> None:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = storage.assistants
        specs = [
            ("chat", "Travel Planner", {"team": "travel", "level": 1, "flags": {"beta": True}}),
            ("react", "Math tutor", {"team": "school", "level": 2, "ok": None}),
            ("chat", "Trip helper", {"team": "travel", "level": 2, "odd.key": 'q"uote'}),
            ("multi", "Research", {"team": "lab", "tags": ["a", "b"]}),
        ]
        made = [await store.create("alice", g, name=n, metadata=m) for g, n, m in specs]
        await store.create("bob", "chat", name="Travel Planner", metadata={"team": "travel"})

        async def names(**filters: object) -> list[str]:
            return [a.name for a in await store.search("alice", **filters)]  # type: ignore[arg-type]

        assert await names() == ["Research", "Trip helper", "Math tutor", "Travel Planner"]
        assert await names(limit=2, offset=1) == ["Trip helper", "Math tutor"]
        assert await names(graph_id="chat") == ["Trip helper", "Travel Planner"]
        assert await names(name="TRIP") == ["Trip helper"]
        assert await names(name="t") == ["Trip helper", "Math tutor", "Travel Planner"]
        assert await names(metadata={"team": "travel"}) == ["Trip helper", "Travel Planner"]
        assert await names(metadata={"team": "travel", "level": 2}) == ["Trip helper"]
        assert await names(metadata={"level": "2"}) == []  # a string is not the number
        assert await names(metadata={"flags": {"beta": True}}) == ["Travel Planner"]
        assert await names(metadata={"flags": {"beta": False}}) == []
        assert await names(metadata={"tags": ["a", "b"]}) == ["Research"]
        assert await names(metadata={"ok": None}) == ["Math tutor"]
        assert await names(metadata={"odd.key": 'q"uote'}) == ["Trip helper"]
        assert await names(metadata={"missing": None}) == []
        assert await names(graph_id="chat", metadata={"level": 1}, name="planner") == ["Travel Planner"]
        # Updating does not reorder: newest created first.
        await store.update(made[0].assistant_id, "alice", name="Travel Planner 2")
        assert (await names())[-1] == "Travel Planner 2"
