"""A user's runs: send a message (the one place a message becomes a run), read, cancel, retry, resume, follow."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date
from typing import Any, Literal

from langchain_core.messages import BaseMessage

from chatplane.core.checks import check_id, check_message
from chatplane.core.run_input import RunInput
from chatplane.core.services import Services
from chatplane.errors import ChatplaneError, InvalidInputError, RunNotFoundError, RunStateError, ThreadNotFoundError
from chatplane.events import EventType, RunEvent
from chatplane.failures import as_chatplane_error
from chatplane.runs.finals import FinalValues
from chatplane.runs.stateless import stream_stateless
from chatplane.schemas import UsageReport
from chatplane.storage.idempotency import IdempotencyKey
from chatplane.storage.runs import Multitask, Run, RunStatus
from chatplane.storage.thread_search import ThreadSearch
from chatplane.storage.usage import usage_report
from chatplane.storage.webhooks import WebhookStore
from chatplane.webhooks.guard import check_webhook_url


class RunService:
    """``owner``'s runs: another user's run is a 404 here."""

    def __init__(self, services: Services, owner: str) -> None:
        self._services = services
        self._manager = services.runs
        self.owner = owner

    async def send(
        self,
        thread_id: str,
        message: str | RunInput,
        *,
        multitask: Multitask,
        stream_tokens: bool = True,
        agent: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        create_as: str | None = None,
        idempotency_key: str | None = None,
        bind: bool = False,
        webhook: str | None = None,
        delay_s: float = 0,
    ) -> Run:
        """Send ``message`` (a user message, or any ``RunInput``) to the owner's thread: a new run, started now or
        queued by ``multitask``. A ``command`` that only resumes goes to the run waiting on the thread, if any (the
        run comes back with ``resumed_after``: where a caller following it starts).

        ``agent``: the thread must talk to it (409 otherwise). ``create_as``: a missing thread is created on first
        use, talking to ``agent`` or else ``create_as`` (the seed's sessions); without it a missing thread is a 404.
        ``stream_tokens=False`` for a caller that waits for the whole answer (``RunManager.submit``).
        ``idempotency_key``: the same request sent again with it gets the first one's run, never a second message
        (``chatplane.storage.idempotency``); the key sent with another request is ``IdempotencyConflictError``.
        ``bind``: a thread no run was made on yet is pointed at ``agent`` first (LangGraph's threads take their
        graph from their first run). ``webhook``: a URL told the run's outcome when it ends (``chatplane.webhooks``).
        ``delay_s``: the run starts no earlier than that many seconds from now (``pending`` until then)."""
        request = message if isinstance(message, RunInput) else RunInput(message=message)
        settings = self._services.settings
        if request.message is not None:
            check_message(request.message, settings.max_message_chars)
        if agent is not None:
            agent = await self._services.targets.thread_agent(agent, self.owner)
        if webhook is not None:
            check_webhook_url(webhook, production=settings.env == "production")
        options: dict[str, Any] = {"user_id": user_id or self.owner, "session_id": session_id, "agent": agent}
        options |= {"multitask": multitask, "stream_tokens": stream_tokens, "webhook": webhook, "delay_s": delay_s}
        if idempotency_key is not None:
            check_id("idempotency_key", idempotency_key)
            key = IdempotencyKey.of(idempotency_key, thread_id, dataclasses.asdict(request), multitask, agent)
            options["idempotency"] = dataclasses.replace(key, ttl_s=settings.idempotency_ttl_s)
        try:
            try:
                return await self._submit(thread_id, request, options, bind)
            except ThreadNotFoundError:
                if create_as is None:
                    raise
                threads = self._services.storage.threads
                create_as = await self._services.targets.thread_agent(agent or create_as, self.owner)
                await threads.ensure(thread_id, self.owner, agent, create_as, session_id)
                return await self._submit(thread_id, request, options, bind=False)
        except ChatplaneError:
            raise
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {thread_id}") from exc

    async def _expect_webhook(self, run: Run) -> Run:
        """A run that names a webhook gets its delivery row now (``chatplane.storage.webhooks``): its end is then
        reported even if the process that records it stops before telling the dispatcher."""
        url = run.input.get("webhook")
        if url:
            await WebhookStore(self._services.storage.db).expect(run.run_id, run.owner, url)
        return run

    async def _submit(self, thread_id: str, request: RunInput, options: dict[str, Any], bind: bool) -> Run:
        """Check ``request`` against the thread's graph — unless it is a plain message and every graph served
        keeps messages (no read needed) — then hand it to the run manager; ``bind``: see ``send``."""
        services = self._services
        options = dict(options)
        webhook = options.pop("webhook", None)
        extra: dict[str, Any] = {"webhook": webhook} if webhook else {}
        agent = options["agent"]
        if bind or not (request.plain and services.catalog.all_keep_messages):
            threads = services.storage.threads
            thread = await threads.get(thread_id, self.owner)
            if bind and agent is not None and thread.agent != agent:
                if await ThreadSearch(services.storage.db).rebind(thread_id, self.owner, agent):
                    thread = await threads.get(thread_id, self.owner)
            if request.resumes_only:
                waiting = [r for r in await services.storage.runs.active(thread_id) if r.status == "waiting"]
                if waiting and options.get("delay_s"):
                    raise InvalidInputError("A run waiting for a human is resumed now: send no `after_seconds`.")
                if waiting:
                    return await self._manager.resume(waiting[0], request.command["resume"])  # type: ignore[index]
            assistant = await services.targets.assistant(thread.agent, self.owner)
            if assistant is None:
                raise InvalidInputError("This thread's assistant no longer exists.")
            served = services.catalog.get(assistant.graph_id)
            extra.update(request.checked(served, assistant, max_recursion=services.settings.recursion_limit))
            if request.goes_on:
                _, snapshot = await services.state(thread_id, thread.agent, self.owner)
                if not getattr(snapshot, "next", ()):
                    raise InvalidInputError(
                        "Send `message`, `input` or `command`: this thread has no run stopped at a breakpoint to "
                        "go on with."
                    )
        run = await self._manager.submit_to(thread_id, self.owner, request.message, extra=extra, **options)
        return await self._expect_webhook(run) if webhook else run

    async def get(self, run_id: str, *, thread_id: str | None = None) -> Run:
        """The owner's run; ``thread_id``: it must belong to that thread (a 422 otherwise)."""
        run = await self._services.storage.runs.get(run_id, self.owner)
        if thread_id is not None and run.thread_id != thread_id:
            raise InvalidInputError("That run belongs to another thread.")
        return run

    async def cancel(self, run: Run | str, *, roll_back: bool = False) -> Run:
        """Stop the run now; what the model had generated is kept in the thread, marked ``cancelled``.
        ``roll_back``: undo it instead — nothing it did stays in the thread, and its record is deleted."""
        return await self._manager.cancel(await self._own(run), roll_back=roll_back)

    async def active_on(self, thread_id: str) -> list[Run]:
        """The pending, running and waiting runs of the owner's thread, oldest first."""
        await self._services.storage.threads.get(thread_id, self.owner)  # 404 unless it is theirs
        return await self._services.storage.runs.active(thread_id)

    async def cancel_many(
        self,
        *,
        thread_id: str | None = None,
        run_ids: list[str] | None = None,
        status: Literal["pending", "running", "all"] | None = None,
        roll_back: bool = False,
    ) -> int:
        """Cancel several of the owner's runs: those ``run_ids`` of thread ``thread_id`` (each must be the owner's
        and on that thread: a 404 otherwise, before any is cancelled), or every one ``status`` names (``all``:
        pending, running and waiting). How many were cancelled."""
        if status is not None:
            if thread_id is not None or run_ids:
                raise InvalidInputError("Give `status`, or `thread_id` with `run_ids`, not both.")
            wanted: list[RunStatus] = ["pending", "running", "waiting"] if status == "all" else [status]
            runs = await self._services.storage.runs.of_owner(self.owner, wanted)
        else:
            if thread_id is None or not run_ids:
                raise InvalidInputError("Give `thread_id` and `run_ids`, or a `status`.")
            runs = [await self.get(run_id) for run_id in dict.fromkeys(run_ids)]
            if any(run.thread_id != thread_id for run in runs):
                raise RunNotFoundError()  # as if it did not exist: it is not that thread's
        for run in runs:
            await self._manager.cancel(run, roll_back=roll_back)
        return len(runs)

    async def retry(self, run: Run | str) -> Run:
        """A new run continuing the thread from where a failed run stopped."""
        return await self._manager.retry(await self._own(run))

    async def resume(self, run: Run | str, decisions: list[dict[str, Any]] | None = None, *, value: Any = None) -> Run:
        """Answer a run waiting for a human: ``decisions``, one per pending tool call (tool approval), or any
        ``value`` for a graph's own ``interrupt(...)``, which returns it."""
        if decisions is not None:
            value = {"decisions": decisions}
        return await self._manager.resume(await self._own(run), value)

    async def delete(self, run: Run | str) -> None:
        """Forget a finished run's record (what it did to its thread stays); an active run is a 409."""
        run = await self._own(run)
        if not await self._services.storage.runs.delete_finished(run.run_id, self.owner):
            raise RunStateError("Only a finished run can be deleted; cancel it first.")

    async def _own(self, run: Run | str) -> Run:
        return await self.get(run) if isinstance(run, str) else run

    async def events(self, run: Run, after: int = 0, *, through_pauses: bool = False) -> AsyncIterator[RunEvent]:
        """The run's events after ``after``, then live ones until it ends or pauses (``through_pauses``: until it
        ends). A run that ended before this process started (or whose log expired) gives its outcome from its
        record (``RunFollower``)."""
        async for event in self._manager.subscribe(run.run_id, after, through_pauses=through_pauses):
            yield event

    def final_values(self, run: Run) -> FinalValues | None:
        """The values ``run`` (one of the owner's) ended with, if it succeeded in this process not long ago."""
        return self._manager.executor.finals.get(run.run_id)

    async def outcome(self, run: Run) -> tuple[RunEvent | None, dict[str, Any] | None]:
        """Wait until the run finishes or pauses: its last event, and its answer if it gave one."""
        return await self._manager.outcome(run.run_id)

    async def usage(self, first: date, last: date, *, thread_id: str | None = None) -> UsageReport:
        """The owner's token usage and its cost, days ``first`` to ``last`` (UTC); ``thread_id``: one of theirs."""
        services = self._services
        if thread_id is not None:
            await services.storage.threads.get(thread_id, self.owner)  # 404 unless it is theirs
        prices = services.settings.prices
        return await usage_report(services.storage.db, self.owner, first, last, prices, thread_id=thread_id)

    async def stateless(
        self, agent: str, messages: list[BaseMessage], *, stream_tokens: bool = True
    ) -> AsyncIterator[tuple[EventType, dict[str, Any]]]:
        """Run ``agent`` (an assistant or graph id) once on a whole conversation, keeping nothing but the run
        record."""
        targets = self._services.targets
        target = targets.with_store(await targets.of(agent, self.owner, stateful=False), self.owner)
        if not target.served.has_messages:
            raise InvalidInputError(f"{agent!r} keeps no messages: it cannot answer a conversation.")
        return stream_stateless(
            target,
            messages,
            agent=agent,
            owner=self.owner,
            model=self._services.settings.model,
            runs=self._services.storage.runs,
            executor=self._manager.executor,
            stream_tokens=stream_tokens,
        )
