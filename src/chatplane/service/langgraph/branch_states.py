"""A messages graph's thread as LangGraph's state history, consistent with its branches (docs/branches.md).

chatplane's checkpoints hold only the current run's working state (earlier turns are in the transcript), so
LangGraph's own checkpoint history says little about a conversation. For a thread of a messages graph the history is
the current branch's *branch points* instead: its start (``turn.0``) and the end of each turn, each a state whose
``values.messages`` is the branch up to there and whose parent is the point before; the newest state is the
thread's latest real checkpoint (its interrupts and ``next`` included), with the whole branch. A run created with
one of these checkpoints starts a new branch there (``Branches.run_from``): with input, an edit; with none, the
turn that followed it again — what LangGraph's clients send to edit a message or regenerate an answer.
"""

from __future__ import annotations

import re
from typing import Any

from chatplane.core import UserServices
from chatplane.errors import InvalidInputError, NoMessagesError, ThreadNotFoundError
from chatplane.runs.jsonable import to_jsonable
from chatplane.service.langgraph.shapes import state_dict
from chatplane.storage.threads import Thread

_CHECKPOINT_KEYS = {"thread_id", "checkpoint_ns", "checkpoint_id", "checkpoint_map"}
_POINT = re.compile(r"^turn\.(\d{1,12})$")


def branch_point(checkpoint_id: str | None) -> int | None:
    """The branch point a checkpoint id names (``turn.N``), or None for any other id."""
    match = _POINT.match(checkpoint_id or "")
    return int(match.group(1)) if match else None


def run_point(checkpoint: Any, checkpoint_id: Any, thread_id: str) -> int | None:
    """The branch point a run was asked to start from (LangGraph's ``checkpoint`` / ``checkpoint_id``), if any."""
    if checkpoint is None and checkpoint_id is None:
        return None
    if checkpoint is not None:
        if not isinstance(checkpoint, dict) or set(checkpoint) - _CHECKPOINT_KEYS:
            raise InvalidInputError("`checkpoint` must be {thread_id, checkpoint_ns, checkpoint_id}.")
        if checkpoint.get("thread_id") not in (None, thread_id):
            raise InvalidInputError("`checkpoint.thread_id` names another thread.")
        checkpoint_id = checkpoint_id or checkpoint.get("checkpoint_id")
    point = branch_point(checkpoint_id if isinstance(checkpoint_id, str) else None)
    if point is None:
        field = "checkpoint" if checkpoint is not None else "checkpoint_id"
        raise InvalidInputError(
            f"`{field}`: a run starts from a branch point of the thread's history (`turn.N`, "
            "POST /threads/{id}/history); chatplane's checkpoints hold only a run's working state."
        )
    return point


def _point_state(thread_id: str, point: int, parent: int | None, messages: list[Any]) -> dict[str, Any]:
    def checkpoint(seq: int) -> dict[str, Any]:
        return {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": f"turn.{seq}", "checkpoint_map": None}

    return {
        "values": {"messages": to_jsonable(messages)},
        "next": [],
        "tasks": [],
        "metadata": {"source": "branch", "step": -1 if point == 0 else point},
        "created_at": None,
        "checkpoint": checkpoint(point),
        "parent_checkpoint": checkpoint(parent) if parent is not None else None,
        "interrupts": [],
        "checkpoint_id": f"turn.{point}",
        "parent_checkpoint_id": f"turn.{parent}" if parent is not None else None,
    }


async def history(mine: UserServices, thread_id: str, *, limit: int, before: str | None) -> list[dict[str, Any]]:
    """The current branch's states, newest first (see the module's docstring)."""
    thread, points = await mine.branches.points(thread_id)
    states: list[dict[str, Any]] = []
    parent: int | None = None
    for seq, messages in points[:-1]:
        states.append(_point_state(thread_id, seq, parent, messages))
        parent = seq
    values, snapshot = await mine.thread_views.states.latest(thread)
    latest = state_dict(snapshot, values)
    latest["parent_checkpoint"] = states[-1]["checkpoint"]
    latest["parent_checkpoint_id"] = states[-1]["checkpoint_id"]
    if latest["checkpoint"] is None:  # a thread with no run yet: its start is all there is
        states[-1]["values"] = latest["values"]
    else:
        states.append(latest)
    states.reverse()
    if before is not None:
        ids = [s["checkpoint_id"] for s in states]
        states = states[ids.index(before) + 1 :] if before in ids else []
    return states[:limit]


async def thread_history(
    mine: UserServices, thread: Thread, *, limit: int, before: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The thread's states, newest first: a messages graph's current branch turn by turn (``history``), another
    graph's LangGraph checkpoints."""
    try:
        return await history(mine, thread.thread_id, limit=limit, before=(before or {}).get("checkpoint_id"))
    except NoMessagesError:
        snapshots = await mine.thread_views.states.history(thread, limit=limit, before=before)
        return [state_dict(s) for s in snapshots]


async def state_at(mine: UserServices, thread_id: str, point: int) -> dict[str, Any]:
    """The state at branch point ``point`` of the current branch (404 if it is not one)."""
    _, points = await mine.branches.points(thread_id)
    parent = None
    for seq, messages in points[:-1]:
        if seq == point:
            return _point_state(thread_id, seq, parent, messages)
        parent = seq
    raise ThreadNotFoundError("The thread has no such checkpoint.")
