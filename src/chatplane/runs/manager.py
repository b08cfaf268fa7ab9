"""Runs in the background, one at a time per thread, with a policy for messages that arrive meanwhile.

A run is accepted (a row, status ``pending``) before anything else happens, then executed by the thread's lane: a
task that drains the thread's queue in arrival order. The run's task is detached from whoever asked for it, so a
client that disconnects does not stop it; clients follow a run through its event log (replay from any id, then
live) and can cancel it, which cancels the task — and with it the model's HTTP stream. What the model had produced
by then is kept in the thread, marked ``cancelled``.

Double-texting, when a message arrives while the thread has an active (running or waiting) run:

* ``reject`` — 409 ``thread_busy``; nothing is stored.
* ``enqueue`` — accepted now, run after the ones before it.
* ``interrupt`` — accepted now; the active run is cancelled (its partial answer kept) and the queue moves on.

This manager coordinates one process. Several processes coordinate through PostgreSQL and Redis instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from chatplane.config import Settings
from chatplane.errors import RunStateError, ThreadBusyError
from chatplane.events import RunEvent
from chatplane.failures import as_chatplane_error
from chatplane.runs.eventlog import MemoryEventLog
from chatplane.runs.store import Multitask, Run, RunStatus, RunStore
from chatplane.runs.translate import StreamTranslator
from chatplane.threads import Thread, ThreadStore

log = logging.getLogger("chatplane.runs")


@dataclass
class _Lane:
    """The runs of one thread in this process."""

    queue: deque[Run] = field(default_factory=deque)
    active: Run | None = None
    task: asyncio.Task[None] | None = None  # the active run's execution
    worker: asyncio.Task[None] | None = None  # drains the queue
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    resume: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)  # decisions for a waiting run

    @property
    def busy(self) -> bool:
        return self.active is not None or bool(self.queue)


class RunManager:
    def __init__(
        self,
        *,
        graphs: Mapping[str, Any],
        runs: RunStore,
        threads: ThreadStore,
        settings: Settings,
        events: MemoryEventLog | None = None,
    ) -> None:
        self.graphs = graphs
        self.runs = runs
        self.threads = threads
        self.settings = settings
        self.events = events or MemoryEventLog()
        self.start_hooks: list[Callable[[Run], Awaitable[None]]] = []
        """Called when a run starts executing (metrics …); failures are logged, not raised."""
        self.finish_hooks: list[Callable[[Run], Awaitable[None]]] = []
        """Called after each run ends (usage accounting, token budgets …); failures are logged, not raised."""
        self.callbacks: list[Any] = []
        """LangChain callback handlers added to every run's config (model/tool timing, tracing …)."""
        self._lanes: dict[str, _Lane] = {}

    # --- accepting work -------------------------------------------------------------------------------------------
    async def submit(
        self, thread: Thread, message: str, *, user_id: str, session_id: str | None = None, multitask: Multitask
    ) -> Run:
        """Accept a user message for ``thread``: a new run, queued behind the thread's active run if any."""
        lane = self._lanes.setdefault(thread.thread_id, _Lane())
        async with lane.lock:
            if lane.busy and multitask == "reject":
                raise ThreadBusyError()
            run_input = {"message": message, "user_id": user_id, "session_id": session_id, "created_at": time.time()}
            run = await self.runs.create(
                thread.thread_id, thread.owner, thread.agent, run_input, multitask, model=self.settings.model
            )
            lane.queue.append(run)
            if multitask == "interrupt":
                self._interrupt_active(lane)
            if lane.worker is None or lane.worker.done():
                lane.worker = asyncio.create_task(self._drain(thread.thread_id, lane), name=f"lane-{thread.thread_id}")
        return run

    @staticmethod
    def _interrupt_active(lane: _Lane) -> None:
        if lane.active is None:
            return
        if lane.active.status == "waiting":  # paused for a human: the lane takes the cancel as its decision
            lane.resume.put_nowait(_CANCEL)
        elif lane.task is not None and not lane.task.done():
            lane.task.cancel()

    async def cancel_thread(self, thread_id: str) -> None:
        """Cancel every run of the thread (before it is reset or deleted)."""
        lane = self._lanes.get(thread_id)
        if lane is None:
            return
        async with lane.lock:
            queued, lane.queue = list(lane.queue), deque()
            for run in queued:
                await self.finish_run(run, "cancelled", {})
                await self.events.append(run.run_id, "run_cancelled", {"status": "cancelled"})
            active = lane.active
            self._interrupt_active(lane)
        if active is not None:
            async for _ in self.events.subscribe(active.run_id, 0, through_pauses=True):
                pass

    async def cancel(self, run: Run) -> Run:
        """Cancel a pending, running or waiting run. Cancelling a finished run changes nothing."""
        lane = self._lanes.get(run.thread_id)
        if lane is None or run.finished:
            return await self.runs.find(run.run_id) or run
        async with lane.lock:
            if run.run_id in {r.run_id for r in lane.queue}:
                lane.queue = deque(r for r in lane.queue if r.run_id != run.run_id)
                await self.finish_run(run, "cancelled", {})
                await self.events.append(run.run_id, "run_cancelled", {"status": "cancelled"})
            elif lane.active is not None and lane.active.run_id == run.run_id:
                self._interrupt_active(lane)
        async for _ in self.events.subscribe(run.run_id, 0, through_pauses=True):
            pass
        return await self.runs.find(run.run_id) or run

    async def resume(self, run: Run, decisions: list[dict[str, Any]]) -> Run:
        """Answer a run that waits for a human (approve / edit / reject each pending tool call)."""
        lane = self._lanes.get(run.thread_id)
        current = await self.runs.find(run.run_id)
        if lane is None or current is None or current.status != "waiting" or lane.active is None:
            raise RunStateError("Only a run that is waiting for approval can be resumed.")
        await self.events.append(run.run_id, "run_resumed", {"decisions": decisions})
        lane.resume.put_nowait({"decisions": decisions})
        return current

    # --- following work -------------------------------------------------------------------------------------------
    def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[RunEvent]:
        return self.events.subscribe(run_id, after)

    async def wait(self, run_id: str) -> None:
        """Until the run has finished or waits for a human."""
        await self.outcome(run_id)

    async def outcome(self, run_id: str) -> tuple[RunEvent | None, dict[str, Any] | None]:
        """Wait until the run finishes or pauses: its last event, and its answer (the newest complete assistant
        message without tool calls, as a wire ``Message`` dict) if it gave one."""
        last: RunEvent | None = None
        answer: dict[str, Any] | None = None
        async for event in self.events.subscribe(run_id, 0):
            last = event
            if event.type == "message":
                message = event.data["message"]
                if message["role"] == "assistant" and not message["tool_calls"] and message["content"]:
                    answer = message
        return last, answer

    def active_runs(self) -> int:
        return sum(1 for lane in self._lanes.values() if lane.active is not None)

    async def aclose(self) -> None:
        """Cancel everything still running (their partial answers are kept)."""
        workers = [lane.worker for lane in self._lanes.values() if lane.worker is not None]
        for lane in self._lanes.values():
            lane.queue.clear()
            if lane.task is not None:
                lane.task.cancel()
            lane.resume.put_nowait(_CANCEL)
        if workers:
            await asyncio.wait(workers, timeout=10)

    # --- doing work -----------------------------------------------------------------------------------------------
    async def _drain(self, thread_id: str, lane: _Lane) -> None:
        while True:
            async with lane.lock:
                if not lane.queue:
                    lane.worker = None
                    if self._lanes.get(thread_id) is lane and not lane.busy:
                        del self._lanes[thread_id]
                    return
                run = lane.active = lane.queue.popleft()
            try:
                graph_input: Any = _graph_input(run)
                while True:
                    lane.task = asyncio.create_task(self._execute(run, graph_input), name=f"run-{run.run_id}")
                    await asyncio.wait([lane.task])
                    if run.status != "waiting":
                        break
                    decision = await lane.resume.get()
                    if decision is _CANCEL:
                        await self.finish_run(run, "cancelled", run.usage)
                        await self.events.append(run.run_id, "run_cancelled", {"status": "cancelled"})
                        break
                    graph_input = Command(resume=decision)
            finally:
                lane.active = lane.task = None

    def _config(self, run: Run) -> RunnableConfig:
        return {
            "configurable": {"thread_id": run.thread_id},
            "recursion_limit": self.settings.recursion_limit,
            "metadata": {"run_id": run.run_id, "thread_id": run.thread_id, "agent": run.agent, "owner": run.owner},
            "callbacks": list(self.callbacks),
        }

    async def _execute(self, run: Run, graph_input: Any) -> None:
        graph = self.graphs[run.agent]
        config = self._config(run)
        translator = StreamTranslator()
        translator.usage.update({k: v for k, v in run.usage.items() if k in translator.usage})
        try:
            if run.status == "pending":
                await self.runs.mark_running(run)
                await self._call_hooks(self.start_hooks, run)
                await self.events.append(run.run_id, "run_started", {"thread_id": run.thread_id, "agent": run.agent})
            else:
                await self.runs.mark_running(run)
            async for part in graph.astream(
                graph_input, config, stream_mode=["messages", "updates"], subgraphs=True, version="v2"
            ):
                for kind, data in translator.feed(part):
                    await self.events.append(run.run_id, kind, data)
            if translator.interrupts:
                await self.runs.mark_waiting(run, translator.usage)
                requests = [{"id": i.id, "value": i.value} for i in translator.interrupts]
                await self.events.append(run.run_id, "interrupt", {"requests": requests})
                return
            await self.finish_run(run, "succeeded", translator.usage)
            await self.events.append(run.run_id, "run_completed", {"status": "succeeded", "usage": translator.usage})
        except asyncio.CancelledError:
            await asyncio.shield(self._record_cancel(run, graph, config, translator))
        except Exception as exc:
            error = as_chatplane_error(exc, f"run {run.run_id}")
            await asyncio.shield(self._record_failure(run, translator, error.code, error.message))
        finally:
            try:
                await self.threads.touch(run.thread_id)
            except Exception as exc:
                as_chatplane_error(exc, f"run {run.run_id} (touching its thread)")

    async def finish_run(
        self, run: Run, status: RunStatus, usage: dict[str, int], error_code: str | None = None
    ) -> None:
        """Record the outcome, then tell the hooks — before the terminal event, so that whoever waited for the
        run sees its effects (token budgets, usage) in place."""
        await self.runs.finish(run, status, usage, error_code)
        await self._call_hooks(self.finish_hooks, run)

    @staticmethod
    async def _call_hooks(hooks: list[Callable[[Run], Awaitable[None]]], run: Run) -> None:
        for hook in hooks:
            try:
                await hook(run)
            except Exception as exc:
                as_chatplane_error(exc, f"run {run.run_id} (hook)")

    async def _record_failure(self, run: Run, translator: StreamTranslator, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.finish_run(run, "failed", translator.usage, code)
        await self.events.append(
            run.run_id, "run_failed", {"status": "failed", "error": {"code": code, "message": message}}
        )

    async def _record_cancel(self, run: Run, graph: Any, config: RunnableConfig, translator: StreamTranslator) -> None:
        partial = translator.partial
        if partial is not None and partial.text:
            kept = AIMessage(
                content=partial.text,
                id=partial.message_id,
                name=partial.agent,
                response_metadata={"status": "cancelled", "created_at": time.time()},
            )
            as_node = partial.namespace[0].split(":")[0] if partial.namespace else partial.node
            try:
                await graph.aupdate_state(config, {"messages": [kept]}, as_node=as_node)
            except Exception as exc:
                as_chatplane_error(exc, f"run {run.run_id} (keeping the partial answer)")
        with contextlib.suppress(Exception):
            await self.finish_run(run, "cancelled", translator.usage)
        await self.events.append(run.run_id, "run_cancelled", {"status": "cancelled"})


_CANCEL = object()


def _graph_input(run: Run) -> dict[str, Any]:
    data = run.input
    message = HumanMessage(data["message"], response_metadata={"created_at": data.get("created_at")})
    graph_input: dict[str, Any] = {"messages": [message]}
    if data.get("user_id"):
        graph_input["user_id"] = data["user_id"]
    if data.get("session_id"):
        graph_input["session_id"] = data["session_id"]
    return graph_input
