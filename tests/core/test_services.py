"""The owner-scoped services (``agent.for_user``): what every way in relies on — one user never reaches another's
threads or runs, and a message becomes a run in one place, with the same checks whoever sends it."""

from __future__ import annotations

import pytest

from chatplane import ProductionAgent
from chatplane.errors import (
    AgentMismatchError,
    InvalidInputError,
    RunNotFoundError,
    ThreadBusyError,
    ThreadNotFoundError,
)
from tests.conftest import make_settings


async def test_another_users_threads_and_runs_are_not_there(storage_url: str) -> None:
    async with ProductionAgent(settings=make_settings(storage_url=storage_url)) as agent:
        alice, bob = agent.for_user("alice"), agent.for_user("bob")
        thread = await alice.threads.create(title="mine")
        run = await alice.runs.send(thread.thread_id, "hello", multitask="reject")
        assert (await alice.runs.outcome(run))[1]["content"] == "echo: hello"
        for attempt in (
            bob.threads.get(thread.thread_id),
            bob.threads.messages(thread.thread_id),
            bob.threads.runs(thread.thread_id),
            bob.threads.update(thread.thread_id, title="taken"),
            bob.threads.delete(thread.thread_id),
            bob.runs.send(thread.thread_id, "hi", multitask="enqueue"),
        ):
            with pytest.raises(ThreadNotFoundError):
                await attempt
        for run_call in (bob.runs.get(run.run_id), bob.runs.cancel(run.run_id), bob.runs.retry(run.run_id)):
            with pytest.raises(RunNotFoundError):
                await run_call
        assert [m.text for m in await alice.threads.messages(thread.thread_id)] == ["hello", "echo: hello"]
        assert (await alice.threads.list())[0] == [await alice.threads.get(thread.thread_id)]
        assert (await bob.threads.list())[0] == []


async def test_sending_checks_the_message_the_agent_and_the_thread_in_one_place() -> None:
    slow = "fake:one two three four five?token_delay=0.1"  # an answer that takes half a second
    async with ProductionAgent(settings=make_settings(model=slow)) as agent:
        mine = agent.for_user("alice")
        thread = await mine.threads.create(agent="chat")
        other = await mine.threads.create()
        for bad in ("", "   ", "a\x00b", "x" * (agent.settings.max_message_chars + 1)):
            with pytest.raises(InvalidInputError):
                await mine.runs.send(thread.thread_id, bad, multitask="reject")
        with pytest.raises(InvalidInputError):
            await mine.runs.send(thread.thread_id, "hi", multitask="reject", agent="no-such-agent")
        with pytest.raises(AgentMismatchError):
            await mine.runs.send(thread.thread_id, "hi", multitask="reject", agent="react")
        with pytest.raises(ThreadNotFoundError):
            await mine.runs.send("never-made", "hi", multitask="reject")
        created = await mine.runs.send("made-on-first-use", "hi", multitask="reject", create_as="react")
        assert (await mine.threads.get("made-on-first-use")).agent == "react"
        await mine.runs.outcome(created)
        first = await mine.runs.send(thread.thread_id, "one", multitask="reject")
        with pytest.raises(ThreadBusyError):
            await mine.runs.send(thread.thread_id, "two", multitask="reject")
        await mine.runs.outcome(first)
        with pytest.raises(InvalidInputError):  # a run of another thread, asked for as this thread's
            await mine.runs.get(first.run_id, thread_id=other.thread_id)
        with pytest.raises(InvalidInputError):
            await mine.threads.create(agent="no-such-agent")
