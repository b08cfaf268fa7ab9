"""A thread's history as a tree of turns, kept in the transcript's own rows (see docs/branches.md).

The transcript (``chatplane.storage.transcript``) stays one append-only sequence per thread, numbered by ``seq``.
Each row's parent is the row before it (``parent_seq`` NULL) — except the first row of a branch, which names its
parent (``parent_seq``; 0 is the thread's start). A thread's *current branch* is the path from its head back to the
start: ``chatplane_threads.head`` (NULL: the thread's last row). A thread forked from another
(``chatplane_fork_refs``: ``fork_of``, ``fork_head``) goes on, past its start, into the other thread's tree at
``fork_head``: its stored rows are shared, not copied. The reference outlives a deleted source's registry row, and
the source's rows stay while a fork can reach them (``release``).

So a branch costs one integer on its first row; a turn on a branch writes what a turn writes on a thread without
branches; and reading a branch's messages is the same ordered read restricted to a few ``seq`` ranges.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatplane.storage.database import Database, Statement

_MAX_FORK_DEPTH = 64  # forks of forks followed at most this deep (a thread's path never loops: each fork is older)


@dataclass(frozen=True)
class Span:
    """Rows ``lo`` to ``hi`` (inclusive) of ``thread_id``'s transcript, all on one path."""

    thread_id: str
    lo: int
    hi: int


@dataclass
class Tree:
    """One thread's branch structure: what ``parent_seq`` and the thread's head say (a few rows per branch)."""

    thread_id: str
    head: int | None  # None: the last row
    last: int  # the thread's last row (0: none)
    fork_of: str | None
    fork_head: int | None
    starts: dict[int, int] = field(default_factory=dict)  # seq of a branch's first row → its parent's seq
    _sorted: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sorted = sorted(self.starts)

    @property
    def tip(self) -> int:
        """Where the current branch ends."""
        return self.last if self.head is None else self.head

    @property
    def branched(self) -> bool:
        return bool(self.starts) or self.head is not None or self.fork_of is not None

    def spans(self, tip: int) -> list[Span]:
        """The path from ``tip`` back to this thread's start, newest span first."""
        out: list[Span] = []
        hi = tip
        while hi > 0:
            i = bisect.bisect_right(self._sorted, hi) - 1
            if i < 0:
                out.append(Span(self.thread_id, 1, hi))
                break
            start = self._sorted[i]
            out.append(Span(self.thread_id, start, hi))
            hi = self.starts[start]
        return out


def head_reset(thread_id: str) -> Statement:
    """After an append: the thread's head is its last row again (a no-op unless a branch was just switched to)."""
    return "UPDATE chatplane_threads SET head = NULL WHERE thread_id = %s AND head IS NOT NULL", (thread_id,)


async def tree(db: Database, thread_id: str) -> Tree:
    """``thread_id``'s branch structure (two indexed reads; a thread deleted but still forked from has no head)."""
    row = await db.fetchone(
        "SELECT (SELECT head FROM chatplane_threads WHERE thread_id = %s) AS head, "
        "(SELECT max(seq) FROM chatplane_messages WHERE thread_id = %s) AS last, "
        "(SELECT fork_of FROM chatplane_fork_refs WHERE thread_id = %s) AS fork_of, "
        "(SELECT fork_head FROM chatplane_fork_refs WHERE thread_id = %s) AS fork_head",
        (thread_id,) * 4,
    )
    starts = await db.fetchall(
        "SELECT seq, parent_seq FROM chatplane_messages WHERE thread_id = %s AND parent_seq IS NOT NULL",
        (thread_id,),
    )
    assert row is not None
    head, fork_head = row["head"], row["fork_head"]
    return Tree(
        thread_id,
        head=int(head) if head is not None else None,
        last=int(row["last"] or 0),
        fork_of=row["fork_of"],
        fork_head=int(fork_head) if fork_head is not None else None,
        starts={int(r["seq"]): int(r["parent_seq"]) for r in starts},
    )


async def path(db: Database, thread_id: str, tip: int | None = None) -> list[Span]:
    """The spans of ``thread_id``'s current branch (or the one ending at ``tip``), newest first, into the threads it
    was forked from."""
    out: list[Span] = []
    current: Tree | None = await tree(db, thread_id)
    end = tip
    for _ in range(_MAX_FORK_DEPTH):
        assert current is not None
        out += current.spans(current.tip if end is None else end)
        if current.fork_of is None or current.fork_head is None:
            break
        end = current.fork_head
        current = await tree(db, current.fork_of)
    return out


def span_filter(spans: Sequence[Span]) -> tuple[str, list[object]]:
    """A WHERE clause (and its parameters) selecting the rows of ``spans``."""
    if not spans:
        return "false", []
    parts, params = [], []
    for span in spans:
        parts.append("(thread_id = %s AND seq BETWEEN %s AND %s)")
        params += [span.thread_id, span.lo, span.hi]
    return "(" + " OR ".join(parts) + ")", params


async def copy_branches(db: Database, source: str, target: str) -> None:
    """``target`` (a copy of ``source``'s rows) on the same branch, forked from the same thread, as ``source``."""
    await db.execute(
        "UPDATE chatplane_threads SET head = (SELECT head FROM chatplane_threads WHERE thread_id = %s) "
        "WHERE thread_id = %s",
        (source, target),
    )
    await db.execute(
        "INSERT INTO chatplane_fork_refs (thread_id, fork_of, fork_head) SELECT %s, fork_of, fork_head "
        "FROM chatplane_fork_refs WHERE thread_id = %s",
        (target, source),
    )


async def release(db: Database, thread_id: str) -> None:
    """Delete ``thread_id``'s transcript once nothing can reach it: its registry row is gone and no thread is forked
    from it; then the same for the thread it was forked from (pass the thread being deleted, after its row is)."""
    for _ in range(_MAX_FORK_DEPTH):
        if await db.fetchone("SELECT 1 AS x FROM chatplane_threads WHERE thread_id = %s", (thread_id,)):
            return
        if await db.fetchone("SELECT 1 AS x FROM chatplane_fork_refs WHERE fork_of = %s", (thread_id,)):
            return  # still reachable from a fork (a deleted fork's reference goes with its rows, below)
        source = await db.fetchone("SELECT fork_of FROM chatplane_fork_refs WHERE thread_id = %s", (thread_id,))
        await db.execute("DELETE FROM chatplane_messages WHERE thread_id = %s", (thread_id,))
        await db.execute("DELETE FROM chatplane_fork_refs WHERE thread_id = %s", (thread_id,))
        if source is None:
            return
        thread_id = str(source["fork_of"])
