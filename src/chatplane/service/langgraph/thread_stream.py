"""``GET /threads/{thread_id}/stream``: LangGraph's thread stream (``client.threads.join_stream``) — every run of the
thread as it comes, each run's parts in the modes it was started with, then ``metadata`` ``{"status": "run_done"}``.

``stream_mode`` (or ``stream_modes``): ``run_modes`` (the runs' parts, the default), ``lifecycle`` (only each run's
first ``metadata`` and its ``run_done``), ``state_update`` (accepted; chatplane sends no such part: a state update
is not an event here). A run already under way when the client joins is streamed from its start. The stream is
live only: ``Last-Event-ID`` is not taken (the ids are each run's own, ``<run_id>:<part id>``). Between runs the
thread's runs are looked at once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Query, Response

from chatplane.core import UserServices
from chatplane.errors import InvalidInputError
from chatplane.service.deps import AgentDep, CurrentUser, SettingsDep
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.langgraph.runs import own_modes
from chatplane.service.langgraph.stream import Part, PartTranslator, follow, lg_parts, sse_response, stream_modes

router = langgraph_router()

THREAD_MODES = ("run_modes", "lifecycle", "state_update")
_IDLE_POLL_S = 1.0
_RECENT = 100  # runs looked at per look: more than a thread makes in a second


def thread_modes(value: list[str] | None) -> set[str]:
    """``stream_modes`` as the SDK sends it (repeated, or comma-separated), or a 422 naming an unknown one."""
    modes = {m.strip() for v in value or () for m in v.split(",") if m.strip()} or {"run_modes"}
    for mode in modes:
        if mode not in THREAD_MODES:
            raise InvalidInputError(f"`stream_modes` {mode!r} is not one of {', '.join(THREAD_MODES)}.")
    return modes


async def thread_parts(mine: UserServices, thread_id: str, modes: set[str]) -> AsyncIterator[Part]:
    """Each run of the thread in turn — the ones active when the client joined, then every one created since,
    even one that ended between two looks — for as long as the client listens."""
    joined_at = time.time()
    backlog = await mine.runs.active_on(thread_id)
    seen: set[str] = set()
    while True:
        if not backlog:
            recent = await mine.threads.runs(thread_id, limit=_RECENT)  # newest first
            backlog = [r for r in reversed(recent) if r.created_at >= joined_at and r.run_id not in seen]
        if not backlog:
            await asyncio.sleep(_IDLE_POLL_S)
            continue
        run = backlog.pop(0)
        if run.run_id in seen:
            continue
        seen.add(run.run_id)
        translator = PartTranslator(stream_modes(own_modes(run)), run.run_id)
        async for part_id, name, data in lg_parts(follow(mine.runs, run), translator, None):
            if "run_modes" in modes or (name == "metadata" and "lifecycle" in modes):
                yield f"{run.run_id}:{part_id}", name, data
        if modes & {"run_modes", "lifecycle"}:
            yield f"{run.run_id}:done", "metadata", {"status": "run_done", "run_id": run.run_id}


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(
    thread_id: str,
    agent: AgentDep,
    user: CurrentUser,
    settings: SettingsDep,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    stream_modes: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Follow every run of the thread from now on (a run under way: from its start). The modes come as
    ``stream_mode`` (what langgraph-sdk sends) or ``stream_modes`` (what langgraph-api reads)."""
    mine = agent.for_user(user.id)
    modes = thread_modes([*(stream_mode or ()), *(stream_modes or ())])
    await mine.runs.active_on(thread_id)  # 404 before the stream starts
    return sse_response(thread_parts(mine, thread_id, modes), settings.sse_ping_s, {})
