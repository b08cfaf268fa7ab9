"""``chatplane.client.AsyncClient``: the asyncio client (same methods as ``Client``, awaited)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from httpx_sse import EventSource, aconnect_sse

from chatplane.client._base import DEFAULT_URL, STREAM_RETRIES, ClientBase
from chatplane.client.errors import APIConnectionError
from chatplane.events import PAUSE_EVENTS, TERMINAL_EVENTS
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
)


class AsyncClient(ClientBase):
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

    # --- the seed's API -------------------------------------------------------------------------------------------
    async def chat(self, message: str, *, user_id: str, session_id: str | None = None) -> ChatResponse:
        body = {"user_id": user_id, "message": message, "session_id": session_id}
        return self._parse(await self._request("POST", "/chat", json=body), ChatResponse)

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

    # --- runs -----------------------------------------------------------------------------------------------------
    async def run(self, thread_id: str, message: str, *, multitask: Multitask = "reject") -> RunOut:
        """Send a message and wait for the answer (``run.output``)."""
        body = self._run_body(message, multitask, background=False)
        return self._parse(await self._request("POST", f"/v1/threads/{thread_id}/runs", json=body), RunOut)

    async def start_run(self, thread_id: str, message: str, *, multitask: Multitask = "reject") -> RunOut:
        """Send a message; returns at once with the accepted run (status pending/running)."""
        body = self._run_body(message, multitask, background=True)
        return self._parse(await self._request("POST", f"/v1/threads/{thread_id}/runs", json=body), RunOut)

    async def get_run(self, run_id: str) -> RunOut:
        return self._parse(await self._request("GET", f"/v1/runs/{run_id}"), RunOut)

    async def cancel_run(self, run_id: str) -> RunOut:
        return self._parse(await self._request("POST", f"/v1/runs/{run_id}/cancel"), RunOut)

    async def resume_run(self, run_id: str, decisions: list[dict[str, Any]]) -> RunOut:
        """Answer a run waiting for approval, e.g. ``[{"type": "approve"}]``."""
        body = {"decisions": decisions}
        return self._parse(await self._request("POST", f"/v1/runs/{run_id}/resume", json=body), RunOut)

    def stream(self, thread_id: str, message: str, *, multitask: Multitask = "reject") -> AsyncIterator[RunEvent]:
        """Send a message and iterate over the run's events as they happen. A dropped connection is resumed
        from the last event received, so every event arrives exactly once."""
        body = self._run_body(message, multitask, background=False)
        opener = aconnect_sse(self._http, "POST", f"/v1/threads/{thread_id}/runs/stream", json=body)
        return self._follow(opener, None, 0)

    def attach(self, run_id: str, *, after: int = 0) -> AsyncIterator[RunEvent]:
        """Follow a run: its events after ``after``, then live ones until it ends or waits for approval."""
        return self._follow(self._attach_source(run_id, after), run_id, after)

    def _attach_source(self, run_id: str, after: int) -> AbstractAsyncContextManager[EventSource]:
        return aconnect_sse(self._http, "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": str(after)})

    async def _follow(
        self, opener: AbstractAsyncContextManager[EventSource], run_id: str | None, last_id: int
    ) -> AsyncIterator[RunEvent]:
        retries = 0
        while True:
            try:
                async with opener as source:
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        self._raise_for_status(source.response)
                    async for sse in source.aiter_sse():
                        event = self._event(sse.data)
                        if event is None:
                            continue
                        run_id, last_id = event.run_id, event.id
                        yield event
                        if event.type in TERMINAL_EVENTS or event.type in PAUSE_EVENTS:
                            return
            except httpx.TransportError as exc:
                if run_id is None or retries >= STREAM_RETRIES:
                    raise APIConnectionError("The event stream broke and could not be resumed.") from exc
            else:
                if run_id is None:
                    return
            retries += 1
            opener = self._attach_source(run_id, last_id)
