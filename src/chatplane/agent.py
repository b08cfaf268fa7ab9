"""``ProductionAgent``: the seed's API (``chat``, ``stream_chat``, ``get_history``, ``reset_session``), async-first.

The ``a``-prefixed methods are the implementation; the plain ones run them on a private event loop in a background
thread (anyio's blocking portal), so scripts and notebooks can use the agent without ``asyncio``::

    agent = ProductionAgent("fake:echo")               # or "openai:gpt-4o", or a BaseChatModel
    agent.chat("alice", "hi")                          # sync
    async with ProductionAgent(settings=settings) as agent:
        await agent.achat("alice", "hi")               # async

Messages to one session are handled one at a time, in arrival order, within a process.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from chatplane.agents import AGENTS
from chatplane.config import Settings
from chatplane.errors import (
    ChatplaneError,
    ConfigError,
    DependencyError,
    InternalError,
    InvalidInputError,
    SessionNotFoundError,
    StorageUnavailableError,
    describe_exception,
)
from chatplane.llm import ModelHandle, open_chat_model
from chatplane.storage import STORAGE_ERRORS, Storage, open_storage

log = logging.getLogger(__name__)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
"""What user and session ids may look like: printable, no spaces or control characters, at most 128 long."""
_ID_RE = re.compile(ID_PATTERN)
T = TypeVar("T")


def default_session_id(user_id: str) -> str:
    """The session a user talks in when none is named (as the seed)."""
    return f"session-{user_id}"


def check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidInputError(
            f"{kind} must be 1-128 characters of letters, digits and . _ : @ - (starting with a letter or digit)."
        )
    return value


def check_message(message: str, max_chars: int) -> str:
    if not isinstance(message, str) or not message.strip():
        raise InvalidInputError("message must be a non-empty string.")
    if len(message) > max_chars:
        raise InvalidInputError(f"message is longer than the limit of {max_chars} characters.")
    if "\x00" in message:
        raise InvalidInputError("message must not contain NUL characters.")
    return message


class ProductionAgent:
    """A LangGraph agent with checkpointed sessions, built from ``Settings``."""

    def __init__(
        self,
        model: str | BaseChatModel | None = None,
        *,
        settings: Settings | None = None,
        agent: str = "chat",
    ) -> None:
        settings = settings or Settings()
        if isinstance(model, str):
            # The seed took a bare OpenAI model name ("gpt-4o"); chatplane ids name the provider.
            settings = settings.model_copy(update={"model": model if ":" in model else f"openai:{model}"})
        if agent not in AGENTS:
            raise ConfigError(f"Unknown agent {agent!r}; known: {', '.join(AGENTS)}.")
        self.settings = settings
        self.agent_kind = agent
        self._model_override = model if isinstance(model, BaseChatModel) else None
        self._stack: AsyncExitStack | None = None
        self._model: ModelHandle | None = None
        self._storage: Storage | None = None
        self._graph: Any = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> ProductionAgent:
        """Start the model and open storage. Idempotent."""
        if self._stack is not None:
            return self
        stack = AsyncExitStack()
        try:
            self._model = await stack.enter_async_context(
                open_chat_model(self.settings.model, self.settings, model=self._model_override)
            )
            self._storage = await stack.enter_async_context(open_storage(self.settings))
            self._graph = AGENTS[self.agent_kind].build(
                self._model.model, settings=self.settings, checkpointer=self._storage.checkpointer
            )
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def aclose(self) -> None:
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
    def graph(self) -> Any:
        """The compiled LangGraph graph."""
        self._require_started()
        return self._graph

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
        self, user_id: str, message: str, session_id: str | None = None, *, thread_id: str | None = None
    ) -> str:
        """Send ``message`` as ``user_id`` in ``session_id`` and return the answer's text.

        ``thread_id`` is where the session is stored (default: the session id); the service namespaces it per user.
        """
        graph_input, config, key = self._prepare(user_id, message, session_id, thread_id)
        async with self._serialized(key), self._translating_errors(key):
            result = await self._graph.ainvoke(graph_input, config)
        messages: list[AnyMessage] = result["messages"]
        return _answer_text(messages)

    async def astream_chat(
        self, user_id: str, message: str, session_id: str | None = None, *, thread_id: str | None = None
    ) -> AsyncGenerator[str, None]:
        """Like ``achat``, but yield the answer's text piece by piece as the model generates it."""
        graph_input, config, key = self._prepare(user_id, message, session_id, thread_id)
        async with self._serialized(key), self._translating_errors(key):
            streamed: set[str | None] = set()
            async for chunk, _meta in self._graph.astream(graph_input, config, stream_mode="messages"):
                if isinstance(chunk, AIMessageChunk):
                    streamed.add(chunk.id)
                    if chunk.text:
                        yield chunk.text
                elif isinstance(chunk, AIMessage) and chunk.id not in streamed and chunk.text:
                    yield chunk.text  # a model that does not stream gives its whole message at once

    async def aget_history(
        self, session_id: str, *, thread_id: str | None = None, missing_ok: bool = True
    ) -> list[AnyMessage]:
        """The session's messages, oldest first ([] for an unknown session unless ``missing_ok=False``)."""
        key = thread_id or check_id("session_id", session_id)
        self._require_started()
        async with self._translating_errors(key):
            state = await self._graph.aget_state(_config(key))
        messages: list[AnyMessage] = list(state.values.get("messages", [])) if state.values else []
        if not messages and not missing_ok:
            raise SessionNotFoundError()
        return messages

    async def areset_session(self, session_id: str, *, thread_id: str | None = None, missing_ok: bool = True) -> None:
        """Delete every checkpoint of the session."""
        key = thread_id or check_id("session_id", session_id)
        _, storage = self._require_started()
        async with self._serialized(key), self._translating_errors(key):
            if not missing_ok and await storage.checkpointer.aget_tuple(_config(key)) is None:
                raise SessionNotFoundError()
            await storage.checkpointer.adelete_thread(key)

    # --- the seed's API, sync -------------------------------------------------------------------------------------
    def chat(self, user_id: str, message: str, session_id: str | None = None) -> str:
        return self._call(partial(self.achat, user_id, message, session_id))

    def stream_chat(self, user_id: str, message: str, session_id: str | None = None) -> Iterator[str]:
        portal = self._sync_portal()
        stream = self.astream_chat(user_id, message, session_id)
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

    # --- internals --------------------------------------------------------------------------------------------
    def _prepare(
        self, user_id: str, message: str, session_id: str | None, thread_id: str | None
    ) -> tuple[dict[str, Any], RunnableConfig, str]:
        self._require_started()
        check_id("user_id", user_id)
        session_id = check_id("session_id", session_id or default_session_id(user_id))
        check_message(message, self.settings.max_message_chars)
        key = thread_id or session_id
        graph_input = {"messages": [HumanMessage(message)], "user_id": user_id, "session_id": session_id}
        return graph_input, _config(key), key

    @asynccontextmanager
    async def _serialized(self, key: str) -> AsyncIterator[None]:
        """One message at a time per thread in this process: a second one waits its turn (never interleaves)."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield

    @asynccontextmanager
    async def _translating_errors(self, key: str) -> AsyncIterator[None]:
        """Let chatplane errors through (logged), turn storage faults into 503s and anything else into a 500."""
        try:
            yield
        except DependencyError as exc:
            cause = exc.__cause__ or exc
            log.warning("thread %s: %s (%s)", key, exc.code, describe_exception(cause))
            raise
        except ChatplaneError:
            raise
        except STORAGE_ERRORS as exc:
            log.warning("thread %s: storage_unavailable (%s)", key, describe_exception(exc))
            raise StorageUnavailableError() from exc
        except Exception as exc:
            log.error("thread %s: internal_error (%s)", key, describe_exception(exc))
            raise InternalError() from exc


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _answer_text(messages: list[AnyMessage]) -> str:
    last = messages[-1] if messages else None
    return last.text if last is not None else ""
