"""RunManager directly: human-in-the-loop approval, cancel of queued and waiting runs, event log replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from chatplane.agents.project import GraphSource
from chatplane.agents.registry import GraphRegistry
from chatplane.core.targets import RunTargets
from chatplane.llm.fake import ScriptedChatModel
from chatplane.runs import RunManager
from chatplane.runs.eventlog import MemoryEventLog
from chatplane.storage.engine import open_storage
from chatplane.storage.runs import RunStore
from tests.conftest import make_settings

deleted: list[str] = []


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    deleted.append(path)
    return f"deleted {path}"


def _scripted() -> ScriptedChatModel:
    call = AIMessage(content="", tool_calls=[{"name": "delete_file", "args": {"path": "report.txt"}, "id": "call-1"}])
    return ScriptedChatModel(replies=[call, "All done."])


@pytest.fixture
async def manager(storage_url: str) -> AsyncIterator[RunManager]:
    settings = make_settings(storage_url=storage_url)
    async with open_storage(settings) as storage:
        graph = create_agent(
            _scripted(),
            tools=[delete_file],
            middleware=[HumanInTheLoopMiddleware(interrupt_on={"delete_file": True})],
            checkpointer=storage.checkpointer,
            name="chat",
        )
        registry = await GraphRegistry.open([GraphSource("chat", "test", graph)], settings, None, storage.checkpointer)
        runs = RunManager(storage=storage, settings=settings, graph_for=RunTargets(registry).for_run)
        yield runs
        await runs.aclose()


async def _events(manager: RunManager, run_id: str, after: int = 0) -> list:
    return [e async for e in manager.subscribe(run_id, after)]


async def test_sensitive_tool_waits_for_approval_then_runs(manager: RunManager) -> None:
    deleted.clear()
    thread = await manager.threads.create("alice", "chat")
    run = await manager.submit(thread, "clean up", user_id="alice", multitask="reject")
    first = await _events(manager, run.run_id)
    assert first[-1].type == "interrupt"
    request = first[-1].data["requests"][0]["value"]
    assert request["action_requests"][0]["name"] == "delete_file"
    assert (await manager.runs.get(run.run_id, "alice")).status == "waiting"
    assert deleted == []

    await manager.resume(await manager.runs.get(run.run_id, "alice"), {"decisions": [{"type": "approve"}]})
    rest = await _events(manager, run.run_id, after=first[-1].id)
    assert rest[-1].type == "run_completed"
    assert [e.id for e in first + rest] == list(range(1, len(first) + len(rest) + 1))
    assert deleted == ["report.txt"]
    assert any(e.type == "tool_result" and e.data["content"] == "deleted report.txt" for e in rest)
    assert (await manager.runs.get(run.run_id, "alice")).status == "succeeded"


async def test_rejected_tool_call_is_not_run(manager: RunManager) -> None:
    deleted.clear()
    thread = await manager.threads.create("alice", "chat")
    run = await manager.submit(thread, "clean up", user_id="alice", multitask="reject")
    await manager.wait(run.run_id)
    await manager.resume(run, {"decisions": [{"type": "reject", "message": "keep it"}]})
    await manager.wait(run.run_id)
    events = await _events(manager, run.run_id)
    assert events[-1].type == "run_completed"
    assert deleted == []


async def test_waiting_run_can_be_cancelled_and_blocks_reject(manager: RunManager) -> None:
    from chatplane.errors import ThreadBusyError

    thread = await manager.threads.create("alice", "chat")
    run = await manager.submit(thread, "clean up", user_id="alice", multitask="reject")
    await manager.wait(run.run_id)
    with pytest.raises(ThreadBusyError):
        await manager.submit(thread, "another", user_id="alice", multitask="reject")
    cancelled = await manager.cancel(run)
    assert cancelled.status == "cancelled"
    assert (await _events(manager, run.run_id))[-1].type == "run_cancelled"


async def test_event_log_replays_after_an_id_and_follows_live() -> None:
    log = MemoryEventLog()
    await log.append("r", "run_started")
    await log.append("r", "token", {"text": "a"})
    replay = log.subscribe("r", after=1)
    first = await anext(replay)
    assert (first.id, first.type) == (2, "token")
    await log.append("r", "run_completed")
    assert (await anext(replay)).type == "run_completed"
    with pytest.raises(StopAsyncIteration):
        await anext(replay)


async def test_event_log_forgets_old_finished_runs_only() -> None:
    log = MemoryEventLog(max_runs=2)
    await log.append("live", "run_started")
    for name in ("a", "b", "c"):
        await log.append(name, "run_completed")
    assert log.known("live")
    assert not log.known("a")


async def test_a_run_whose_outcome_was_not_recorded_is_recovered_while_others_run(
    persistent_storage_url: str, monkeypatch
) -> None:
    """A run whose task ended without its outcome recorded (the database refused it) is still ``running`` in the
    table. The heartbeat renews only the leases of runs this process is executing, so that one's lease runs out and
    recovery takes it (here: ``fail``, as ``worker_lost``), even while the process has other runs; before, the
    heartbeat renewed it with them, and its thread stayed busy for as long as the process was."""
    import asyncio
    import time

    from chatplane import ProductionAgent
    from chatplane.errors import ChatplaneError

    words = " ".join(f"word{i}" for i in range(40))
    settings = make_settings(
        storage_url=persistent_storage_url,
        model=f"fake:{words}?token_delay=0.1",  # 4 s an answer streamed token by token
        run_lease_s=1,
        run_recovery="fail",
        storage_timeout_s=0.2,  # the success commit is tried again for three of these, then left for recovery
    )
    async with ProductionAgent(settings=settings) as agent:
        with monkeypatch.context() as patch:
            refused = ("SELECT * FROM chatplane_no_such_table", ())  # an error on both databases
            patch.setattr(RunStore, "finish_statement", staticmethod(lambda *a, **k: refused))
            lost = asyncio.create_task(agent.achat("alice", "lost"))  # a whole answer at once: no token delay
            deadline = time.monotonic() + 10
            while not (await agent.storage.runs.list_for_thread("session-alice")) or agent.runs.executor.executing():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            [orphan] = await agent.storage.runs.list_for_thread("session-alice")
            assert orphan.status == "running"  # its task ended without its outcome recorded
        # Each wait is bounded, so that a hang (seen once, on PostgreSQL under a loaded CI run) names its line.
        with pytest.raises(ChatplaneError):
            await asyncio.wait_for(lost, 60)  # told the outcome recovery records
        busy = await agent.threads.create("bob", "chat")
        other = await agent.runs.submit(busy, "keep the worker busy", user_id="bob", multitask="reject")
        deadline = time.monotonic() + 10
        while (orphan := await agent.storage.runs.get(orphan.run_id, "alice")).status == "running":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert (orphan.status, orphan.error_code) == ("failed", "worker_lost")
        assert (await agent.storage.runs.get(other.run_id, "bob")).status == "running"  # the process was busy all along
        await asyncio.wait_for(agent.runs.wait(other.run_id), 60)
        assert await asyncio.wait_for(agent.achat("alice", "again"), 60) == words  # the thread takes new runs


async def test_a_run_that_keeps_losing_its_worker_is_failed_after_the_allowed_recoveries(
    persistent_storage_url: str, monkeypatch
) -> None:
    """Recovery resumes a run whose worker was lost at most ``run_max_recoveries`` times; the next time the run is
    failed as ``worker_lost``, so a run that kills whichever process runs it cannot take down every worker in turn.
    (Here each attempt "loses its worker" by ending without its outcome recorded.)"""
    import asyncio
    import time

    from chatplane import ProductionAgent
    from chatplane.errors import ChatplaneError

    settings = make_settings(
        storage_url=persistent_storage_url, run_lease_s=1, run_max_recoveries=1, storage_timeout_s=0.2
    )
    original = RunStore.finish_statement

    def refused_but_worker_lost(run, status, usage, error_code):  # noqa: ANN001, ANN202
        if error_code == "worker_lost":  # recovery giving up: recorded
            return original(run, status, usage, error_code)
        return ("SELECT * FROM chatplane_no_such_table", ())

    monkeypatch.setattr(RunStore, "finish_statement", staticmethod(refused_but_worker_lost))
    async with ProductionAgent(settings=settings) as agent:
        with pytest.raises(ChatplaneError):
            await agent.achat("alice", "doomed")
        [run] = await agent.storage.runs.list_for_thread("session-alice")
        deadline = time.monotonic() + 15
        while (run := await agent.storage.runs.get(run.run_id, "alice")).status == "running":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert (run.status, run.error_code) == ("failed", "worker_lost")
        row = await agent.storage.runs.db.fetchone(
            "SELECT recoveries FROM chatplane_runs WHERE run_id = %s", (run.run_id,)
        )
        assert row is not None and row["recoveries"] == 2  # resumed once, then given up
        monkeypatch.undo()
        assert [m.text for m in await agent.aget_history("session-alice")][0] == "doomed"  # the message is kept


async def _agent_answering(settings: Any) -> tuple[Any, Any, Any]:
    """A started ``ProductionAgent`` (the caller closes it), a thread of alice's, and a run on it that has begun
    streaming its answer."""
    from chatplane import ProductionAgent

    agent = ProductionAgent(settings=settings)
    await agent.__aenter__()
    thread = await agent.threads.create("alice", "chat")
    run = await agent.runs.submit(thread, "go", user_id="alice", multitask="reject")
    async for event in agent.runs.subscribe(run.run_id):
        if event.type == "token":
            break
    return agent, thread, run


async def test_a_run_handed_back_at_shutdown_is_resumed_without_counting_as_lost(persistent_storage_url: str) -> None:
    """A run handed back at a graceful shutdown (its grace ran out) is resumed by the next process even when no
    recovery of lost runs is allowed: a rolling restart is not a worker lost, so long runs survive several."""
    import asyncio

    from chatplane import ProductionAgent

    words = " ".join(f"word{i}" for i in range(40))
    settings = make_settings(
        storage_url=persistent_storage_url,
        model=f"fake:{words}?token_delay=0.05",
        run_lease_s=1,
        run_max_recoveries=0,
    )
    first, thread, run = await _agent_answering(settings)
    await first.aclose(grace_s=0)  # hands the run back
    async with ProductionAgent(settings=settings) as second:
        for _ in range(150):
            run = await second.storage.runs.get(run.run_id, "alice")
            if run.finished:
                break
            await asyncio.sleep(0.1)
        assert (run.status, run.error_code) == ("succeeded", None)
        row = await second.storage.runs.db.fetchone(
            "SELECT recoveries FROM chatplane_runs WHERE run_id = %s", (run.run_id,)
        )
        assert row == {"recoveries": 0}
        assert [m.text for m in await second.for_user(thread.owner).threads.messages(thread)] == ["go", words]


async def test_a_run_finishing_in_its_shutdown_grace_is_not_taken_over(persistent_storage_url: str) -> None:
    """While a process shuts down, its runs keep their leases through the grace (which may outlast a lease): they
    finish there, once, and another process's recovery does not take them over meanwhile (which ran them twice and
    counted a lost worker)."""
    import asyncio

    from chatplane import ProductionAgent

    words = " ".join(f"word{i}" for i in range(60))
    # 3 s an answer, 1 s a lease
    settings = make_settings(storage_url=persistent_storage_url, model=f"fake:{words}?token_delay=0.05", run_lease_s=1)
    async with ProductionAgent(settings=settings) as other:  # another process: its recovery runs throughout
        leaving, thread, run = await _agent_answering(settings)
        await leaving.aclose(grace_s=15)
        run = await other.storage.runs.get(run.run_id, "alice")
        assert (run.status, run.error_code) == ("succeeded", None)
        row = await other.storage.runs.db.fetchone(
            "SELECT recoveries FROM chatplane_runs WHERE run_id = %s", (run.run_id,)
        )
        assert row == {"recoveries": 0}
        await asyncio.sleep(1.5)  # a takeover would have answered again by now
        assert [m.text for m in await other.for_user(thread.owner).threads.messages(thread)] == ["go", words]


async def test_a_run_resumed_while_its_paused_task_wraps_up_stays_known_as_executing(manager: RunManager) -> None:
    """A run approved while the task that paused it is still wrapping up runs in a new task; when the old task
    ends, the new one stays known as executing (so the heartbeat keeps renewing its lease), not forgotten with it."""
    import asyncio

    deleted.clear()
    old_task_wraps_up, new_task_ends = asyncio.Event(), asyncio.Event()
    touch, append = manager.threads.touch, manager.events.append
    completing = asyncio.Event()

    async def slow_touch(thread_id: str) -> None:
        await old_task_wraps_up.wait()
        await touch(thread_id)

    async def held_completion(run_id: str, type: Any, data: Any = None) -> Any:
        if type == "run_completed":
            completing.set()
            await new_task_ends.wait()
        return await append(run_id, type, data)

    manager.threads.touch = slow_touch  # type: ignore[method-assign]
    manager.events.append = held_completion  # type: ignore[method-assign]
    thread = await manager.threads.create("alice", "chat")
    run = await manager.submit(thread, "clean up", user_id="alice", multitask="reject")
    assert (await _events(manager, run.run_id))[-1].type == "interrupt"
    await manager.resume(await manager.runs.get(run.run_id, "alice"), {"decisions": [{"type": "approve"}]})
    await completing.wait()  # the new task is still executing
    old_task_wraps_up.set()
    await asyncio.sleep(0.05)  # the old task ends
    assert manager.active_runs() == 1
    new_task_ends.set()
    await manager.wait(run.run_id)
    assert (await manager.runs.get(run.run_id, "alice")).status == "succeeded"


async def _held_run(manager: RunManager, worker: str, lease_until: float) -> str:
    """A run of a new thread of alice's, running and held by ``worker`` until ``lease_until``; its id."""
    thread = await manager.threads.create("alice", "chat")
    run = await manager.runs.create(thread.thread_id, "alice", "chat", {"message": "hi"}, "reject")
    await manager.runs.db.execute(
        "UPDATE chatplane_runs SET status = 'running', worker = %s, lease_until = %s WHERE run_id = %s",
        (worker, lease_until, run.run_id),
    )
    return run.run_id


async def _holder(manager: RunManager, run_id: str) -> dict[str, Any]:
    row = await manager.runs.db.fetchone(
        "SELECT worker, lease_until, recoveries FROM chatplane_runs WHERE run_id = %s", (run_id,)
    )
    assert row is not None
    return dict(row)


async def test_release_hands_back_only_the_runs_the_worker_still_holds(manager: RunManager) -> None:
    """A shutting-down worker hands its runs back; one another process took over meanwhile (its lease lapsed in a
    long grace) stays that process's, lease and all."""
    import time

    mine = await _held_run(manager, "leaving", time.time() + 60)
    taken = await _held_run(manager, "other", time.time() + 60)  # was the leaving worker's, until recovery took it
    await manager.runs.release([mine, taken], "leaving")
    assert await _holder(manager, mine) == {"worker": None, "lease_until": 0, "recoveries": 0}
    kept = await _holder(manager, taken)
    assert kept["worker"] == "other" and kept["lease_until"] > time.time() + 30


async def test_recovery_takes_over_only_the_run_as_it_read_it(manager: RunManager, monkeypatch) -> None:
    """The reaper decides on what it read: if the run changed hands since (another process recovered it, and lost it
    again), its takeover does nothing, and the next round decides on a fresh read — counting that loss too."""
    import time
    from unittest.mock import AsyncMock

    run_id = await _held_run(manager, "ghost", 1.0)
    [stale] = await manager.runs.expired(time.time())
    assert (stale.worker, stale.recoveries) == ("ghost", 0)
    await manager.runs.db.execute(  # meanwhile: recovered elsewhere, and that worker was lost too
        "UPDATE chatplane_runs SET worker = 'other', recoveries = 1, lease_until = 1 WHERE run_id = %s", (run_id,)
    )
    taken_over: list[tuple[str | None, int, bool]] = []

    async def take_over(run: Any, lost: bool) -> None:
        taken_over.append((run.worker, run.recoveries, lost))

    monkeypatch.setattr(manager.leases, "_take_over", take_over)
    expired = manager.runs.expired
    monkeypatch.setattr(manager.runs, "expired", AsyncMock(return_value=[stale]))
    await manager.leases._reap()
    assert taken_over == []
    holder = await _holder(manager, run_id)
    # Unchanged hands (on PostgreSQL the reaper also saw that 'other' holds no session: its lease was ended early).
    assert (holder["worker"], holder["recoveries"]) == ("other", 1) and holder["lease_until"] in (0, 1)
    monkeypatch.setattr(manager.runs, "expired", expired)
    await manager.leases._reap()
    assert taken_over == [("other", 1, True)]
    after = await _holder(manager, run_id)
    assert (after["worker"], after["recoveries"]) == (manager.worker, 2)


async def test_a_run_recovery_is_deciding_about_keeps_its_lease(manager: RunManager, monkeypatch) -> None:
    """Between taking a run over and launching it (reading its state first, on a slow database), recovery's run is
    renewed by the heartbeat like a running one: its lease does not lapse for another process to take it again."""
    import asyncio
    import time

    run_id = await _held_run(manager, "ghost", 1.0)
    deciding, decided = asyncio.Event(), asyncio.Event()

    async def slow_take_over(run: Any, lost: bool) -> None:
        deciding.set()
        await decided.wait()

    monkeypatch.setattr(manager.leases, "_take_over", slow_take_over)
    reaping = asyncio.create_task(manager.leases._reap())
    await deciding.wait()
    assert (await _holder(manager, run_id))["worker"] == manager.worker
    await manager.runs.db.execute(  # time passes: the lease is about to lapse
        "UPDATE chatplane_runs SET lease_until = %s WHERE run_id = %s", (time.time() + 0.5, run_id)
    )
    await manager.leases._heartbeat()
    assert (await _holder(manager, run_id))["lease_until"] > time.time() + manager.settings.run_lease_s - 5
    decided.set()
    await reaping
    assert manager.leases._recovering == set()
