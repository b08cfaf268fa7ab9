"""Long threads stay cheap to store: each turn writes about its own messages, whatever the thread's length.

The bytes are read from the real tables (SQLite file, PostgreSQL database): the checkpointer's checkpoints, writes and
blobs, and chatplane's transcript. No timings.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from chatplane import ProductionAgent
from chatplane.agents.context import settled
from chatplane.agents.limits import answer_dangling_tool_calls
from chatplane.errors import ModelError
from chatplane.llm.fake import ScriptedChatModel
from chatplane.storage.transcript import Transcript, merge_history
from chatplane.storage.unit_of_work import HeldWrites, Turn
from tests.agents.helpers import assert_every_tool_call_answered, call
from tests.conftest import make_settings

_SQLITE_BYTES = [
    "SELECT coalesce(sum(length(checkpoint) + length(metadata)), 0) AS n FROM checkpoints",
    "SELECT coalesce(sum(length(value)), 0) AS n FROM writes",
    "SELECT coalesce(sum(length(CAST(data AS BLOB))), 0) AS n FROM chatplane_messages",
]
_POSTGRES_BYTES = [
    "SELECT coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)), 0) AS n FROM checkpoints",
    "SELECT coalesce(sum(octet_length(blob)), 0) AS n FROM checkpoint_blobs",
    "SELECT coalesce(sum(octet_length(blob)), 0) AS n FROM checkpoint_writes",
    "SELECT coalesce(sum(octet_length(data)), 0) AS n FROM chatplane_messages",
]


async def stored_bytes(agent: ProductionAgent) -> int:
    """Every byte the thread's state takes in the database: checkpoints, their writes and blobs, the transcript."""
    db = agent.transcript.db
    queries = _POSTGRES_BYTES if db.dialect == "postgres" else _SQLITE_BYTES
    total = 0
    for sql in queries:
        row = await db.fetchone(sql)
        total += int(row["n"]) if row else 0
    return total


async def test_storage_per_turn_is_flat_and_history_is_whole(persistent_storage_url: str) -> None:
    settings = make_settings(storage_url=persistent_storage_url, context_budget_tokens=300)
    turns = 200
    async with ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as agent:
        written = []
        before = await stored_bytes(agent)
        for turn in range(turns):
            await agent.achat("u", f"message number {turn:04d} with the same number of words in it")
            after = await stored_bytes(agent)
            written.append(after - before)
            before = after
        history = await agent.aget_history("session-u")
        state = await agent.graphs["chat"].aget_state({"configurable": {"thread_id": "session-u"}})

    early, late = statistics.mean(written[10:60]), statistics.mean(written[150:])
    assert late <= early * 1.15, (early, late)  # flat: turn 200 writes what turn 10 did
    assert late < 8_000  # about one turn's messages (twice: checkpoint, then transcript), not the thread
    assert len(history) == 2 * turns  # every message, in order
    assert [m.text for m in history[::2]] == [
        f"message number {t:04d} with the same number of words in it" for t in range(turns)
    ]
    assert all(isinstance(m, AIMessage) for m in history[1::2])
    assert len(state.values["messages"]) == 2  # the checkpoint holds the last turn only


async def test_the_model_still_sees_earlier_turns(tmp_path) -> None:
    model = ScriptedChatModel(echo=True)
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/t.db", context_budget_tokens=10_000)
    async with ProductionAgent(model, settings=settings) as agent:
        for turn in range(3):
            await agent.achat("u", f"turn {turn}")
    last_prompt = [m.text for m in model.prompts[-1] if m.type != "system"]
    assert last_prompt == ["turn 0", "echo: turn 0", "turn 1", "echo: turn 1", "turn 2"]


async def test_archiving_takes_no_graph_step_of_its_own(tmp_path) -> None:
    """Earlier turns move inside the model call: the chat and ReAct graphs have no node for it (a graph step costs
    every run), and the model's graph step both answers and removes what moved."""
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/t.db")
    async with ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as agent:
        assert set(agent.graphs["chat"].nodes) == {"__start__", "model"}
        assert not [node for node in agent.graphs["react"].nodes if node.startswith("TranscriptMiddleware")]
        for turn in range(2):
            assert await agent.achat("u", f"turn {turn}") == f"echo: turn {turn}"
        state = await agent.graphs["chat"].aget_state({"configurable": {"thread_id": "session-u"}})
    assert [m.text for m in state.values["messages"]] == ["turn 1", "echo: turn 1"]


async def test_tool_turns_are_archived_whole(persistent_storage_url: str) -> None:
    script = []
    for turn in range(3):
        script += [call("calculator", {"expression": f"{turn} + 1"}), AIMessage(f"it is {turn + 1}")]
    model = ScriptedChatModel(replies=script)
    settings = make_settings(storage_url=persistent_storage_url)
    async with ProductionAgent(model, settings=settings, agent="react") as agent:
        for turn in range(3):
            assert await agent.achat("u", f"what is {turn} + 1?") == f"it is {turn + 1}"
        history = await agent.aget_history("session-u")
        state = await agent.graphs["react"].aget_state({"configurable": {"thread_id": "session-u"}})
    assert [m.type for m in history] == ["human", "ai", "tool", "ai"] * 3
    assert len(state.values["messages"]) == 4
    assert_every_tool_call_answered(model.prompts[-1])
    assert [m.type for m in model.prompts[-1] if m.type != "system"] == ["human", "ai", "tool", "ai"] * 2 + [
        "human",
        "ai",
        "tool",
    ]


async def test_multi_agent_threads_are_archived_too(tmp_path) -> None:
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/m.db")
    async with ProductionAgent(ScriptedChatModel(echo=True), settings=settings, agent="multi") as agent:
        for turn in range(3):
            await agent.achat("u", f"turn {turn}")
        history = await agent.aget_history("session-u")
        state = await agent.graphs["multi"].aget_state({"configurable": {"thread_id": "session-u"}})
    assert [m.text for m in history if m.type == "human"] == ["turn 0", "turn 1", "turn 2"]
    assert len(history) == 6
    assert [m.type for m in state.values["messages"]] == ["human", "ai"]


async def test_archiving_twice_loses_and_doubles_nothing(tmp_path) -> None:
    """A run that dies after archiving but before its checkpoint: the next run archives the same messages again."""
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/i.db")
    async with ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as agent:
        transcript: Transcript = agent.transcript
        working: list[Any] = [HumanMessage("a", id="h1"), AIMessage("a", id="a1"), HumanMessage("b", id="h2")]
        assert settled(working) == working[:2]
        assert await transcript.append("t", settled(working)) == 2
        assert await transcript.append("t", settled(working)) == 0
        archived = await transcript.messages("t")
        assert [m.id for m in merge_history(archived, working)] == ["h1", "a1", "h2"]
        assert [e.message.id for e in await transcript.tail("t", 1)] == ["a1"]
        await agent.threads.purge(agent._storage.checkpointer, "t")  # type: ignore[union-attr]
        assert await transcript.count("t") == 0


async def test_a_cached_tail_follows_other_processes(persistent_storage_url: str) -> None:
    """Each process keeps threads' tails in memory; what another process archives or deletes still shows."""
    settings = make_settings(storage_url=persistent_storage_url)
    async with (
        ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as one,
        ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as other,
    ):
        here, there = one.transcript, other.transcript
        await here.append("t", [HumanMessage("a", id="h1"), AIMessage("a", id="a1")])
        assert [e.message.id for e in await here.tail("t", 1000)] == ["h1", "a1"]  # now cached here
        await there.append("t", [HumanMessage("b", id="h2"), AIMessage("b", id="a2")])
        assert [e.message.id for e in await here.tail("t", 1000)] == ["h1", "a1", "h2", "a2"]
        await here.append("t", [HumanMessage("c", id="h3")])
        assert [e.message.id for e in await there.tail("t", 1000)] == ["h1", "a1", "h2", "a2", "h3"]

        await other.threads.purge(other._storage.checkpointer, "t")  # type: ignore[union-attr]
        await there.append("t", [HumanMessage("new", id="n1"), AIMessage("new", id="n2")])
        assert [e.message.id for e in await here.tail("t", 1000)] == ["n1", "n2"]
        assert [e.message.id for e in await here.tail("t", 1)] == ["n2"]  # another budget: read again


async def test_a_run_reads_nothing_after_its_own_append(persistent_storage_url: str) -> None:
    """A run's append that finds the cached tail current leaves it current for that run only (nobody else can
    archive into the thread while it runs); any other run checks the table again."""
    settings = make_settings(storage_url=persistent_storage_url)
    async with (
        ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as one,
        ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as other,
    ):
        here, there = one.transcript, other.transcript
        await here.append("t", [HumanMessage("a", id="h1")], run_id="r1")
        await here.tail("t", 1000, run_id="r1")  # cached now
        await here.append("t", [AIMessage("a", id="a1")], run_id="r2")
        reads: list[str] = []
        fetchall = here.db.fetchall

        async def counted(sql: str, params: Any = ()) -> Any:
            reads.append(sql)
            return await fetchall(sql, params)

        here.db.fetchall = counted  # type: ignore[method-assign]
        assert [e.message.id for e in await here.tail("t", 1000, run_id="r2")] == ["h1", "a1"]
        assert reads == []
        await there.append("t", [HumanMessage("b", id="h2")], run_id="r3")  # another process, a later run
        assert [e.message.id for e in await here.tail("t", 1000, run_id="r4")] == ["h1", "a1", "h2"]
        assert len(reads) == 1


async def test_a_failed_run_after_archiving_loses_and_doubles_nothing(persistent_storage_url: str) -> None:
    """The run archives earlier turns, then its model call fails: the next run still sees one copy of each."""
    model = ScriptedChatModel(echo=True)
    settings = make_settings(storage_url=persistent_storage_url, model_max_retries=0)
    async with ProductionAgent(model, settings=settings) as agent:
        await agent.achat("u", "turn 0")
        model.fail = "error"
        with pytest.raises(ModelError):
            await agent.achat("u", "turn 1")
        model.fail = None
        await agent.achat("u", "turn 2")
        history = await agent.aget_history("session-u")
    ids = [m.id for m in history]
    assert len(ids) == len(set(ids))
    texts = [m.text for m in history]
    assert texts[:2] == ["turn 0", "echo: turn 0"] and texts[-2:] == ["turn 2", "echo: turn 2"]
    prompt = [m.text for m in model.prompts[-1] if m.type != "system"]
    assert len(prompt) == len(set(prompt)) and prompt[:2] == ["turn 0", "echo: turn 0"]


async def test_turns_taken_by_turns_in_two_processes_reach_both_prompts(persistent_storage_url: str) -> None:
    """Two processes answer turns of one thread in turn. Each keeps the thread's tail in memory; on PostgreSQL a run
    checks it against where the transcript ended when the run was accepted (its append is held for its outcome),
    so neither prompt misses or repeats a turn the other process answered."""
    models = [ScriptedChatModel(echo=True), ScriptedChatModel(echo=True)]
    settings = make_settings(storage_url=persistent_storage_url, context_budget_tokens=10_000)
    async with (
        ProductionAgent(models[0], settings=settings) as one,
        ProductionAgent(models[1], settings=settings) as other,
    ):
        agents = [one, other, other, one, one, other]
        for turn, agent in enumerate(agents):
            await agent.achat("u", f"turn {turn}")
        history = [m.text for m in await one.aget_history("session-u")]
        assert await one.transcript.count("session-u") == 2 * (len(agents) - 1)
    expected = [text for t in range(len(agents)) for text in (f"turn {t}", f"echo: turn {t}")]
    assert history == expected
    for turn, agent in enumerate(agents):
        model = models[0] if agent is one else models[1]
        prompt = next(p for p in model.prompts if p[-1].text == f"turn {turn}")
        assert [m.text for m in prompt if m.type != "system"] == expected[: 2 * turn + 1]


async def test_a_held_move_skips_what_a_failed_run_moved_already(persistent_storage_url: str) -> None:
    """A failed or cancelled run's move reaches the table while its messages stay in its checkpoint; the next run
    moves them again. A move held for the run's outcome skips them — the whole archived prefix, even when it is
    longer than the cached tail — and keeps the rest in order, with a cached tail or without one."""
    settings = make_settings(storage_url=persistent_storage_url)
    async with ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as agent:
        here, elsewhere = agent.transcript, Transcript(agent.transcript.db)  # elsewhere: another process, no cache
        long = "many words " * 100
        earlier = [HumanMessage(long, id="uT"), AIMessage(long, id="aT")]
        await here.append("t", earlier)
        assert [e.message.id for e in await here.tail("t", 50)] == ["aT"]  # the tail keeps the budget's worth
        moved = [*earlier, HumanMessage("u0", id="u0"), AIMessage("partial", id="p0")]
        for transcript, run_id in ((here, "r1"), (elsewhere, "r2")):
            held = HeldWrites()
            with transcript.turns.open(Turn(run_id, "t", held=held, transcript_end=(2, "aT"))):
                await transcript.append("t", moved)
                assert [e.message.id for e in await transcript.tail("t", 50, run_id=run_id)] == ["aT", "u0", "p0"]
            assert held.statements  # nothing written yet
        await agent.transcript.db.batch(held.take())
        assert [m.id for m in await here.messages("t")] == ["uT", "aT", "u0", "p0"]

        await here.append("t2", [HumanMessage("a", id="a1")])
        assert [e.message.id for e in await here.tail("t2", 50)] == ["a1"]  # cached for one budget
        with here.turns.open(Turn("r3", "t2", held=HeldWrites(), transcript_end=(1, "a1"))):
            await here.append("t2", [AIMessage("b", id="b1")])
            assert [e.message.id for e in await here.tail("t2", 1000, run_id="r3")] == ["a1", "b1"]  # another one


async def test_answers_to_unanswered_tool_calls_are_archived_once_each(tmp_path) -> None:
    """The error answers given to tool calls an earlier run left unanswered have ids of their own (they had none, and
    every thread's second one was dropped as a duplicate); moving the same turn again adds nothing."""
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/d.db")
    async with ProductionAgent(ScriptedChatModel(echo=True), settings=settings) as agent:
        for n in (1, 2):
            call = {"name": "calculator", "args": {}, "id": f"call-{n}"}
            turn: list[Any] = [HumanMessage(f"q{n}", id=f"h{n}"), AIMessage("", id=f"a{n}", tool_calls=[call])]
            assert await agent.transcript.append("t", answer_dangling_tool_calls(turn) or turn) == 3
            assert await agent.transcript.append("t", answer_dangling_tool_calls(turn) or turn) == 0
        archived = await agent.transcript.messages("t")
    assert [m.type for m in archived] == ["human", "ai", "tool", "human", "ai", "tool"]
    assert [m.tool_call_id for m in archived if isinstance(m, ToolMessage)] == ["call-1", "call-2"]


async def _pause_then_approve(
    model: ScriptedChatModel, storage_url: str, agent_name: str, while_waiting: Any = None
) -> tuple[list[Any], str, int]:
    """On a thread of ``agent_name``: "hi", then "add", whose calculator call pauses for approval. While it waits:
    the run is ``waiting``, the earlier turn is in the transcript (its two messages), and ``while_waiting(agent,
    thread)`` runs; then the call is approved. The thread's history, the run's status and the transcript's count."""
    settings = make_settings(storage_url=storage_url, sensitive_tools=["calculator"])
    async with ProductionAgent(model, settings=settings, agent=agent_name) as agent:
        thread = await agent.threads.create("alice", agent_name)
        first = await agent.runs.submit(thread, "hi", user_id="alice", multitask="reject")
        await agent.runs.wait(first.run_id)
        paused = await agent.runs.submit(thread, "add", user_id="alice", multitask="reject")
        await agent.runs.wait(paused.run_id)
        assert (await agent.storage.runs.get(paused.run_id, "alice")).status == "waiting"
        assert await agent.transcript.count(thread.thread_id) == 2
        if while_waiting is not None:
            await while_waiting(agent, thread)
        await agent.runs.resume(paused, {"decisions": [{"type": "approve"}]})
        await agent.runs.wait(paused.run_id)
        status = (await agent.storage.runs.get(paused.run_id, "alice")).status
        return (
            await agent.for_user(thread.owner).threads.messages(thread),
            status,
            await agent.transcript.count(thread.thread_id),
        )


async def test_a_run_paused_for_approval_has_moved_earlier_turns(persistent_storage_url: str) -> None:
    """A run that pauses for a human writes what it held — its checkpoint and its move of earlier turns — before it
    waits: while it waits the thread's history is whole and the earlier turn is in the transcript, once."""
    model = ScriptedChatModel(replies=[AIMessage("hello"), call("calculator", {"expression": "1 + 1"}), "it is 2"])

    async def history_is_whole(agent: Any, thread: Any) -> None:
        assert [m.text for m in await agent.for_user(thread.owner).threads.messages(thread)][:3] == [
            "hi",
            "hello",
            "add",
        ]

    history, _, _ = await _pause_then_approve(model, persistent_storage_url, "react", history_is_whole)
    assert [m.type for m in history] == ["human", "ai", "human", "ai", "tool", "ai"]
    assert history[-1].text == "it is 2"


async def test_a_specialist_paused_for_approval_resumes_with_the_thread_whole(persistent_storage_url: str) -> None:
    """The multi-agent: a specialist's sensitive tool call pauses the run inside a nested graph (its own checkpoint
    namespace). The pause writes what the run held; approved, the run resumes there, the specialist and then the
    supervisor answer, and the thread keeps every message, the earlier turn in the transcript once."""
    model = ScriptedChatModel(
        replies=[
            AIMessage("hello"),  # supervisor, turn 1
            call("transfer_to_math", {"task": "Add 1 and 1."}),  # supervisor
            call("calculator", {"expression": "1 + 1"}),  # math: paused for approval
            "1 + 1 = 2.",  # math
            "It is 2.",  # supervisor
        ]
    )
    history, status, archived = await _pause_then_approve(model, persistent_storage_url, "multi")
    assert status == "succeeded"
    assert archived == 2
    said = [m.text for m in history if isinstance(m, AIMessage) and m.text]
    assert [m.text for m in history if isinstance(m, HumanMessage)] == ["hi", "add"]
    assert said == ["hello", "1 + 1 = 2.", "It is 2."]
    assert any(isinstance(m, ToolMessage) and m.name == "calculator" and m.text == "2" for m in history)
    assert_every_tool_call_answered(history)
