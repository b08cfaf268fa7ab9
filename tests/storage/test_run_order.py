"""A thread's runs in the order they were accepted, and each one's ordinal (the thread protocol's seq is built on it):
the same however many runs come after, and only the owner's."""

from __future__ import annotations

from chatplane.storage.engine import open_storage
from chatplane.storage.runs import RunStore
from tests.conftest import make_settings


async def test_a_run_keeps_its_ordinal_as_runs_are_added(persistent_storage_url: str) -> None:
    async with open_storage(make_settings(storage_url=persistent_storage_url)) as storage:
        runs = RunStore(storage.db)
        made = [await runs.create("t-order", "alice", "chat", {}, "enqueue") for _ in range(5)]
        await runs.create("t-order", "mallory", "chat", {}, "enqueue")  # not alice's: never counted for her
        assert [r.run_id for r in await runs.in_order("t-order", "alice", 1, 10)] == [r.run_id for r in made]
        assert [r.run_id for r in await runs.in_order("t-order", "alice", 4, 10)] == [r.run_id for r in made[3:]]
        assert [r.run_id for r in await runs.in_order("t-order", "alice", 2, 2)] == [r.run_id for r in made[1:3]]
        assert [await runs.count_for_thread("t-order", "alice", up_to=r.created_at) for r in made] == [1, 2, 3, 4, 5]
        later = await runs.create("t-order", "alice", "chat", {}, "enqueue")
        assert await runs.count_for_thread("t-order", "alice", up_to=made[2].created_at) == 3  # unchanged
        assert await runs.count_for_thread("t-order", "alice") == 6
        assert await runs.count_for_thread("t-order", "alice", up_to=later.created_at) == 6
        assert await runs.in_order("t-order", "alice", 7, 10) == []
        assert await runs.in_order("t-order", "bob", 1, 10) == []
