"""One truth per turn: whatever fails as a run's success is committed, its record and its thread agree — the run
succeeded with its answer in the thread, or the answer is not there. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from chatplane.agent import ProductionAgent
from tests.conftest import make_settings


def _fail_success_commits(agent: ProductionAgent, how: str, times: int) -> Callable[[], int]:
    """Make the next ``times`` commits of a run's success fail: ``before`` (nothing written) or ``after`` (written,
    but the answer lost, as when the connection dies right after the commit)."""
    db = agent.storage.db
    real = db.batch
    failed = 0

    def is_success_commit(statements: Any) -> bool:
        return any("UPDATE chatplane_runs SET status" in sql and params[0] == "succeeded" for sql, params in statements)

    async def batch(statements: Any, **options: Any) -> Any:
        nonlocal failed
        if failed < times and is_success_commit(statements):
            failed += 1
            if how == "after":
                await real(statements, **options)
            raise ConnectionError("the database went away")
        return await real(statements, **options)

    db.batch = batch  # type: ignore[method-assign]
    return lambda: failed


async def _turn(agent: ProductionAgent) -> tuple[str, list[str]]:
    mine = agent.for_user("u")
    thread = await mine.threads.create()
    run = await mine.runs.send(thread.thread_id, "hello", multitask="reject")
    for _ in range(400):
        current = await mine.runs.get(run.run_id)
        if current.finished and not agent.runs.executor.executing():  # its task done with it, retries included
            break
        await asyncio.sleep(0.05)
    texts = [m.text for m in await mine.threads.messages(thread.thread_id)]
    return current.status, texts


@pytest.mark.parametrize("how", ["before", "after"])
async def test_a_success_commit_that_fails_once_is_made_again(persistent_storage_url: str, how: str) -> None:
    settings = make_settings(storage_url=persistent_storage_url)
    async with ProductionAgent(settings=settings) as agent:
        failures = _fail_success_commits(agent, how, times=2)
        status, texts = await _turn(agent)
        assert failures() == 2
        assert status == "succeeded" and texts == ["hello", "echo: hello"]


async def test_a_success_that_cannot_be_recorded_is_settled_by_recovery(persistent_storage_url: str) -> None:
    """The database stays away past the retries: nothing is recorded, no answer is in the thread, and the run's
    lapsed lease brings it back — run again, it succeeds, with one answer."""
    settings = make_settings(storage_url=persistent_storage_url, storage_timeout_s=0.2, run_lease_s=1.0)
    async with ProductionAgent(settings=settings) as agent:
        failures = _fail_success_commits(agent, "before", times=1000)
        mine = agent.for_user("u")
        thread = await mine.threads.create()
        run = await mine.runs.send(thread.thread_id, "hello", multitask="reject")
        for _ in range(100):  # the retries give up after three storage timeouts
            await asyncio.sleep(0.05)
            if failures() >= 3 and not agent.runs.executor.executing():
                break
        assert (await mine.runs.get(run.run_id)).status == "running"  # nothing recorded: no split
        assert [m.text for m in await mine.threads.messages(thread.thread_id)] == []
        _fail_success_commits(agent, "before", times=0)  # the database is back
        agent.storage.db.batch = type(agent.storage.db).batch.__get__(agent.storage.db)  # type: ignore[method-assign]
        status, texts = None, []
        for _ in range(300):
            current = await mine.runs.get(run.run_id)
            if current.finished:
                status = current.status
                break
            await asyncio.sleep(0.05)
        texts = [m.text for m in await mine.threads.messages(thread.thread_id)]
        assert status == "succeeded" and texts == ["hello", "echo: hello"]


async def test_a_waiting_client_hears_a_success_recorded_but_never_logged(
    persistent_storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome was committed, but its process could not tell so (the connection lost after each commit, or the
    process killed between commit and log): the run's log never gets its last event. A client waiting on the run
    hears the outcome from the run's record once the log has been silent for a while."""
    monkeypatch.setattr("chatplane.runs.eventlog.SILENCE_S", 0.2)
    settings = make_settings(storage_url=persistent_storage_url, storage_timeout_s=0.2)
    async with ProductionAgent(settings=settings) as agent:
        failures = _fail_success_commits(agent, "after", times=1000)
        mine = agent.for_user("u")
        thread = await mine.threads.create()
        run = await mine.runs.send(thread.thread_id, "hello", multitask="reject")
        last, _ = await asyncio.wait_for(agent.runs.outcome(run.run_id), 30)
        assert failures() >= 1  # told while its process still retries the commit that already landed
        assert last is not None and last.type == "run_completed" and last.data["status"] == "succeeded"
        assert [m.text for m in await mine.threads.messages(thread.thread_id)] == ["hello", "echo: hello"]


async def test_a_finished_run_whose_events_are_gone_still_answers(persistent_storage_url: str) -> None:
    """Waiting on a run whose events this process cannot see any more (its log expired, or its worker died with
    the answer checkpointed and recovery had nothing left to say) gives its outcome from its record — and its answer
    from its thread's state, not nothing."""
    settings = make_settings(storage_url=persistent_storage_url)
    async with ProductionAgent(settings=settings) as agent:
        mine = agent.for_user("u")
        thread = await mine.threads.create()
        first = await mine.runs.send(thread.thread_id, "hello", multitask="reject")
        await mine.runs.outcome(first)
        agent.runs.events._logs.pop(first.run_id)  # type: ignore[attr-defined]
        last, answer = await asyncio.wait_for(mine.runs.outcome(first), 10)
        assert last is not None and last.type == "run_completed" and last.id == 0  # from the record
        assert answer is not None and answer["content"] == "echo: hello"
        second = await mine.runs.send(thread.thread_id, "again", multitask="reject")
        await mine.runs.outcome(second)
        agent.runs.events._logs.pop(first.run_id, None)  # type: ignore[attr-defined]
        _, stale = await mine.runs.outcome(first)
        assert stale is None  # the latest checkpoint is a later run's: no answer rather than the wrong one
