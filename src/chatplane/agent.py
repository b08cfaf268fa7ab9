"""``ProductionAgent``: the seed's API (``chat``, ``stream_chat``, ``get_history``, ``reset_session``), async-first.

The ``a``-prefixed methods are the implementation; the plain ones run them on a private event loop in a background
thread (anyio's blocking portal), so scripts and notebooks can use the agent without ``asyncio``::

    agent = ProductionAgent("fake:echo")               # or "openai:gpt-4o", or a BaseChatModel
    agent.chat("alice", "hi")                          # sync
    async with ProductionAgent(settings=settings) as agent:
        await agent.achat("alice", "hi")               # async

``start`` builds the core: the model, storage, tools, every agent's graph and the runs. The seed's API is the face of
the owner-scoped services every other way in uses too (``for_user``, ``chatplane.core``). Every message becomes a run
(``chatplane.runs``): runs of one session execute one at a time, in arrival order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, AsyncExitStack
from functools import partial
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage

from chatplane.agents.graphs import KindGraphs
from chatplane.agents.project import GraphSource, load_project
from chatplane.agents.registry import GraphRegistry
from chatplane.config import Settings
from chatplane.core import Services, UserServices, memories
from chatplane.core.checks import check_id, default_session_id
from chatplane.core.targets import RunTargets
from chatplane.errors import (
    ChatplaneError,
    ConfigError,
    RunStateError,
    SessionNotFoundError,
    error_from_code,
)
from chatplane.events import Retraction, RunEvent
from chatplane.failures import as_chatplane_error
from chatplane.llm import ModelHandle, open_chat_model
from chatplane.runs import Run, RunManager
from chatplane.runs.events import EventLog
from chatplane.runs.redis_log import RedisEventLog
from chatplane.storage.engine import Storage, open_storage
from chatplane.storage.threads import Thread, ThreadStore
from chatplane.storage.transcript import Transcript
from chatplane.tools import open_tools

T = TypeVar("T")


class ProductionAgent:
    """A LangGraph agent with checkpointed sessions, built from ``Settings``."""

    def __init__(
        self,
        model: str | BaseChatModel | None = None,
        *,
        settings: Settings | None = None,
        agent: str | None = None,
        graph: Any = None,
        assistant: str | None = None,
    ) -> None:
        """``agent`` (or ``assistant``): the graph id or assistant id new sessions talk to (default: the server's
        ``default_agent``). ``graph``: serve this LangGraph graph — compiled, a ``StateGraph`` or a factory — as
        graph ``"graph"``, and talk to it by default."""
        settings = settings or Settings()
        if isinstance(model, str):
            # The seed took a bare OpenAI model name ("gpt-4o"); chatplane ids name the provider.
            settings = settings.model_copy(update={"model": model if ":" in model else f"openai:{model}"})
        self.settings = settings
        self._own_graph = graph
        self.agent_kind = assistant or agent or ("graph" if graph is not None else settings.default_agent)
        self._model_override = model if isinstance(model, BaseChatModel) else None
        self._stack: AsyncExitStack | None = None
        self._model: ModelHandle | None = None
        self._storage: Storage | None = None
        self._registry: GraphRegistry | None = None
        self.services: Services
        self.threads: ThreadStore
        self.transcript: Transcript
        self.runs: RunManager
        self._shutdown_grace_s: float | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> ProductionAgent:
        """Start the model, open storage, load the project's graphs and build the agents'. Idempotent."""
        if self._stack is not None:
            return self
        stack = AsyncExitStack()
        try:
            project = load_project(self.settings.config_file)
            if self._own_graph is not None:
                project.graphs.append(GraphSource("graph", "ProductionAgent(graph=...)", self._own_graph))
            self._model = await stack.enter_async_context(
                open_chat_model(self.settings.model, self.settings, model=self._model_override)
            )
            self._storage = storage = await stack.enter_async_context(open_storage(self.settings))
            tools = await stack.enter_async_context(open_tools(self.settings, extra=project.tools))
            self.transcript, self.threads = storage.transcript, storage.threads
            kinds = KindGraphs(
                self._model.model,
                self.settings,
                checkpointer=storage.checkpointer,
                transcript=self.transcript,
                tools=tools,
            )
            registry = self._registry = await GraphRegistry.open(
                project.graphs, self.settings, kinds, storage.checkpointer
            )
            store, limits = await stack.enter_async_context(memories.open_store(self.settings, storage.db))
            targets = RunTargets(registry, storage.assistants.find, store_for=memories.scoped_store(store, limits))
            self._check_default(targets)
            events: EventLog | None = None
            if self.settings.redis_url:
                redis_log = RedisEventLog(self.settings.redis_url)
                stack.push_async_callback(redis_log.aclose)
                events = redis_log
            self.runs = RunManager(storage=storage, settings=self.settings, events=events, graph_for=targets.for_run)
            self.services = Services(self.settings, storage, self.runs, targets, store=store, store_limits=limits)
            await self.runs.start()
            stack.push_async_callback(lambda: self.runs.aclose(self._shutdown_grace_s))
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    def _check_default(self, targets: RunTargets) -> None:
        ref = self.settings.default_agent
        if targets.graph_id_of_default(ref) is None:
            known = ", ".join(targets.graphs.graph_ids())
            raise ConfigError(f"CHATPLANE_DEFAULT_AGENT {ref!r} is no graph served; known: {known}.")

    async def aclose(self, grace_s: float | None = None) -> None:
        """Stop. Running runs get ``grace_s`` seconds to finish, then go back to the queue (another process, or
        this one after a restart, resumes them)."""
        self._shutdown_grace_s = grace_s
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> ProductionAgent:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def model(self) -> BaseChatModel:
        return self._require_started()[0].model

    @property
    def storage(self) -> Storage:
        return self._require_started()[1]

    @property
    def registry(self) -> GraphRegistry:
        """Every graph served (the built-in agents and the project's)."""
        self._require_started()
        assert self._registry is not None
        return self._registry

    @property
    def graphs(self) -> dict[str, Any]:
        """Each graph served, by id, as the server built it (an agent kind: on the server's settings)."""
        return {served.graph_id: served.sample for served in self.registry.all()}

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph new sessions talk to, as the server built it (its default assistant)."""
        graph_id = self.services.targets.graph_id_of_default(self.agent_kind) or self.agent_kind
        return self.registry.get(graph_id).sample

    def for_user(self, owner: str) -> UserServices:
        """Threads and runs, scoped to ``owner`` (``chatplane.core``)."""
        self._require_started()
        return UserServices(self.services, owner)

    def _require_started(self) -> tuple[ModelHandle, Storage]:
        if self._model is None or self._storage is None or self._stack is None:
            raise ConfigError("ProductionAgent is not started: use `async with agent:` or `await agent.start()`.")
        return self._model, self._storage

    async def ready(self) -> dict[str, bool]:
        """Whether storage and the model answer right now."""
        model, storage = self._require_started()
        storage_ok, model_ok = await asyncio.gather(storage.ping(), model.ping())
        return {"storage": storage_ok, "model": model_ok}

    # --- the seed's API, async ------------------------------------------------------------------------------------
    async def achat(
        self,
        user_id: str,
        message: str,
        session_id: str | None = None,
        *,
        thread_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Send ``message`` as ``user_id`` in ``session_id`` and return the answer's text.

        ``thread_id`` is where the session is stored (default: the session id) and ``owner`` who owns it (default:
        the user); the service derives both from the caller's credential. ``agent`` picks the agent kind of a new
        session (an existing session keeps its own; asking it for another is ``AgentMismatchError``).
        Messages to a busy session wait their turn. ``idempotency_key``: the same message sent again with it gets
        the first one's answer, never a second message.
        """
        run = await self._submit(
            user_id, message, session_id, thread_id, owner, agent, stream_tokens=False, idempotency_key=idempotency_key
        )
        last, answer = await self.runs.outcome(run.run_id)
        if last is not None:
            raise_if_unsuccessful(last)
        return str(answer["content"]) if answer else ""

    async def astream_chat(
        self,
        user_id: str,
        message: str,
        session_id: str | None = None,
        *,
        thread_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncGenerator[str, None]:
        """Like ``achat``, but yield the answer's text piece by piece as the model generates it.

        Closing the generator early stops the streaming, not the run: the answer still lands in the session.
        A model attempt that failed and is tried again yields a ``Retraction`` (an empty piece): the last
        ``dropped`` characters yielded are void, the retry's text follows.
        """
        run = await self._submit(user_id, message, session_id, thread_id, owner, agent, idempotency_key=idempotency_key)
        streamed: dict[str | None, int] = {}  # characters yielded, by message id
        async for event in self.runs.subscribe(run.run_id):
            if event.type == "token" and event.data.get("text"):
                message_id = event.data.get("message_id")
                streamed[message_id] = streamed.get(message_id, 0) + len(event.data["text"])
                yield event.data["text"]
            elif event.type == "retract":
                yield Retraction(streamed.pop(event.data.get("message_id"), 0))
            raise_if_unsuccessful(event)

    async def aget_history(
        self, session_id: str, *, thread_id: str | None = None, owner: str | None = None, missing_ok: bool = True
    ) -> list[AnyMessage]:
        """The session's messages, oldest first ([] for an unknown session unless ``missing_ok=False``)."""
        key = thread_id or check_id("session_id", session_id)
        self._require_started()
        messages: list[AnyMessage] = []
        try:
            thread = await self.threads.find(key, owner) if owner is not None else None
            if owner is None or thread is not None:
                agent = thread.agent if thread is not None else self.agent_kind
                messages = await self.services.history(key, agent, owner or "")
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {key}") from exc
        if not messages and not missing_ok:
            raise SessionNotFoundError()
        return messages

    async def areset_session(
        self, session_id: str, *, thread_id: str | None = None, owner: str | None = None, missing_ok: bool = True
    ) -> None:
        """Cancel the session's runs and delete every checkpoint, run record and the thread itself."""
        key = thread_id or check_id("session_id", session_id)
        _, storage = self._require_started()
        try:
            thread = await self.threads.find(key, owner) if owner is not None else None
            if owner is not None and thread is None:
                if missing_ok:
                    return
                raise SessionNotFoundError()
            config: Any = {"configurable": {"thread_id": key}}
            if not missing_ok and thread is None and await storage.checkpointer.aget_tuple(config) is None:
                raise SessionNotFoundError()
            await self.services.delete_thread(key)
        except ChatplaneError:
            raise
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {key}") from exc

    async def _submit(
        self,
        user_id: str,
        message: str,
        session_id: str | None,
        thread_id: str | None,
        owner: str | None,
        agent: str | None,
        *,
        stream_tokens: bool = True,
        idempotency_key: str | None = None,
    ) -> Run:
        """The one way the seed's API sends a message: to the session's thread, created on first use."""
        check_id("user_id", user_id)
        session_id = check_id("session_id", session_id or default_session_id(user_id))
        return await self.for_user(owner or user_id).runs.send(
            thread_id or session_id,
            message,
            multitask="enqueue",
            stream_tokens=stream_tokens,
            agent=agent,
            user_id=user_id,
            session_id=session_id,
            create_as=self.agent_kind,
            idempotency_key=idempotency_key,
        )

    # --- the seed's API, sync -------------------------------------------------------------------------------------
    def chat(self, user_id: str, message: str, session_id: str | None = None, *, agent: str | None = None) -> str:
        return self._call(partial(self.achat, user_id, message, session_id, agent=agent))

    def stream_chat(
        self, user_id: str, message: str, session_id: str | None = None, *, agent: str | None = None
    ) -> Iterator[str]:
        portal = self._sync_portal()
        stream = self.astream_chat(user_id, message, session_id, agent=agent)
        try:
            while True:
                try:
                    yield portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            portal.call(stream.aclose)

    def get_history(self, session_id: str) -> list[AnyMessage]:
        return self._call(partial(self.aget_history, session_id))

    def reset_session(self, session_id: str) -> None:
        self._call(partial(self.areset_session, session_id))

    def list_sessions(self, user_id: str, limit: int = 20) -> list[Thread]:
        """The user's sessions (threads), newest first."""
        self._sync_portal()
        threads, _ = self._call(partial(self.threads.list, user_id, limit=limit))
        return threads

    def close(self) -> None:
        """Stop what the sync methods started (the model, storage and the background event loop)."""
        portal, cm = self._portal, self._portal_cm
        self._portal = self._portal_cm = None
        if portal is not None and cm is not None:
            try:
                portal.call(self.aclose)
            finally:
                cm.__exit__(None, None, None)

    def __enter__(self) -> ProductionAgent:
        self._sync_portal()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, func: Callable[[], Awaitable[T]]) -> T:
        return self._sync_portal().call(func)

    def _sync_portal(self) -> BlockingPortal:
        if self._portal is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                raise ConfigError("Use the async methods (achat, astream_chat ...) inside a running event loop.")
            self._portal_cm = start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
            try:
                self._portal.call(self.start)
            except BaseException:
                self._portal_cm.__exit__(None, None, None)
                self._portal = self._portal_cm = None
                raise
        return self._portal


def raise_if_unsuccessful(event: RunEvent) -> None:
    """Raise the error a run's failed / cancelled / paused event stands for; nothing for other events."""
    error: ChatplaneError | None = None
    if event.type == "run_failed":
        error = error_from_code(event.data["error"]["code"], event.data["error"]["message"])
    elif event.type == "run_cancelled":
        error = RunStateError("The run was cancelled.")
    elif event.type == "interrupt":
        error = RunStateError(f"The run waits for a human decision: POST /v1/runs/{event.run_id}/resume.")
    if error is not None:
        error.run_id = event.run_id
        raise error
