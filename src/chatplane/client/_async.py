"""``chatplane.client.AsyncClient``: the asyncio client (same methods as ``Client``, awaited)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Unpack

import httpx
from httpx_sse import EventSource, aconnect_sse

from chatplane.assistant_schemas import AssistantOut
from chatplane.client._async_automation import AsyncAutomationMethods
from chatplane.client._async_branches import AsyncBranchesMethods
from chatplane.client._async_store import AsyncStoreMethods
from chatplane.client._base import (
    CREATE_RETRIES,
    DEFAULT_URL,
    STREAM_RETRIES,
    UNSET,
    ClientBase,
    RunOptions,
    idempotency_headers,
    retry_delay,
)
from chatplane.client.errors import APIConnectionError
from chatplane.events import TERMINAL_EVENTS
from chatplane.schemas import (
    AgentList,
    ChatResponse,
    HistoryResponse,
    MessageList,
    Multitask,
    RunEvent,
    RunOut,
    ThreadList,
    ThreadOut,
    ThreadState,
)


class AsyncClient(AsyncAutomationMethods, AsyncBranchesMethods, AsyncStoreMethods, ClientBase):
    """A chatplane server, over HTTP. Use as an async context manager, or await ``aclose()``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout)
        self._http = http_client or httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        self._http.headers.update(self._headers())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"Cannot reach chatplane at {self.base_url}.") from exc

    async def _create(self, url: str, body: dict[str, Any], key: str | None) -> httpx.Response:
        """POST a run-creating request; after a ``503`` or a connection error, send it again with the same
        ``Idempotency-Key`` (the server answers with the first request's run): never a second message."""
        headers = idempotency_headers(key)
        for attempt in range(CREATE_RETRIES + 1):
            try:
                response = await self._http.request("POST", url, json=body, headers=headers)
            except httpx.TransportError as exc:
                if attempt == CREATE_RETRIES:
                    raise APIConnectionError(f"Cannot reach chatplane at {self.base_url}.") from exc
            else:
                if response.status_code != 503 or attempt == CREATE_RETRIES:
                    return response
            await asyncio.sleep(retry_delay(attempt))
        raise AssertionError("unreachable")

    # --- the seed's API -------------------------------------------------------------------------------------------
    async def chat(
        self, message: str, *, user_id: str, session_id: str | None = None, idempotency_key: str | None = None
    ) -> ChatResponse:
        """Send a message to a session and get the answer (sent again by itself after a 503 or a lost connection,
        with its ``Idempotency-Key``: never twice)."""
        body = {"user_id": user_id, "message": message, "session_id": session_id}
        return self._parse(await self._create("/chat", body, idempotency_key), ChatResponse)

    async def history(self, session_id: str) -> HistoryResponse:
        return self._parse(await self._request("GET", f"/history/{session_id}"), HistoryResponse)

    async def reset(self, session_id: str) -> None:
        self._raise_for_status(await self._request("POST", "/reset", params={"session_id": session_id}))

    # --- threads --------------------------------------------------------------------------------------------------
    async def agents(self) -> AgentList:
        return self._parse(await self._request("GET", "/agents"), AgentList)

    async def create_thread(
        self, *, agent: str | None = None, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ThreadOut:
        body = self._thread_body(agent, title, metadata)
        return self._parse(await self._request("POST", "/v1/threads", json=body), ThreadOut)

    async def list_threads(self, *, limit: int = 20, cursor: str | None = None) -> ThreadList:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._parse(await self._request("GET", "/v1/threads", params=params), ThreadList)

    async def iter_threads(self, *, page_size: int = 50) -> AsyncIterator[ThreadOut]:
        """Every thread, newest first, fetching pages as needed."""
        cursor = None
        while True:
            page = await self.list_threads(limit=page_size, cursor=cursor)
            for thread in page.threads:
                yield thread
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_thread(self, thread_id: str) -> ThreadOut:
        return self._parse(await self._request("GET", f"/v1/threads/{thread_id}"), ThreadOut)

    async def update_thread(
        self, thread_id: str, *, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ThreadOut:
        body = {k: v for k, v in {"title": title, "metadata": metadata}.items() if v is not None}
        return self._parse(await self._request("PATCH", f"/v1/threads/{thread_id}", json=body), ThreadOut)

    async def delete_thread(self, thread_id: str) -> None:
        self._raise_for_status(await self._request("DELETE", f"/v1/threads/{thread_id}"))

    async def messages(self, thread_id: str, *, limit: int = 100, cursor: str | None = None) -> MessageList:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._parse(await self._request("GET", f"/v1/threads/{thread_id}/messages", params=params), MessageList)

    async def thread_state(self, thread_id: str) -> ThreadState:
        """The thread's latest state (any graph's ``values``), and what a paused run waits for."""
        return self._parse(await self._request("GET", f"/v1/threads/{thread_id}/state"), ThreadState)

    # --- runs -----------------------------------------------------------------------------------------------------
    async def run(
        self,
        thread_id: str,
        message: str | None = None,
        *,
        multitask: Multitask = "reject",
        idempotency_key: str | None = None,
        **options: Unpack[RunOptions],
    ) -> RunOut:
        """Start a run and wait for it: ``run.output`` is the answer of a messages graph, ``run.values`` the state of
        any other. Give a ``message``, or ``input=`` / ``command=`` (``RunOptions`` lists every option)."""
        body = self._run_body(message, multitask, False, options)
        return self._parse(await self._create(f"/v1/threads/{thread_id}/runs", body, idempotency_key), RunOut)

    async def start_run(
        self,
        thread_id: str,
        message: str | None = None,
        *,
        multitask: Multitask = "reject",
        idempotency_key: str | None = None,
        **options: Unpack[RunOptions],
    ) -> RunOut:
        """Start a run; returns at once with the accepted run (status pending/running). Options as ``run``."""
        body = self._run_body(message, multitask, True, options)
        return self._parse(await self._create(f"/v1/threads/{thread_id}/runs", body, idempotency_key), RunOut)

    async def list_runs(self, thread_id: str) -> list[RunOut]:
        """The thread's latest runs, newest first."""
        return self._parse_list(await self._request("GET", f"/v1/threads/{thread_id}/runs"), RunOut)

    async def get_run(self, run_id: str) -> RunOut:
        return self._parse(await self._request("GET", f"/v1/runs/{run_id}"), RunOut)

    async def cancel_run(self, run_id: str) -> RunOut:
        return self._parse(await self._request("POST", f"/v1/runs/{run_id}/cancel"), RunOut)

    async def resume(
        self, run_id: str, *, decisions: Sequence[Mapping[str, Any]] | None = None, value: Any = UNSET
    ) -> RunOut:
        """Answer a run waiting for a human: ``decisions`` for tool approval (``[{"type": "approve"}]``, one per
        pending call), or ``value`` — what the graph's ``interrupt(...)`` returns. Follow it with ``attach``."""
        body = self._resume_body(decisions, value)
        return self._parse(await self._request("POST", f"/v1/runs/{run_id}/resume", json=body), RunOut)

    async def resume_run(self, run_id: str, decisions: list[dict[str, Any]]) -> RunOut:
        """Answer a run waiting for approval, e.g. ``[{"type": "approve"}]`` (``resume(run_id, decisions=...)``)."""
        return await self.resume(run_id, decisions=decisions)

    def stream(
        self,
        thread_id: str,
        message: str | None = None,
        *,
        multitask: Multitask = "reject",
        idempotency_key: str | None = None,
        **options: Unpack[RunOptions],
    ) -> AsyncIterator[RunEvent]:
        """Start a run and iterate over its events as they happen (with ``stream_mode=``, LangGraph's parts too,
        as events of that type). A dropped connection is resumed from the last event received, so every event
        arrives exactly once. It ends when the run does, or pauses for a human."""
        body = self._run_body(message, multitask, False, options)
        headers = idempotency_headers(idempotency_key)  # a start that fails before any event is sent again

        def post() -> AbstractAsyncContextManager[EventSource]:
            return aconnect_sse(self._http, "POST", f"/v1/threads/{thread_id}/runs/stream", json=body, headers=headers)

        return self._follow(post(), None, 0, restart=post)

    def attach(self, run_id: str, *, after: int = 0) -> AsyncIterator[RunEvent]:
        """Follow a run: its events after ``after``, then live ones until it ends or waits for approval."""
        return self._follow(self._attach_source(run_id, after), run_id, after)

    def _attach_source(self, run_id: str, after: int) -> AbstractAsyncContextManager[EventSource]:
        return aconnect_sse(self._http, "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": str(after)})

    async def _follow(
        self,
        opener: AbstractAsyncContextManager[EventSource],
        run_id: str | None,
        last_id: int,
        restart: Callable[[], AbstractAsyncContextManager[EventSource]] | None = None,
    ) -> AsyncIterator[RunEvent]:
        retries, last = 0, None
        while True:
            try:
                async with opener as source:
                    if source.response.status_code == 503 and restart is not None and retries < CREATE_RETRIES:
                        raise httpx.RemoteProtocolError("unavailable: start again")  # with the same key
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        self._raise_for_status(source.response)
                    async for sse in source.aiter_sse():
                        event = self._event(sse.data)
                        if event is None:
                            continue
                        run_id, last, last_id = event.run_id, event, event.id or last_id  # 0: from the run record
                        yield event
                        if event.type in TERMINAL_EVENTS:
                            return
            except httpx.TransportError as exc:
                if run_id is None and restart is not None and retries < CREATE_RETRIES:
                    retries += 1  # the run may not exist: start it again, with the same Idempotency-Key
                    opener = restart()
                    continue
                if run_id is None or retries >= STREAM_RETRIES:
                    raise APIConnectionError("The event stream broke and could not be resumed.") from exc
                if self._paused(last):
                    return
            else:
                if run_id is None or self._paused(last):
                    return
            retries += 1
            opener = self._attach_source(run_id, last_id)

    # --- assistants -----------------------------------------------------------------------------------------------
    async def create_assistant(
        self,
        graph_id: str,
        *,
        assistant_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> AssistantOut:
        """A named configuration of a graph (version 1). For a chatplane agent kind, ``context`` may set
        ``model``, ``system_prompt``, ``tools``, ``approve_tools``, ``context_budget_tokens``."""
        body = self._given(
            graph_id=graph_id, assistant_id=assistant_id, name=name, description=description, config=config,
            context=context, metadata=metadata, if_exists=if_exists,
        )  # fmt: skip
        return self._parse(await self._request("POST", "/v1/assistants", json=body), AssistantOut)

    async def get_assistant(self, assistant_id: str) -> AssistantOut:
        """An assistant at its current version (a graph id: its default assistant)."""
        return self._parse(await self._request("GET", f"/v1/assistants/{assistant_id}"), AssistantOut)

    async def update_assistant(
        self,
        assistant_id: str,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AssistantOut:
        """A new version: the current one with the fields given (``metadata`` merged, the others replaced)."""
        body = self._given(
            graph_id=graph_id, name=name, description=description, config=config, context=context, metadata=metadata
        )
        return self._parse(await self._request("PATCH", f"/v1/assistants/{assistant_id}", json=body), AssistantOut)

    async def delete_assistant(self, assistant_id: str) -> None:
        self._raise_for_status(await self._request("DELETE", f"/v1/assistants/{assistant_id}"))

    async def list_assistants(
        self, *, graph_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AssistantOut]:
        """The graphs' default assistants, then yours, newest first."""
        params = self._given(graph_id=graph_id, limit=limit, offset=offset)
        return self._parse_list(await self._request("GET", "/v1/assistants", params=params), AssistantOut)

    async def search_assistants(
        self,
        *,
        graph_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        name: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[AssistantOut]:
        """The assistants that match every filter given (``metadata``: each key equal; ``name``: a part of it)."""
        body = self._given(graph_id=graph_id, metadata=metadata, name=name, limit=limit, offset=offset)
        return self._parse_list(await self._request("POST", "/v1/assistants/search", json=body), AssistantOut)

    async def assistant_versions(self, assistant_id: str, *, limit: int = 10, offset: int = 0) -> list[AssistantOut]:
        """The assistant's versions, newest first."""
        url, params = f"/v1/assistants/{assistant_id}/versions", {"limit": limit, "offset": offset}
        return self._parse_list(await self._request("GET", url, params=params), AssistantOut)

    async def set_assistant_version(self, assistant_id: str, version: int) -> AssistantOut:
        """Make one of the assistant's versions its current one."""
        body = {"version": version}
        return self._parse(
            await self._request("POST", f"/v1/assistants/{assistant_id}/latest", json=body), AssistantOut
        )
