"""LangGraph's stateless runs: ``/runs``, ``/runs/stream``, ``/runs/wait``, ``/runs/batch``.

chatplane's own stateless path (``RunService.stateless``) answers a conversation and nothing else; a graph's
input, command, context and stream modes need a thread. So, as LangGraph does, a stateless run gets a temporary
thread of its owner's, talking to ``assistant_id``, deleted once the run ends or pauses (``on_completion:
delete``, the default) or kept (``keep``: the run's ``thread_id`` is then a thread like any other). A stateless
run cannot be resumed after a pause once its thread is deleted; keep it for that.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import Response

from chatplane.core import UserServices
from chatplane.errors import InvalidInputError
from chatplane.service.deps import AgentDep, RunAllowedUser, SettingsDep
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.langgraph.run_body import LangGraphRunCreate, run_shape
from chatplane.service.langgraph.runs import run_path, run_values, start_run, stream_response
from chatplane.service.langgraph.shapes import ValuesResponse
from chatplane.service.langgraph.stream import follow
from chatplane.storage.runs import Run

router = langgraph_router()
_MAX_BATCH = 100
_cleanups: set[asyncio.Task[None]] = set()
"""Deletions of temporary threads waiting for their run (held so that they are not collected midway)."""


async def _start(mine: UserServices, body: LangGraphRunCreate) -> Run:
    """A temporary thread for ``body``'s run, and the run. ``if_not_exists`` has nothing to say here."""
    body.modes()
    body.run_input()  # refuse what would be refused before a thread is made for it
    thread = await mine.threads.create(agent=body.assistant_id)
    try:
        run, _ = await start_run(mine, thread.thread_id, body)
    except BaseException:
        await mine.threads.delete(thread.thread_id)
        raise
    return run


def _delete_after(mine: UserServices, run: Run, body: LangGraphRunCreate) -> None:
    """Delete the run's thread once it ends or pauses, unless ``on_completion: keep``."""
    if body.on_completion == "keep":
        return

    async def delete() -> None:
        with contextlib.suppress(Exception):
            async for _ in follow(mine.runs, run):
                pass
            await mine.threads.delete(run.thread_id)

    task = asyncio.get_running_loop().create_task(delete())
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)


@router.post("/runs")
async def create_run(
    body: LangGraphRunCreate, agent: AgentDep, user: RunAllowedUser, response: Response
) -> dict[str, Any]:
    mine = agent.for_user(user.id)
    run = await _start(mine, body)
    _delete_after(mine, run, body)
    response.headers["Content-Location"] = run_path(run)
    return run_shape(run, agent.services.catalog)


@router.post("/runs/stream")
async def stream_run(
    body: LangGraphRunCreate, agent: AgentDep, user: RunAllowedUser, settings: SettingsDep
) -> Response:
    mine = agent.for_user(user.id)
    run = await _start(mine, body)
    _delete_after(mine, run, body)
    cancel = body.on_disconnect == "cancel"
    return stream_response(mine, run, body.modes(), settings.sse_ping_s, cancel_on_disconnect=cancel)


@router.post("/runs/wait", response_class=ValuesResponse)
async def wait_run(body: LangGraphRunCreate, agent: AgentDep, user: RunAllowedUser) -> ValuesResponse:
    mine = agent.for_user(user.id)
    run = await _start(mine, body)
    try:
        return ValuesResponse(await run_values(mine, run), headers={"Content-Location": run_path(run)})
    finally:
        if body.on_completion != "keep":
            with contextlib.suppress(Exception):
                await asyncio.shield(mine.threads.delete(run.thread_id))


@router.post("/runs/batch")
async def create_batch(bodies: list[LangGraphRunCreate], agent: AgentDep, user: RunAllowedUser) -> list[dict[str, Any]]:
    """Several stateless runs at once (each as ``POST /runs``); all are checked before any starts."""
    if len(bodies) > _MAX_BATCH:
        raise InvalidInputError(f"A batch takes at most {_MAX_BATCH} runs.")
    for body in bodies:
        body.modes()
        body.run_input()
    mine = agent.for_user(user.id)
    out = []
    for body in bodies:
        run = await _start(mine, body)
        _delete_after(mine, run, body)
        out.append(run_shape(run, agent.services.catalog))
    return out
