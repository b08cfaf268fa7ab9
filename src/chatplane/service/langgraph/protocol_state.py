"""The thread protocol's ``state.*`` commands, the root graph's only (another ``namespace``: ``not_supported``):

=========================  ====================================================================================
``state.get``              the thread's latest ``values`` (``keys``: only those) and ``checkpoint`` ``{id}``
``state.listCheckpoints``  the thread's history, newest first, as ``POST /threads/{id}/history`` gives it
                           (``limit``, default 10; ``before`` a checkpoint id): ``{"checkpoints": [{id, step,
                           metadata, timestamp}]}`` — for a messages graph its current branch's points (``turn.N``,
                           no ``timestamp``), then the latest checkpoint
``state.fork``             a run of the thread's graph from ``checkpoint_id`` (``input``, ``config``), as a run
                           created with that ``checkpoint_id``: a messages graph's branch point starts a new branch
                           there (``docs/branches.md``). ``{"run_id", "thread_id"}``, with ``meta``
=========================  ====================================================================================
"""

from __future__ import annotations

from typing import Any

from chatplane.core import UserServices
from chatplane.service.langgraph.branch_states import thread_history
from chatplane.service.langgraph.protocol_runs import Answer, ProtocolError, applied_through, run_body
from chatplane.service.langgraph.runs import start_run

_MAX_LIMIT = 1000


def _root_only(params: dict[str, Any], method: str) -> None:
    if params.get("namespace"):
        raise ProtocolError("not_supported", f"`{method}` reads the root graph's state only (`namespace: []`).")


async def state_get(mine: UserServices, thread_id: str, params: dict[str, Any]) -> Answer:
    _root_only(params, "state.get")
    keys = params.get("keys")
    if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
        raise ProtocolError("invalid_argument", "`keys` must be a list of strings.")
    values, snapshot = await mine.thread_views.states.latest(await mine.threads.get(thread_id))
    result: dict[str, Any] = {"values": {k: v for k, v in values.items() if keys is None or k in keys}}
    checkpoint_id = ((getattr(snapshot, "config", None) or {}).get("configurable") or {}).get("checkpoint_id")
    if checkpoint_id:
        result["checkpoint"] = {"id": checkpoint_id}
    return Answer(result)


async def list_checkpoints(mine: UserServices, thread_id: str, params: dict[str, Any]) -> Answer:
    _root_only(params, "state.listCheckpoints")
    limit, before = params.get("limit", 10), params.get("before")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _MAX_LIMIT:
        raise ProtocolError("invalid_argument", f"`limit` must be an integer from 1 to {_MAX_LIMIT}.")
    if before is not None and not isinstance(before, str):
        raise ProtocolError("invalid_argument", "`before` must be a checkpoint id.")
    thread = await mine.threads.get(thread_id)
    states = await thread_history(mine, thread, limit=limit, before={"checkpoint_id": before} if before else None)
    return Answer({"checkpoints": [_summary(s) for s in states if s.get("checkpoint_id")]})


def _summary(state: dict[str, Any]) -> dict[str, Any]:
    """``CheckpointSummary`` of a ``ThreadState``."""
    metadata = state.get("metadata") or {}
    step = metadata.get("step")
    summary: dict[str, Any] = {"id": state["checkpoint_id"], "step": step if isinstance(step, int) else -1}
    if state.get("created_at"):
        summary["timestamp"] = str(state["created_at"])
    summary["metadata"] = metadata
    return summary


async def fork(mine: UserServices, thread_id: str, params: dict[str, Any]) -> Answer:
    checkpoint_id = params.get("checkpoint_id")
    if not isinstance(checkpoint_id, str) or not checkpoint_id:
        raise ProtocolError("invalid_argument", "`checkpoint_id` is required.")
    thread = await mine.threads.get(thread_id)
    body = run_body(thread.agent, params, input=params.get("input"), checkpoint_id=checkpoint_id)
    run, after = await start_run(mine, thread_id, body)
    return Answer({"run_id": run.run_id, "thread_id": thread_id}, await applied_through(mine, run, after))
