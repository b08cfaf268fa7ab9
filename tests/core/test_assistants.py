"""``AssistantService.resolve``: what runs and threads name an assistant by — a graph id, a default's id, or one of
the caller's own, at its current version or an older one."""

from __future__ import annotations

import pytest

from chatplane import ProductionAgent
from chatplane.agents.catalog import default_assistant_id
from chatplane.errors import AssistantNotFoundError, InvalidInputError
from tests.conftest import make_settings


async def test_resolve_a_graph_a_default_or_ones_own() -> None:
    async with ProductionAgent(settings=make_settings()) as agent:
        alice, bob = agent.for_user("alice").assistants, agent.for_user("bob").assistants
        by_graph = await alice.resolve("react")
        assert by_graph == await bob.resolve(default_assistant_id("react"))
        assert (by_graph.graph_id, by_graph.owner, by_graph.version, by_graph.is_default) == ("react", None, 1, True)
        assert await alice.resolve("react", 1) == by_graph
        with pytest.raises(AssistantNotFoundError):
            await alice.resolve("react", 2)

        mine = await alice.create("chat", name="Mine", context={"system_prompt": "one"})
        await alice.update(mine.assistant_id, context={"system_prompt": "two"})
        assert (await alice.resolve(mine.assistant_id)).context == {"system_prompt": "two"}
        old = await alice.resolve(mine.assistant_id, 1)
        assert (old.version, old.context, old.owner) == (1, {"system_prompt": "one"}, "alice")
        for ref, version in ((mine.assistant_id, None), (mine.assistant_id, 1), ("no-such", None)):
            with pytest.raises(AssistantNotFoundError):
                await bob.resolve(ref, version)
        with pytest.raises(AssistantNotFoundError):
            await alice.resolve(mine.assistant_id, 3)

        assert [a.graph_id for a in alice.defaults()] == ["chat", "react", "multi"]
        with pytest.raises(InvalidInputError):
            await alice.search(limit=0)
        with pytest.raises(InvalidInputError):
            await alice.create("chat", metadata={"x": float("nan")})


async def test_malformed_ids_are_refused_before_storage(storage_url: str) -> None:
    """What the routes' path pattern refuses, refused for every caller (a NUL would not reach PostgreSQL)."""
    async with ProductionAgent(settings=make_settings(storage_url=storage_url)) as agent:
        mine = agent.for_user("alice").assistants
        for call in (
            mine.resolve("a\x00b"),
            mine.resolve("has space", 1),
            mine.versions("a\x00b"),
            mine.update("a\x00b", name="x"),
            mine.delete("a\x00b"),
            mine.set_version("a\x00b", 1),
            mine.create("chat", assistant_id="a\x00b"),
            mine.search(metadata={"k": "a\x00b"}),
            mine.search(graph_id="a\x00b"),
        ):
            with pytest.raises(InvalidInputError):
                await call
