"""Executing runs in this process: each in a task detached from the request, inside its unit of work.

A run's task streams its graph's events into the run's event log, then records the outcome (``TurnStore.finish``)
and tells the hooks — before the terminal event, so that whoever waited for the run sees its effects in place.
Cancelling the task cancels the model's HTTP stream; what the model had produced is kept in the thread, marked
``cancelled``. A run cancelled for a shutdown (``hand_back``) is left as it is, for another process to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from chatplane.agents.inputs import message_channels
from chatplane.agents.registry import RunTarget
from chatplane.agents.run_config import merge_configs
from chatplane.config import Settings
from chatplane.errors import RunLimitError
from chatplane.events import EventType
from chatplane.failures import as_chatplane_error
from chatplane.runs.events import EventLog
from chatplane.runs.finals import FinalValues, RecentFinals, state_values
from chatplane.runs.jsonable import to_jsonable
from chatplane.runs.translate import StreamTranslator
from chatplane.storage.runs import Run, RunStatus
from chatplane.storage.turns import TurnStore
from chatplane.storage.unit_of_work import Turn

Hook = Callable[[Run], Awaitable[None]]
AfterRun = Callable[[Run, "list[Run] | None"], Awaitable[None]]
"""Called once a run's task is done with it: the thread's runs still active as its outcome was recorded (None
if that could not be recorded, or the run paused)."""


@dataclass
class RunHooks:
    """What observes runs: ``started`` when a run starts executing (metrics …), ``finished`` after each run ends
    (usage, token budgets …) — failures are logged, not raised — and LangChain ``callbacks`` added to every run's
    config (model/tool timing, tracing …)."""

    started: list[Hook] = field(default_factory=list)
    finished: list[Hook] = field(default_factory=list)
    callbacks: list[Any] = field(default_factory=list)

    @staticmethod
    async def call(hooks: list[Hook], run: Run) -> None:
        for hook in hooks:
            try:
                await hook(run)
            except Exception as exc:
                as_chatplane_error(exc, f"run {run.run_id} (hook)")


def message_id(run: Run) -> str:
    return f"msg-{run.run_id}"


def graph_input(run: Run) -> Any:
    """What a run feeds the graph: its ``command`` (resume, update, goto), its ``input`` as given, or its user
    message (with a stable id, to tell later whether it was stored) — or nothing for a retry, which continues the
    thread from its last checkpoint."""
    data = run.input
    if "command" in data:
        command = data["command"]
        return Command(resume=command.get("resume"), update=command.get("update"), goto=command.get("goto") or ())
    if "input" in data:
        return data["input"]
    if "message" not in data:
        return None
    message = HumanMessage(
        data["message"], id=message_id(run), response_metadata={"created_at": data.get("created_at")}
    )
    result: dict[str, Any] = {"messages": [message]}
    if data.get("user_id"):
        result["user_id"] = data["user_id"]
    if data.get("session_id"):
        result["session_id"] = data["session_id"]
    return result


def _final_values(turn: Turn, target: RunTarget) -> FinalValues | None:
    values = state_values(turn.last_values, target.graph)
    return FinalValues(values, target.served.has_messages) if values is not None else None


class Executor:
    """The runs executing in this process (``tasks``), and how each one executes."""

    def __init__(
        self,
        *,
        turns: TurnStore,
        events: EventLog,
        settings: Settings,
        hooks: RunHooks,
        graph_for: Callable[[Run], Awaitable[RunTarget]],
        after_run: AfterRun,
    ) -> None:
        self.turns = turns
        self.events = events
        self.settings = settings
        self.hooks = hooks
        self.graph_for = graph_for
        self._after_run = after_run
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.handing_back: set[str] = set()  # runs cancelled for shutdown: another process resumes them
        self.stopping: set[str] = set()  # runs whose cancel reached them: closing the graph, recording the cancel
        self.rolling_back: set[str] = set()  # runs cancelled to be undone (LangGraph's ``rollback``)
        self.finals = RecentFinals()  # the values the runs that succeeded here ended with

    def executing(self) -> list[str]:
        return [run_id for run_id, task in self.tasks.items() if not task.done()]

    def launch(self, run: Run, graph_input: Any, *, turn: Turn | None = None, fresh: bool = True) -> None:
        """Execute ``run`` here, in ``turn`` (by default one with nothing read ahead); ``fresh`` for a run that
        starts now (not resumed after approval or recovery)."""
        turn = turn or self.turns.resumed(run)
        task = asyncio.create_task(self._execute(run, graph_input, turn, fresh), name=f"run-{run.run_id}")
        self.tasks[run.run_id] = task
        task.add_done_callback(lambda done: self._forget_task(run.run_id, done))

    def _forget_task(self, run_id: str, task: asyncio.Task[None]) -> None:
        """Forget ``task`` — unless the run was launched again meanwhile (resumed after approval while its earlier
        task was still wrapping up): the newer task stays known, so the heartbeat keeps renewing its lease."""
        if self.tasks.get(run_id) is task:
            del self.tasks[run_id]
            self.stopping.discard(run_id)
            self.rolling_back.discard(run_id)

    def cancel_here(self, run_id: str, *, unless_stopping: bool = False, roll_back: bool = False) -> bool:
        """Cancel the run's task if it executes here; False if it does not. ``unless_stopping``: not again once
        the cancel has reached the run (a second one would cut short its closing of the graph or its recording of
        the cancel). ``roll_back``: and undo it — nothing it did stays in its thread, and its record goes."""
        task = self.tasks.get(run_id)
        if task is None or task.done():
            return False
        if roll_back:
            self.rolling_back.add(run_id)
        if not (unless_stopping and run_id in self.stopping):
            task.cancel()
        return True

    async def hand_back(self, run_ids: list[str]) -> None:
        """Cancel these runs for a shutdown, leaving them for another process (``Leases.release``)."""
        self.handing_back.update(run_ids)
        tasks = [self.tasks[run_id] for run_id in run_ids if run_id in self.tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def config(self, run: Run, target: RunTarget) -> RunnableConfig:
        """The run's LangGraph config: the assistant's, then the run's own (both checked), then the server's keys
        (thread, run, graph, assistant, user), which nobody else can set."""
        merged = merge_configs(target.config, run.input.get("config") or {})
        configurable = {
            **merged.get("configurable", {}),
            "thread_id": run.thread_id,
            "run_id": run.run_id,
            "graph_id": target.graph_id,
            "assistant_id": target.assistant_id,
            "user_id": run.owner,
        }
        metadata = {
            **merged.get("metadata", {}),
            "run_id": run.run_id,
            "thread_id": run.thread_id,
            "agent": run.agent,
            "owner": run.owner,
        }
        config: RunnableConfig = {
            "configurable": configurable,
            "recursion_limit": merged.get("recursion_limit", self.settings.recursion_limit),
            "metadata": metadata,
            "callbacks": list(self.hooks.callbacks),
        }
        if merged.get("tags"):
            config["tags"] = merged["tags"]
        return config

    async def _execute(self, run: Run, input_: Any, turn: Turn, fresh: bool) -> None:
        translator = StreamTranslator()
        translator.usage.update({k: v for k, v in run.usage.items() if k in translator.usage})
        next_up: list[Run] | None = None  # the thread's active runs, read as the outcome was recorded
        target: RunTarget | None = None
        try:
            target = await self.graph_for(run)
            run.model = target.model or run.model  # what its usage counts under (recorded with its outcome)
            config = self.config(run, target)
            if fresh:
                await self._started(run)
            await self._stream(run, target, input_, config, translator, turn)
            if translator.interrupts:
                await self.turns.write_held(turn)
                await self.turns.runs.mark_waiting(run, translator.usage)
                requests = [{"id": i.id, "value": to_jsonable(i.value)} for i in translator.interrupts]
                await self.events.append(run.run_id, "interrupt", {"requests": requests})
                return
            final = _final_values(turn, target)
            next_up = await asyncio.shield(self._commit_success(run, translator.usage, turn, final))
        except asyncio.CancelledError:
            if run.run_id in self.handing_back:
                raise  # shutting down: the run goes back to the queue as it is
            if run.run_id in self.rolling_back:
                next_up = await asyncio.shield(self._record_rollback(run, translator))
            else:
                next_up = await asyncio.shield(self._record_cancel(run, target, translator, turn))
        except Exception as exc:
            error = as_chatplane_error(exc, f"run {run.run_id}")
            next_up = await asyncio.shield(self._record_failure(run, translator, error.code, error.message, turn))
        finally:
            if run.run_id not in self.handing_back:
                await self._after_run(run, next_up)

    async def _started(self, run: Run) -> None:
        await self.hooks.call(self.hooks.started, run)
        started: dict[str, Any] = {"thread_id": run.thread_id, "agent": run.agent}
        if "message" in run.input:  # the thread shows it only once the run ends (one checkpoint per run)
            started["message"] = {"id": message_id(run), "role": "user", "content": run.input["message"]}
        await self.events.append(run.run_id, "run_started", started)

    async def _stream(
        self, run: Run, target: RunTarget, input_: Any, config: RunnableConfig, translator: StreamTranslator, turn: Turn
    ) -> None:
        """The graph's events into the run's log, inside the run's unit of work. The graph is closed here, whatever
        ends the loop: a cancel that lands while an event is being appended (Redis) still lets LangGraph write where
        the run stopped — held, for the outcome — before the cancel is recorded, rather than when the abandoned
        generator is collected, in some other context."""
        durability = run.input.get("durability") or target.served.durability
        if durability != "exit":
            turn.write_through()  # a checkpoint per step, committed as it comes
        options: dict[str, Any] = {"durability": durability}
        for breakpoint in ("interrupt_before", "interrupt_after"):
            if run.input.get(breakpoint):
                options[breakpoint] = run.input[breakpoint]
        if target.context is not None:
            options["context"] = target.context
        events = translator.run(
            target.graph,
            input_,
            config,
            tokens=run.input.get("stream_tokens", True),
            nested=target.served.nested,
            modes=run.input.get("stream_mode") or (),
            subgraphs=bool(run.input.get("stream_subgraphs")),
            **options,
        )
        deadline = asyncio.timeout(self.settings.run_timeout_s)
        with self.turns.running(turn):
            async with contextlib.aclosing(events):
                try:
                    async with deadline:
                        async for kind, data in events:
                            await self.events.append(run.run_id, kind, data)
                except asyncio.CancelledError:
                    self.stopping.add(run.run_id)  # before the graph is closed
                    raise
                except TimeoutError:
                    if not deadline.expired():
                        raise  # a timeout inside the graph (a tool's, a service's): the graph's own error
                    limit = self.settings.run_timeout_s
                    raise RunLimitError(f"The run took longer than {limit:g} s (CHATPLANE_RUN_TIMEOUT_S).") from None

    async def finish(
        self,
        run: Run,
        status: RunStatus,
        usage: dict[str, int],
        error_code: str | None = None,
        *,
        turn: Turn | None = None,
    ) -> list[Run]:
        """Record the outcome (``TurnStore.finish``), then tell the hooks — before the terminal event, so that
        whoever waited for the run sees its effects (token budgets, usage) in place. The thread's runs still
        active, oldest first."""
        active = await self.turns.finish(run, status, usage, error_code, turn=turn)
        await self.hooks.call(self.hooks.finished, run)
        return active

    async def after_finish(self, run: Run, kind: EventType, data: dict[str, Any]) -> None:
        """For a run whose outcome was recorded elsewhere: the hooks, then its terminal event."""
        await self.hooks.call(self.hooks.finished, run)
        await self.events.append(run.run_id, kind, data)

    async def _commit_success(
        self, run: Run, usage: dict[str, int], turn: Turn, final: FinalValues | None = None
    ) -> list[Run] | None:
        """Record a finished run's success with what it wrote, in one transaction (``finish``), then tell its
        followers. One truth per turn: should the commit fail — the database gone as the outcome was committed,
        perhaps after the commit landed — the same commit is made again, for up to three storage timeouts: it is
        idempotent (the savers' and the transcript's writes are upserts, the outcome an update). It never falls back
        on recording a failure with the run's writes, which would leave an answer in the thread of a run that says
        it gave none. If the database stays away, nothing is recorded and no outcome is told: the run stays
        ``running``, its lease lapses, and recovery settles it — from the run's own checkpoint if the commit
        landed, by running the turn again if it did not — and its followers hear that outcome."""
        delay, deadline = 0.25, time.monotonic() + self.settings.storage_timeout_s * 3
        while True:
            try:
                next_up = await self.finish(run, "succeeded", usage, turn=turn)
                break
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    as_chatplane_error(exc, f"run {run.run_id} (its success not recorded: left for recovery)")
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        if final is not None:  # committed: its waiters may answer with it (before they hear the run ended)
            self.finals.keep(run.run_id, final)
        await self.events.append(run.run_id, "run_completed", {"status": "succeeded", "usage": usage})
        return next_up

    async def _record_failure(
        self, run: Run, translator: StreamTranslator, code: str, message: str, turn: Turn | None = None
    ) -> list[Run] | None:
        next_up = None
        with contextlib.suppress(Exception):
            next_up = await self.finish(run, "failed", translator.usage, code, turn=turn)
        await self.events.append(
            run.run_id, "run_failed", {"status": "failed", "error": {"code": code, "message": message}}
        )
        return next_up

    async def _record_cancel(
        self, run: Run, target: RunTarget | None, translator: StreamTranslator, turn: Turn
    ) -> list[Run] | None:
        with contextlib.suppress(Exception):
            await self.turns.write_held(turn)  # where the run stopped, before the partial answer joins it
        partial = translator.partial
        if target is not None and partial is not None and partial.text and message_channels(target.graph):
            kept = AIMessage(
                content=partial.text,
                id=partial.message_id,
                name=partial.agent,
                response_metadata={"status": "cancelled", "created_at": time.time()},
            )
            as_node = partial.namespace[0].split(":")[0] if partial.namespace else partial.node
            try:
                await target.graph.aupdate_state(self.config(run, target), {"messages": [kept]}, as_node=as_node)
            except Exception as exc:
                as_chatplane_error(exc, f"run {run.run_id} (keeping the partial answer)")
        next_up = None
        with contextlib.suppress(Exception):
            next_up = await self.finish(run, "cancelled", translator.usage)
        await self.events.append(run.run_id, "run_cancelled", {"status": "cancelled"})
        return next_up

    async def _record_rollback(self, run: Run, translator: StreamTranslator) -> list[Run] | None:
        """A run cancelled to be undone: recorded ``cancelled`` with every checkpoint it wrote deleted and nothing it
        held written, in one transaction; its followers told; then its record deleted (LangGraph's ``rollback``:
        the run is gone, as if it never was)."""
        next_up = None
        with contextlib.suppress(Exception):
            next_up = await self.turns.finish(run, "cancelled", translator.usage, roll_back=True)
            await self.hooks.call(self.hooks.finished, run)
        await self.events.append(run.run_id, "run_cancelled", {"status": "cancelled", "rolled_back": True})
        with contextlib.suppress(Exception):
            await self.turns.runs.delete_finished(run.run_id, run.owner)
        return next_up

    # --- a run's input, for recovery --------------------------------------------------------------------------------
    async def resume_input(self, run: Run) -> Any:
        """What a recovered run starts with. A message: continue from the checkpoint (None) if it made it into
        the thread, else start over. An input or command: the same again — LangGraph itself continues from the
        run's own checkpoint when there is one (its ``run_id`` is in the checkpoint's metadata)."""
        if "message" not in run.input:
            return graph_input(run)
        target = await self.graph_for(run)
        state = await target.graph.aget_state(self.config(run, target))
        messages = state.values.get("messages", []) if state.values else []
        return None if any(m.id == message_id(run) for m in messages) else graph_input(run)

    async def keep_message(self, run: Run) -> None:
        """Make sure the run's user message (or input) is in the thread (a retry continues from there)."""
        if "command" in run.input:
            return
        target = await self.graph_for(run)
        config = self.config(run, target)
        if "message" in run.input:
            input_ = await self.resume_input(run)
        else:
            state = await target.graph.aget_state(config)
            ran = state.metadata is not None and state.metadata.get("run_id") == run.run_id
            input_ = None if ran else run.input.get("input")
        if input_ is not None:
            await target.graph.aupdate_state(config, input_, as_node="__start__")
