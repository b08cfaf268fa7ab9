"""LangGraph's ``rollback``: a run cancelled to be undone leaves nothing in its thread and no record — as a
double-texting strategy and as a cancel — on every storage."""

from __future__ import annotations

import asyncio

import pytest

from chatplane.agent import ProductionAgent
from chatplane.errors import RunNotFoundError
from chatplane.storage.runs import Run
from tests.conftest import make_settings


async def _texts(agent: ProductionAgent, thread_id: str) -> list[str]:
    return [m.text for m in await agent.for_user("u").threads.messages(thread_id)]


async def _until_running(agent: ProductionAgent, run: Run) -> None:
    for _ in range(200):
        if (await agent.for_user("u").runs.get(run.run_id)).status == "running" and agent.runs.executor.executing():
            await asyncio.sleep(0.1)  # inside the model call
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the run never started")


async def _gone(agent: ProductionAgent, run: Run) -> bool:
    try:
        await agent.for_user("u").runs.get(run.run_id)
    except RunNotFoundError:
        return True
    return False


async def test_rollback_as_double_texting_and_as_a_cancel(storage_url: str) -> None:
    settings = make_settings(storage_url=storage_url, model="fake:echo?delay=0.6")
    async with ProductionAgent(settings=settings) as agent:
        mine = agent.for_user("u")
        thread = await mine.threads.create()
        first = await mine.runs.send(thread.thread_id, "one", multitask="reject")
        await mine.runs.outcome(first)

        undone = await mine.runs.send(thread.thread_id, "two", multitask="reject")
        await _until_running(agent, undone)
        taking_over = await mine.runs.send(thread.thread_id, "three", multitask="rollback")
        last, _ = await mine.runs.outcome(taking_over)
        assert last is not None and last.type == "run_completed"
        assert await _texts(agent, thread.thread_id) == ["one", "echo: one", "three", "echo: three"]
        assert await _gone(agent, undone)

        cancelled = await mine.runs.send(thread.thread_id, "four", multitask="reject")
        await _until_running(agent, cancelled)
        await mine.runs.cancel(cancelled, roll_back=True)
        assert await _gone(agent, cancelled)
        assert await _texts(agent, thread.thread_id) == ["one", "echo: one", "three", "echo: three"]

        after = await mine.runs.send(thread.thread_id, "five", multitask="reject")
        await mine.runs.outcome(after)
        assert await _texts(agent, thread.thread_id) == [
            "one",
            "echo: one",
            "three",
            "echo: three",
            "five",
            "echo: five",
        ]


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_only_rollback_drops_the_partial_answer(persistent_storage_url: str, strategy: str) -> None:
    """The contrast: ``interrupt`` keeps the cut-short run's message (and its partial answer), ``rollback`` does not."""
    settings = make_settings(storage_url=persistent_storage_url, model="fake:echo?delay=0.6")
    async with ProductionAgent(settings=settings) as agent:
        mine = agent.for_user("u")
        thread = await mine.threads.create()
        victim = await mine.runs.send(thread.thread_id, "first", multitask="reject")
        await _until_running(agent, victim)
        run = await mine.runs.send(thread.thread_id, "second", multitask=strategy)  # type: ignore[arg-type]
        await mine.runs.outcome(run)
        texts = await _texts(agent, thread.thread_id)
        if strategy == "rollback":
            assert texts == ["second", "echo: second"] and await _gone(agent, victim)
        else:
            assert texts[0] == "first" and texts[-2:] == ["second", "echo: second"]
            assert (await mine.runs.get(victim.run_id)).status == "cancelled"
