"""A thread's settled messages, append-only, in their own table: long threads cost the same per turn as short ones.

LangGraph checkpointers re-serialise a changed channel whole, so a thread that kept every message in its checkpoint
would write its whole history again on every turn. chatplane keeps only the *current run's* messages in the
checkpoint (the working state: what a resume, a cancel or a human-in-the-loop pause needs) and moves everything
before it here, once, at the next run's first model call (``chatplane.agents.context.TranscriptMiddleware``). So a turn
writes its own messages twice (once in its checkpoint, once here on the next turn) whatever the thread's length.

* The model's prompt is the newest archived messages that fit the context budget, then the working state
  (``ContextBudgetMiddleware``): one indexed read of at most the budget per run.
* A thread's history is this table, then whatever of the working state is not in it yet (``merge_history``).
* Moving is idempotent: rows are unique per ``(thread_id, message_id)``, and history skips working-state messages
  already archived, so a run that fails between the two steps loses and doubles nothing.
* With durability ``"exit"`` (and chatplane's savers) a run's turn knows where the thread's transcript ends
  (``TranscriptEnd``, read when the run was accepted, under the thread's lock) and holds the run's append back with
  its checkpoint (``chatplane.storage.unit_of_work``): both commit with the run's outcome, in one transaction and no
  trip of their own, and the cached tail is checked against that end rather than against the table.
* A thread's history is a tree (``chatplane.storage.branches``): every read here follows the thread's current branch,
  and an append continues it. A thread that never branched reads and writes exactly as before.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from langchain_core.messages import AnyMessage, BaseMessage, message_to_dict, messages_from_dict
from langchain_core.messages.utils import count_tokens_approximately

from chatplane.storage import branches
from chatplane.storage.database import Database, Row, Statement
from chatplane.storage.transcript_end import FORKED, NO_TRANSCRIPT, SWITCHED
from chatplane.storage.unit_of_work import OpenTurns, TranscriptEnd

_PAGE = 200
_CACHE_TOKENS = 2_000_000  # all threads' cached tails together (a few tens of MB of message objects)


# A thread's rows when its current branch is all of them, in order (``straight`` = 1: no head set, not a fork); one
# row with ``straight`` = 0 otherwise. The rows still need no ``parent_seq`` (a branch's start) to be the branch.
_STRAIGHT_ROWS = (
    "SELECT b.straight, m.data, m.parent_seq FROM (SELECT CASE WHEN "
    "EXISTS (SELECT 1 FROM chatplane_threads WHERE thread_id = %s AND head IS NOT NULL) OR "
    "EXISTS (SELECT 1 FROM chatplane_fork_refs WHERE thread_id = %s) THEN 0 ELSE 1 END AS straight) b "
    "LEFT JOIN chatplane_messages m ON b.straight = 1 AND m.thread_id = %s ORDER BY m.seq"
)


class Archived(NamedTuple):
    tokens: int  # ``count_tokens_approximately([message])``, counted once, when archived
    message: AnyMessage


@dataclass
class _Tail:
    """A thread's newest archived messages, as this process last read (or wrote) them."""

    last_seq: int
    last_id: str
    tokens_wanted: int  # the budget it is kept for
    entries: deque[Archived] = field(default_factory=deque)
    tokens: int = 0
    written_by: str | None = None  # the run whose append brought it up to date (it needs no re-reading in that run)

    def extend(self, seq: int, message_id: str, new: Sequence[Archived]) -> int:
        """Add the messages archived after the last one (up to ``seq``); drop the oldest beyond the budget.
        How much ``tokens`` changed."""
        before = self.tokens
        self.last_seq, self.last_id = seq, message_id
        self.entries.extend(new)
        self.tokens += sum(e.tokens for e in new)
        while self.entries and self.tokens - self.entries[0].tokens >= self.tokens_wanted:
            self.tokens -= self.entries.popleft().tokens
        return self.tokens - before


class _HeldAppend(NamedTuple):
    """A run's append held back until its outcome commits: the table still ends at ``end`` meanwhile, and a
    ``tail`` of the run that has to load adds these entries to what it loads."""

    run_id: str | None
    end: TranscriptEnd
    entries: list[Archived]


def _encode(message: BaseMessage) -> str:
    return json.dumps(message_to_dict(message), separators=(",", ":"), ensure_ascii=False, default=str)


def _stored_json(data: str) -> Any:
    """A stored message as ``to_jsonable`` makes it (its ``model_dump()``): orjson, or the standard library for
    what only it reads (``NaN``, which ``_encode`` may have written)."""
    try:
        return orjson.loads(data)["data"]
    except orjson.JSONDecodeError:
        return json.loads(data)["data"]


def _decode(rows: Sequence[dict[str, Any]]) -> list[AnyMessage]:
    return list(messages_from_dict([json.loads(row["data"]) for row in rows]))  # type: ignore[arg-type]


def _archived(rows: Sequence[dict[str, Any]]) -> list[Archived]:
    return [Archived(int(row["tokens"]), message) for row, message in zip(rows, _decode(rows), strict=True)]


class Transcript:
    """The ``chatplane_messages`` table: each thread's archived messages in order (``seq``).

    ``tail`` keeps each thread's newest messages in memory (bounded, least recently used first out), so a run reads
    only what was archived since — normally one row, to check that the cache still matches the table: rows never
    change once written, and a thread deleted and created again has other message ids.
    """

    _HELD_APPENDS = 1024

    def __init__(self, db: Database, turns: OpenTurns | None = None) -> None:
        """``turns``: the runs open on their threads (an append of theirs takes part in their unit of work)."""
        self.db = db
        self.turns = turns or OpenTurns()
        self._tails: OrderedDict[str, _Tail] = OrderedDict()
        self._cached_tokens = 0
        self._held: OrderedDict[str, _HeldAppend] = OrderedDict()  # thread id → its run's append, not written yet

    def run_on(self, thread_id: str) -> str | None:
        """The run whose turn is open on ``thread_id`` in this process, if any."""
        turn = self.turns.on(thread_id)
        return turn.run_id if turn is not None else None

    async def append(self, thread_id: str, messages: Sequence[BaseMessage], *, run_id: str | None = None) -> int:
        """Archive ``messages`` after the thread's last one; those archived already are skipped. How many were new.

        Runs of a thread execute one at a time, so two appends to one thread never race; if they did, the second
        would fail on the ``(thread_id, seq)`` key rather than lose a message. For that reason too, a cached tail
        that ``run_id``'s append found current stays current until that run ends: its ``tail`` reads nothing.

        ``run_id``: the run appending (by default the one whose turn is open on the thread). When that turn holds
        its writes, it knows where the transcript ended when the run was accepted, and the append is held with them —
        it commits with the run's checkpoint and outcome, or not at all — and skips the messages the cached tail
        shows archived already (a failed run's append is written with its outcome while its messages stay in the
        checkpoint, for the next run to move again). Written now, it does not wait for the disk while a turn is
        open (the outcome's commit flushes it).
        """
        turn = self.turns.on(thread_id)
        if turn is not None:
            run_id = turn.run_id
        end = turn.transcript_end if turn is not None and turn.held is not None else None
        cached = self._tails.get(thread_id) if end is not None else None
        if cached is not None and (cached.last_seq, cached.last_id) == end:  # current, and stays so for this run
            messages = _after_archived(messages, cached)
            cached.written_by = run_id
        else:
            cached = None
        if not messages:
            return 0
        statement, new = _insert(thread_id, messages)
        if turn is not None and end is not None:
            turn.hold([statement, branches.head_reset(thread_id)] if end[1] == SWITCHED else [statement])
            self._held_append(thread_id, run_id, end, cached, new)
            return len(new)
        rows = (await self.db.batch([statement, branches.head_reset(thread_id)], flush_later=turn is not None))[0][0]
        tail = self._tails.get(thread_id)
        if tail is not None:
            seqs = sorted(int(row["seq"]) for row in rows)
            if len(seqs) == len(new) and tail.last_seq == seqs[0] - 1:  # the cache was current: it stays so
                self._grew(tail.extend(seqs[-1], str(messages[-1].id), new))
                tail.written_by = run_id
            else:
                self._forget(thread_id)
        return len(rows)

    def _held_append(
        self, thread_id: str, run_id: str | None, end: TranscriptEnd, cached: _Tail | None, new: list[Archived]
    ) -> None:
        """Remember an append held for its run's outcome: the cached tail moves on (if it was current), and a
        ``tail`` that must load what the table holds (no current cache, or another budget) adds these."""
        if cached is not None:
            self._grew(cached.extend(end[0] + len(new), str(new[-1].message.id), new))
        else:
            self._forget(thread_id)
        self._held.pop(thread_id, None)
        self._held[thread_id] = _HeldAppend(run_id, end, new)
        while len(self._held) > self._HELD_APPENDS:
            self._held.popitem(last=False)

    async def tail(self, thread_id: str, max_tokens: int, *, run_id: str | None = None) -> list[Archived]:
        """The newest archived messages whose tokens add up to at least ``max_tokens`` (or all), oldest first.

        ``run_id``: the run asking (by default the one whose turn is open on the thread); if its own append brought
        the cached tail up to date, nothing is read. Its held append (not in the table yet) is included."""
        run_id = self.run_on(thread_id) or run_id
        tail = self._tails.get(thread_id)
        held = self._held.pop(thread_id, None)
        if held is not None and held.run_id != run_id:
            held = None  # another run's (it has ended): what it held is written, or was never
        if tail is not None and tail.tokens_wanted == max_tokens and run_id is not None and tail.written_by == run_id:
            self._tails.move_to_end(thread_id)
            return list(tail.entries)
        if held is not None:  # the table ends where it did when the run was accepted; the held messages follow
            self._forget(thread_id)
            loaded = await self._load_tail(thread_id, max_tokens) if held.end != NO_TRANSCRIPT else None
            tail = loaded or _Tail(*NO_TRANSCRIPT, tokens_wanted=max_tokens)
            entries = _after_archived(held.entries, tail)  # the insert skips the others
            if entries:  # numbered as the insert will (a skipped one leaves a gap: the next run reads again)
                tail.extend(tail.last_seq + len(entries), str(entries[-1].message.id), entries)
            tail.written_by = run_id
            self._remember(thread_id, tail)
            return list(tail.entries)
        if tail is not None and tail.tokens_wanted == max_tokens:
            rows = await self.db.fetchall(
                "SELECT seq, message_id, tokens, data, parent_seq, "
                "(SELECT head FROM chatplane_threads WHERE thread_id = %s) AS head "
                "FROM chatplane_messages WHERE thread_id = %s AND seq >= %s ORDER BY seq LIMIT %s",
                (thread_id, thread_id, tail.last_seq, _PAGE),
            )
            if (
                rows
                and int(rows[0]["seq"]) == tail.last_seq
                and rows[0]["message_id"] == tail.last_id
                and rows[0]["head"] is None  # the branch goes on from the cached tail, in a straight line
                and all(row["parent_seq"] is None for row in rows[1:])
            ):
                if len(rows) < _PAGE:
                    if len(rows) > 1:
                        self._grew(tail.extend(int(rows[-1]["seq"]), rows[-1]["message_id"], _archived(rows[1:])))
                    self._tails.move_to_end(thread_id)
                    return list(tail.entries)
        self._forget(thread_id)
        loaded = await self._load_tail(thread_id, max_tokens)
        if loaded is not None:
            self._remember(thread_id, loaded)
            return list(loaded.entries)
        return []

    async def _load_tail(self, thread_id: str, max_tokens: int) -> _Tail | None:
        """The newest messages of the thread's current branch worth ``max_tokens``, span by span, newest first."""
        rows: list[dict[str, Any]] = []
        total = 0
        for span in await branches.path(self.db, thread_id):
            before = span.hi + 1
            while total < max_tokens:
                page = await self.db.fetchall(
                    "SELECT seq, message_id, tokens, data FROM chatplane_messages WHERE thread_id = %s "
                    "AND seq >= %s AND seq < %s ORDER BY seq DESC LIMIT %s",
                    (span.thread_id, span.lo, before, _PAGE),
                )
                for row in page:
                    rows.append({**row, "own": span.thread_id == thread_id})
                    total += int(row["tokens"])
                    if total >= max_tokens:
                        break
                if len(page) < _PAGE:
                    break
                before = page[-1]["seq"]
            if total >= max_tokens:
                break
        if not rows:
            return None
        last = rows[0]
        rows.reverse()
        if last["own"]:
            tail = _Tail(int(last["seq"]), str(last["message_id"]), tokens_wanted=max_tokens)
        else:  # a fork's history, all another thread's: never current for this thread's own rows
            tail = _Tail(0, FORKED, tokens_wanted=max_tokens)
        tail.extend(tail.last_seq, tail.last_id, _archived(rows))
        return tail

    # --- the in-memory tails: bounded by their tokens together ------------------------------------------------------
    def _remember(self, thread_id: str, tail: _Tail) -> None:
        self._tails[thread_id] = tail
        self._grew(tail.tokens)

    def _grew(self, tokens: int) -> None:
        self._cached_tokens += tokens
        self._evict()

    def _forget(self, thread_id: str) -> None:
        tail = self._tails.pop(thread_id, None)
        if tail is not None:
            self._cached_tokens -= tail.tokens

    def _evict(self) -> None:
        while self._cached_tokens > _CACHE_TOKENS and len(self._tails) > 1:
            _, oldest = self._tails.popitem(last=False)
            self._cached_tokens -= oldest.tokens

    async def messages(self, thread_id: str) -> list[AnyMessage]:
        """Every archived message of the thread's current branch, oldest first."""
        return [entry.message for entry in await self.entries(thread_id)]

    async def entries(self, thread_id: str, tip: int | None = None) -> list[Entry]:
        """The archived messages of the thread's current branch (or the one ending at ``tip``), oldest first, with
        where each is stored."""
        out: list[Entry] = []
        for span, rows in await self._branch_rows(thread_id, tip):
            for row, message in zip(rows, _decode(rows), strict=True):
                parent = row["parent_seq"]
                out.append(Entry(span.thread_id, int(row["seq"]), int(parent) if parent is not None else None, message))
        return out

    async def as_json(self, thread_id: str) -> list[dict[str, Any]]:
        """The archived messages of the thread's current branch, oldest first, as JSON: each one's ``model_dump()``
        as stored — what ``to_jsonable`` makes of the message, without building the message (for an API that only
        sends them on: a thread's whole conversation, every turn of the LangGraph API's ``wait``).

        A thread that never branched and was not forked — most — is read in one query: its rows are its branch."""
        rows = await self.db.fetchall(_STRAIGHT_ROWS, (thread_id, thread_id, thread_id))
        if rows and rows[0]["straight"] and all(row["parent_seq"] is None for row in rows):
            return [_stored_json(row["data"]) for row in rows if row["data"] is not None]
        return [_stored_json(row["data"]) for _, rows in await self._branch_rows(thread_id) for row in rows]

    async def _branch_rows(self, thread_id: str, tip: int | None = None) -> list[tuple[branches.Span, list[Row]]]:
        """The rows of the current branch (or the one ending at ``tip``), span by span, oldest first."""
        out = []
        for span in reversed(await branches.path(self.db, thread_id, tip)):
            rows = await self.db.fetchall(
                "SELECT seq, parent_seq, data FROM chatplane_messages WHERE thread_id = %s AND seq BETWEEN %s AND %s "
                "ORDER BY seq",
                (span.thread_id, span.lo, span.hi),
            )
            out.append((span, rows))
        return out

    async def count(self, thread_id: str) -> int:
        """How many archived messages the thread's current branch has."""
        total = 0
        for span in await branches.path(self.db, thread_id):
            row = await self.db.fetchone(
                "SELECT count(*) AS n FROM chatplane_messages WHERE thread_id = %s AND seq BETWEEN %s AND %s",
                (span.thread_id, span.lo, span.hi),
            )
            total += int(row["n"]) if row else 0
        return total

    def forget(self, thread_id: str) -> None:
        """Drop the thread's cached tail (its current branch changed)."""
        self._forget(thread_id)
        self._held.pop(thread_id, None)


class Entry(NamedTuple):
    """An archived message and where it is stored: ``thread_id`` (a fork's history is partly its source's), ``seq``,
    and ``parent_seq`` when it starts a branch."""

    thread_id: str
    seq: int
    parent_seq: int | None
    message: AnyMessage


def _insert(thread_id: str, messages: Sequence[BaseMessage]) -> tuple[Statement, list[Archived]]:
    """The one statement that archives ``messages`` after the thread's last row, skipping those archived already
    (no transaction needed); and the messages as ``Archived``."""
    values: list[str] = []
    params: list[Any] = []
    new: list[Archived] = []
    for n, message in enumerate(messages, 1):
        tokens = count_tokens_approximately([message])
        new.append(Archived(tokens, message))  # type: ignore[arg-type]
        values.append("(%s, %s, %s, %s)")
        params += [n, str(message.id), tokens, _encode(message)]
    # (``WHERE true``: SQLite's grammar needs it between an INSERT's SELECT and its ON CONFLICT.)
    # The first row continues the thread's current branch: its parent is the head, if one is set (a branch switched
    # to); else, like every other row, the row before it (``chatplane.storage.branches``).
    sql = (
        "INSERT INTO chatplane_messages (thread_id, seq, message_id, tokens, data, created_at, parent_seq) "
        "SELECT %s, last.seq + v.column1, v.column2, v.column3, v.column4, %s, "
        "CASE WHEN v.column1 = 1 THEN last.head END "
        "FROM (SELECT coalesce(max(seq), 0) AS seq, (SELECT head FROM chatplane_threads WHERE thread_id = %s) AS head "
        "FROM chatplane_messages WHERE thread_id = %s) AS last, "
        f"(VALUES {', '.join(values)}) AS v WHERE true "
        "ON CONFLICT (thread_id, message_id) DO NOTHING RETURNING seq"
    )
    return (sql, [thread_id, time.time(), thread_id, thread_id, *params]), new


def _after_archived(items: Sequence[Any], tail: _Tail) -> list[Any]:
    """``items`` (messages or ``Archived``) after the last one the tail shows archived already.

    What a run moves that is archived already is always a prefix of it — the messages a failed or cancelled run
    moved while they stayed in its checkpoint — and ends at the table's last row, which the tail always holds.
    Cutting at the last match, rather than dropping each match, keeps the rest in order even when the archived
    prefix is longer than the tail."""
    known = {entry.message.id for entry in tail.entries}
    ids = [item.message.id if isinstance(item, Archived) else item.id for item in items]
    cut = max((i for i, message_id in enumerate(ids) if message_id in known), default=-1)
    return list(items[cut + 1 :])


def merge_history(archived: Sequence[AnyMessage], working: Sequence[AnyMessage]) -> list[AnyMessage]:
    """A thread's whole history: the archive, then the working state's messages that are not archived yet."""
    known = {m.id for m in archived}
    return [*archived, *(m for m in working if m.id not in known)]
