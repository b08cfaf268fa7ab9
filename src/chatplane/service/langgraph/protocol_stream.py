"""``POST /threads/{thread_id}/stream/events``: the thread protocol's event stream (``client.threads.stream``'s SSE
transport) — every run of the thread in turn, as protocol events (``protocol_events``), filtered by the body's
``SubscribeParams`` (``channels``, ``namespaces`` prefixes, ``depth``), for as long as the client listens.

Where it starts: after ``since`` (a seq the client saw: each later event exactly once, from whichever run it is in);
without ``since``, at the start of the thread's newest run — the one a client that just sent ``run.start`` wants to
see from its first event —, or at the thread's first run if it has none yet. A newest run that has ended is given
only if no newer run comes within ``_NEWER_S``: a client that opens its stream and then sends ``run.start`` on a
thread that ran before (``client.threads.stream(thread_id)``) must not take the previous run's end for its own.

A run is followed through its pauses (an interrupt, then the same run resumed by ``input.respond``) to its end;
then the next run of the thread, looked for twice a second. A run's ordinal in the seq is its place among all the
thread's runs in the order they were accepted (``ThreadService.runs_in_order``): it does not move as runs are added,
however long the thread (deleting a run moves the later ones down).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sse_starlette import EventSourceResponse, ServerSentEvent

from chatplane.core import UserServices
from chatplane.events import TERMINAL_EVENTS
from chatplane.service.deps import AgentDep, CurrentUser, SettingsDep
from chatplane.service.langgraph.protocol_events import Event, ProtocolTranslator, seq_of, split_seq
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.storage.runs import Run

router = langgraph_router()

CHANNELS = ("values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks", "custom")
_METHOD_CHANNEL = {"input.requested": "input"}
_POLL_S = 0.5
_NEWER_S = 1.0
_BATCH = 20


class SubscribeBody(BaseModel):
    """``SubscribeParams`` with ``since`` (``EventStreamRequest``)."""

    model_config = ConfigDict(extra="forbid")
    channels: Annotated[list[str], Field(min_length=1, max_length=32)]
    namespaces: Annotated[list[list[str]], Field(max_length=64)] | None = None
    depth: Annotated[int, Field(ge=0)] | None = None
    since: int | None = None

    @field_validator("channels")
    @classmethod
    def _known(cls, channels: list[str]) -> list[str]:
        for channel in channels:
            if channel not in CHANNELS and not (channel.startswith("custom:") and len(channel) > 7):
                raise ValueError(f"unknown channel; the channels are {', '.join(CHANNELS)}, custom:NAME")
        return channels

    def matches(self, event: Event) -> bool:
        method = event["method"]
        channel = _METHOD_CHANNEL.get(method, method)
        if channel == "custom":
            payload = event["params"]["data"].get("payload")
            name = payload.get("name") if isinstance(payload, dict) else None
            if "custom" not in self.channels and f"custom:{name}" not in self.channels:
                return False
        elif channel not in self.channels:
            return False
        return self._in_namespaces(event["params"]["namespace"])

    def _in_namespaces(self, namespace: list[str]) -> bool:
        if not self.namespaces:
            return True
        for prefix in self.namespaces:
            if len(prefix) <= len(namespace) and all(
                p == n or (":" not in p and n.split(":", 1)[0] == p) for p, n in zip(prefix, namespace, strict=False)
            ):
                if self.depth is None or len(namespace) - len(prefix) <= self.depth:
                    return True
        return False


async def thread_events(mine: UserServices, thread_id: str, since: int | None) -> AsyncIterator[Event]:
    """Every protocol event of the thread after ``since`` (see the module), live, run after run."""
    if since is None:
        ordinal, after = await _newest(mine, thread_id), -1
    else:
        ordinal, after = max(split_seq(since + 1)[0], 1), since
    while True:
        runs = await mine.threads.runs_in_order(thread_id, ordinal, _BATCH)
        if not runs:
            await asyncio.sleep(_POLL_S)
            continue
        for run in runs:
            translator = ProtocolTranslator(run.run_id, ordinal, run.agent)
            async for event in _whole_run(mine, run):
                for out in translator.events(event):
                    if out["seq"] > after:
                        yield out
            ordinal += 1


async def start_after(mine: UserServices, thread_id: str, since: int | None) -> int:
    """The seq a stream begins after: ``since``, or the one just before the newest run's first event (see the
    module) — ``thread_events`` from it is the stream without ``since``."""
    if since is not None:
        return since
    return seq_of(await _newest(mine, thread_id), 0, 0) - 1


async def _newest(mine: UserServices, thread_id: str) -> int:
    """Where a stream without ``since`` starts: the newest run's ordinal (see the module)."""
    count = await mine.threads.run_count(thread_id)
    if count == 0:
        return 1
    newest = await mine.threads.runs_in_order(thread_id, count, 1)
    if newest and not newest[0].finished:
        return count
    for _ in range(int(_NEWER_S / 0.1)):
        await asyncio.sleep(0.1)
        if await mine.threads.run_count(thread_id) > count:
            return count + 1
    return count


async def _whole_run(mine: UserServices, run: Run) -> AsyncIterator[Any]:
    """The run's events from its first, through its pauses, to its end."""
    last_id = 0
    async for event in mine.runs.events(run, 0, through_pauses=True):
        if event.id and event.id <= last_id:
            continue  # a finished run's last event, given again
        last_id = event.id or last_id
        yield event
        if event.type in TERMINAL_EVENTS:
            return


@router.post("/threads/{thread_id}/stream/events")
async def stream_events(
    thread_id: str, body: SubscribeBody, agent: AgentDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    """The thread's protocol events as SSE (``id``: the event's seq), filtered by ``body``."""
    mine = agent.for_user(user.id)
    await mine.runs.active_on(thread_id)  # 404 before the stream starts

    async def frames() -> AsyncIterator[ServerSentEvent]:
        async for event in thread_events(mine, thread_id, body.since):
            if body.matches(event):
                yield ServerSentEvent(json.dumps(event, separators=(",", ":")), id=event["event_id"])

    return EventSourceResponse(frames(), ping=settings.sse_ping_s, headers={"Cache-Control": "no-store"})
