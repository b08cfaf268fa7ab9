"""A user's threads as trees of turns (``Branches``): edit a message, regenerate an answer, switch branch, fork.

The tree lives in the transcript's rows (``chatplane.storage.branches``); this service moves a thread's current
branch and sends the run that starts a new one. Every change of branch first *settles* the thread: the working state
(the last run's messages, still in its checkpoint) is archived on the branch it belongs to and cleared from the
checkpoint, so the next run starts from the new branch's transcript alone and what it sees as context follows it.

Changing branch needs the thread to hold still: a thread with an active run follows the double-texting policy the
caller sends (``reject``: 409; ``interrupt``: the active runs are cancelled first; ``enqueue``: the change waits for
them to end; a run waiting for a human is a 409 all the same). The head is set only while no run is active (checked
in the same statement), so a run accepted meanwhile makes the change a 409 rather than a mixed branch.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from chatplane.agents.limits import answer_dangling_tool_calls
from chatplane.core.run_input import RunInput
from chatplane.core.runs import RunService
from chatplane.core.services import Services
from chatplane.errors import (
    ChatplaneError,
    InvalidInputError,
    MessageNotFoundError,
    NoMessagesError,
    ThreadBusyError,
    ThreadNotFoundError,
)
from chatplane.failures import as_chatplane_error
from chatplane.storage import branches
from chatplane.storage.runs import Multitask, Run
from chatplane.storage.threads import Thread
from chatplane.storage.transcript import Entry

_SETTLE_ATTEMPTS = 5


@dataclass
class Siblings:
    """Where a message stands among the versions that start at the same point: ``index`` of ``count`` (0-based),
    and the first message of each version, oldest first (switch to one with ``Branches.switch``)."""

    index: int
    count: int
    message_ids: list[str]


@dataclass
class BranchMessage:
    message: AnyMessage
    siblings: Siblings | None = None  # only where there is more than one version


@dataclass
class Turn:
    """A user message and what answered it, on the current branch (``index``: 0 is the thread's first turn)."""

    index: int
    messages: list[BranchMessage] = field(default_factory=list)


class Branches:
    """``owner``'s threads as trees: another user's thread is a 404 here."""

    def __init__(self, services: Services, owner: str, runs: RunService) -> None:
        self._services = services
        self._storage = services.storage
        self._runs = runs
        self.owner = owner

    # --- reading ------------------------------------------------------------------------------------------------
    async def current(self, thread_id: str) -> builtins.list[BranchMessage]:
        """The thread's current branch, oldest first, each message with its siblings where it has any."""
        thread = await self._storage.threads.get(thread_id, self.owner)
        graph = await self._graph(thread)
        entries = await self._storage.transcript.entries(thread_id)
        working = await self._working(thread, graph)
        known = {e.message.id for e in entries}
        pending = [m for m in working if m.id not in known]
        tree = await branches.tree(self._storage.db, thread_id)
        out = [BranchMessage(e.message) for e in entries] + [BranchMessage(m) for m in pending]
        for i, entry in enumerate(entries):
            if entry.thread_id != thread_id:
                continue  # a forked thread's history before its own rows: the versions are the source's
            parent = _parent_point(entries, i, thread_id)
            if parent in tree.starts.values():
                out[i].siblings = await self._siblings(thread_id, parent, entry.seq, pending=None)
        if pending:
            point = entries[-1].seq if entries and entries[-1].thread_id == thread_id else 0
            siblings = await self._siblings(thread_id, point, None, pending=str(pending[0].id))
            if siblings.count > 1:
                out[len(entries)].siblings = siblings
        return out

    async def turns(self, thread_id: str) -> builtins.list[Turn]:
        """The current branch as turns (a user message and its answers), oldest first."""
        turns: list[Turn] = []
        for item in await self.current(thread_id):
            if isinstance(item.message, HumanMessage) or not turns:
                turns.append(Turn(len(turns)))
            turns[-1].messages.append(item)
        return turns

    async def _siblings(self, thread_id: str, point: int, seq: int | None, *, pending: str | None) -> Siblings:
        """The versions starting at ``point`` (a row's seq; 0: the thread's start): the rows that name it as their
        parent, the row after it when that one names none, and ``pending`` (the working state's first message, not
        archived yet, continuing the branch from ``point``)."""
        db = self._storage.db
        rows = await db.fetchall(
            "SELECT seq, message_id FROM chatplane_messages WHERE thread_id = %s AND parent_seq = %s ORDER BY seq",
            (thread_id, point),
        )
        following = await db.fetchone(
            "SELECT seq, message_id, parent_seq FROM chatplane_messages WHERE thread_id = %s AND seq > %s "
            "ORDER BY seq LIMIT 1",
            (thread_id, point),
        )
        children = [(int(r["seq"]), str(r["message_id"])) for r in rows]
        if following is not None and following["parent_seq"] is None:
            children.append((int(following["seq"]), str(following["message_id"])))
        children.sort()
        ids = [message_id for _, message_id in children]
        if pending is not None:
            ids.append(pending)
            index = len(ids) - 1
        else:
            index = next((i for i, (s, _) in enumerate(children) if s == seq), 0)
        return Siblings(index=index, count=len(ids), message_ids=ids)

    # --- changing branch ----------------------------------------------------------------------------------------
    async def edit(
        self, thread_id: str, message_id: str, text: str, *, multitask: Multitask = "reject", **send: Any
    ) -> Run:
        """A new branch from just before ``message_id`` (a user message of the current branch) with ``text`` in its
        place, and the run that answers it. The old branch stays, reachable with ``switch``."""
        settled = await self._settled(thread_id, multitask)
        entries = await self._storage.transcript.entries(thread_id)
        i = _index(entries, message_id)
        if not isinstance(entries[i].message, HumanMessage):
            raise InvalidInputError("Only a user message can be edited; regenerate an answer instead.")
        await self._move_head(settled, _fork_point(entries, i, thread_id))
        return await self._runs.send(thread_id, RunInput(message=text), multitask=multitask, **send)

    async def regenerate(self, thread_id: str, message_id: str, *, multitask: Multitask = "reject", **send: Any) -> Run:
        """A new answer to the turn of ``message_id`` (an answer, or the user message it answers) on a new branch: the
        turn's user message sent again from the same point. The other answers stay, reachable with ``switch``."""
        settled = await self._settled(thread_id, multitask)
        entries = await self._storage.transcript.entries(thread_id)
        i = _index(entries, message_id)
        while i >= 0 and not isinstance(entries[i].message, HumanMessage):
            i -= 1
        if i < 0:
            raise InvalidInputError("That message answers no user message: there is nothing to regenerate.")
        text = entries[i].message.text
        await self._move_head(settled, _fork_point(entries, i, thread_id))
        return await self._runs.send(thread_id, RunInput(message=text), multitask=multitask, **send)

    async def switch(self, thread_id: str, message_id: str, *, multitask: Multitask = "reject") -> None:
        """Make the newest branch through ``message_id`` (a message on any branch of the thread) the current one."""
        settled = await self._settled(thread_id, multitask)
        db = self._storage.db
        row = await db.fetchone(
            "SELECT seq FROM chatplane_messages WHERE thread_id = %s AND message_id = %s", (thread_id, message_id)
        )
        if row is None:
            raise MessageNotFoundError()
        seq = int(row["seq"])
        tree = await branches.tree(db, thread_id)
        ends = {tree.last} | {
            int(r["before"])
            for r in await db.fetchall(
                "SELECT (SELECT max(k.seq) FROM chatplane_messages AS k WHERE k.thread_id = s.thread_id "
                "AND k.seq < s.seq) AS before FROM chatplane_messages AS s "
                "WHERE s.thread_id = %s AND s.parent_seq IS NOT NULL",
                (thread_id,),
            )
            if r["before"] is not None
        }
        for tip in sorted(ends, reverse=True):  # each branch's last row: the newest branch through it
            if any(span.lo <= seq <= span.hi for span in tree.spans(tip)):
                await self._move_head(settled, tip, last=tree.last)
                return
        raise MessageNotFoundError()  # pragma: no cover - every row is on the branch ending at its segment's end

    async def fork(self, thread_id: str, message_id: str | None = None, *, title: str | None = None) -> Thread:
        """A new thread of the owner's whose history is ``thread_id``'s current branch up to the end of
        ``message_id``'s turn (or all of it): it refers to those stored messages, it copies none."""
        thread, _ = await self._settled(thread_id, "reject")
        entries = await self._storage.transcript.entries(thread_id)
        if message_id is None:
            end = len(entries) - 1
        else:
            end = _index(entries, message_id)
            while end + 1 < len(entries) and not isinstance(entries[end + 1].message, HumanMessage):
                end += 1
        new = await self._storage.threads.create(
            self.owner, thread.agent, title=title or thread.title, metadata=thread.metadata, model=thread.model
        )
        if end >= 0:
            source = entries[end]
            await self._storage.db.execute(
                "INSERT INTO chatplane_fork_refs (thread_id, fork_of, fork_head) VALUES (%s, %s, %s)",
                (new.thread_id, source.thread_id, source.seq),
            )
        return new

    async def run_from(
        self, thread_id: str, point: int, request: RunInput, *, multitask: Multitask = "reject", **send: Any
    ) -> Run:
        """A run from branch point ``point`` (the seq of a row of the thread, on any branch; 0: its start — what the
        LangGraph API calls running from a checkpoint): with input, a new branch from there that starts with it (an
        edit); with none, the user message that follows it on the current branch again (a regenerate)."""
        settled = await self._settled(thread_id, multitask)
        if point and not await self._storage.db.fetchone(
            "SELECT 1 AS x FROM chatplane_messages WHERE thread_id = %s AND seq = %s", (thread_id, point)
        ):
            raise ThreadNotFoundError("The thread has no such checkpoint.")
        if request.message is None and request.input is None and request.command is None:
            entries = await self._storage.transcript.entries(thread_id)
            own = [i for i, e in enumerate(entries) if e.thread_id == thread_id]
            at = (
                next((i for i in own if entries[i].seq == point), -1)
                if point
                else (own[0] - 1 if own else len(entries) - 1)
            )
            following = entries[at + 1] if at + 1 < len(entries) else None
            if following is None or not isinstance(following.message, HumanMessage):
                raise InvalidInputError(
                    "Running from that checkpoint needs `input`: no user message follows it on the current branch."
                )
            request = RunInput(message=following.message.text)
        await self._move_head(settled, point)
        return await self._runs.send(thread_id, request, multitask=multitask, **send)

    async def points(self, thread_id: str) -> tuple[Thread, builtins.list[tuple[int, builtins.list[AnyMessage]]]]:
        """The thread's current branch as branch points, oldest first: ``(seq, messages up to it)`` at its start
        (seq 0) and at the end of each of its own turns but the last; then ``(-1, every message)``."""
        thread = await self._storage.threads.get(thread_id, self.owner)
        items = await self.current(thread_id)
        entries = await self._storage.transcript.entries(thread_id)
        messages = [item.message for item in items]
        own = [i for i, e in enumerate(entries) if e.thread_id == thread_id]
        first_own = own[0] if own else len(entries)
        out = [(0, messages[:first_own])]
        for i in own:
            ends_turn = i + 1 < len(messages) and isinstance(messages[i + 1], HumanMessage)
            if ends_turn:
                out.append((entries[i].seq, messages[: i + 1]))
        out.append((-1, messages))
        return thread, out

    # --- the steps ----------------------------------------------------------------------------------------------
    async def _graph(self, thread: Thread) -> Any:
        target = await self._services.targets.of(thread.agent, self.owner, model=thread.model)
        if not target.served.has_messages:
            raise NoMessagesError()
        return target.graph

    async def _working(self, thread: Thread, graph: Any) -> builtins.list[AnyMessage]:
        try:
            snapshot = await graph.aget_state(_config(thread.thread_id))
        except ChatplaneError:
            raise
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {thread.thread_id}") from exc
        return list((snapshot.values or {}).get("messages") or [])

    async def _settled(self, thread_id: str, multitask: Multitask) -> tuple[Thread, float]:
        """The owner's thread, with no active run (by ``multitask``) and its working state archived and cleared.
        And when it began: a run accepted from then on, even one that ends before the head moves, makes
        ``_move_head`` a 409."""
        thread = await self._storage.threads.get(thread_id, self.owner)
        since = time.time()
        graph = await self._graph(thread)
        for _ in range(_SETTLE_ATTEMPTS):
            active = await self._storage.runs.active(thread_id)
            if not active:
                break
            if multitask == "reject" or any(run.status == "waiting" for run in active):
                raise ThreadBusyError()
            for run in active:
                if multitask == "interrupt":
                    await self._services.runs.cancel(run)
                await self._services.runs.outcome(run.run_id)
        else:
            raise ThreadBusyError()
        working = await self._working(thread, graph)
        if working:
            try:
                await self._storage.transcript.append(thread_id, answer_dangling_tool_calls(working) or working)
                await graph.aupdate_state(_config(thread_id), {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES)]})
            except ChatplaneError:
                raise
            except Exception as exc:
                raise as_chatplane_error(exc, f"thread {thread_id}") from exc
        return thread, since

    async def _move_head(self, settled: tuple[Thread, float], head: int, *, last: int | None = None) -> None:
        """Make the branch ending at ``head`` current — unless a run became active meanwhile (409)."""
        thread, since = settled
        value = None if last is not None and head == last else head
        changed = await self._storage.db.execute(
            "UPDATE chatplane_threads SET head = %s WHERE thread_id = %s AND owner = %s AND NOT EXISTS "
            "(SELECT 1 FROM chatplane_runs WHERE thread_id = %s AND (status IN ('pending', 'running', 'waiting') "
            "OR created_at >= %s))",
            (value, thread.thread_id, self.owner, thread.thread_id, since),
        )
        self._storage.transcript.forget(thread.thread_id)
        if not changed:
            raise ThreadBusyError()


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


def _index(entries: builtins.list[Entry], message_id: str) -> int:
    for i, entry in enumerate(entries):
        if entry.message.id == message_id:
            return i
    raise MessageNotFoundError("The thread's current branch has no such message.")


def _parent_point(entries: builtins.list[Entry], i: int, thread_id: str) -> int:
    """The seq of the row ``entries[i]`` follows (0: the thread's start)."""
    entry = entries[i]
    if entry.parent_seq is not None:
        return entry.parent_seq
    if i > 0 and entries[i - 1].thread_id == thread_id:
        return entries[i - 1].seq
    return 0


def _fork_point(entries: builtins.list[Entry], i: int, thread_id: str) -> int:
    """Where a new version of ``entries[i]`` starts from: the row before it, in this thread."""
    if entries[i].thread_id != thread_id:
        raise InvalidInputError(
            "That message is in the thread this one was forked from: edit it there, or fork from an earlier point."
        )
    return _parent_point(entries, i, thread_id)
