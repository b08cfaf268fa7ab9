"""``chatplane.client.Client``: the blocking client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import httpx
from httpx_sse import EventSource, connect_sse

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


class Client(ClientBase):
    """A chatplane server, over HTTP. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout)
        self._http = http_client or httpx.Client(base_url=self.base_url, timeout=self.timeout)
        self._http.headers.update(self._headers())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"Cannot reach chatplane at {self.base_url}.") from exc

    # --- the seed's API -------------------------------------------------------------------------------------------
    def chat(self, message: str, *, user_id: str, session_id: str | None = None) -> ChatResponse:
        body = {"user_id": user_id, "message": message, "session_id": session_id}
        return self._parse(self._request("POST", "/chat", json=body), ChatResponse)

    def history(self, session_id: str) -> HistoryResponse:
        return self._parse(self._request("GET", f"/history/{session_id}"), HistoryResponse)

    def reset(self, session_id: str) -> None:
        self._raise_for_status(self._request("POST", "/reset", params={"session_id": session_id}))

    # --- threads --------------------------------------------------------------------------------------------------
    def agents(self) -> AgentList:
        return self._parse(self._request("GET", "/agents"), AgentList)

    def create_thread(
        self, *, agent: str | None = None, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ThreadOut:
        body = self._thread_body(agent, title, metadata)
        return self._parse(self._request("POST", "/v1/threads", json=body), ThreadOut)

    def list_threads(self, *, limit: int = 20, cursor: str | None = None) -> ThreadList:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._parse(self._request("GET", "/v1/threads", params=params), ThreadList)

    def iter_threads(self, *, page_size: int = 50) -> Iterator[ThreadOut]:
        """Every thread, newest first, fetching pages as needed."""
        cursor = None
        while True:
            page = self.list_threads(limit=page_size, cursor=cursor)
            yield from page.threads
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_thread(self, thread_id: str) -> ThreadOut:
        return self._parse(self._request("GET", f"/v1/threads/{thread_id}"), ThreadOut)

    def update_thread(
        self, thread_id: str, *, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ThreadOut:
        body = {k: v for k, v in {"title": title, "metadata": metadata}.items() if v is not None}
        return self._parse(self._request("PATCH", f"/v1/threads/{thread_id}", json=body), ThreadOut)

    def delete_thread(self, thread_id: str) -> None:
        self._raise_for_status(self._request("DELETE", f"/v1/threads/{thread_id}"))

    def messages(self, thread_id: str, *, limit: int = 100, cursor: str | None = None) -> MessageList:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._parse(self._request("GET", f"/v1/threads/{thread_id}/messages", params=params), MessageList)

    # --- runs -----------------------------------------------------------------------------------------------------
    def run(self, thread_id: str, message: str, *, multitask: Multitask = "reject") -> RunOut:
        """Send a message and wait for the answer (``run.output``)."""
        body = self._run_body(message, multitask, background=False)
        return self._parse(self._request("POST", f"/v1/threads/{thread_id}/runs", json=body), RunOut)

    def start_run(self, thread_id: str, message: str, *, multitask: Multitask = "reject") -> RunOut:
        """Send a message; returns at once with the accepted run (status pending/running)."""
        body = self._run_body(message, multitask, background=True)
        return self._parse(self._request("POST", f"/v1/threads/{thread_id}/runs", json=body), RunOut)

    def get_run(self, run_id: str) -> RunOut:
        return self._parse(self._request("GET", f"/v1/runs/{run_id}"), RunOut)

    def cancel_run(self, run_id: str) -> RunOut:
        return self._parse(self._request("POST", f"/v1/runs/{run_id}/cancel"), RunOut)

    def resume_run(self, run_id: str, decisions: list[dict[str, Any]]) -> RunOut:
        """Answer a run waiting for approval, e.g. ``[{"type": "approve"}]``."""
        body = {"decisions": decisions}
        return self._parse(self._request("POST", f"/v1/runs/{run_id}/resume", json=body), RunOut)

    def stream(self, thread_id: str, message: str, *, multitask: Multitask = "reject") -> Iterator[RunEvent]:
        """Send a message and iterate over the run's events as they happen. A dropped connection is resumed
        from the last event received, so every event arrives exactly once."""
        body = self._run_body(message, multitask, background=False)
        opener = connect_sse(self._http, "POST", f"/v1/threads/{thread_id}/runs/stream", json=body)
        return self._follow(opener, None, 0)

    def attach(self, run_id: str, *, after: int = 0) -> Iterator[RunEvent]:
        """Follow a run: its events after ``after``, then live ones until it ends or waits for approval."""
        return self._follow(self._attach_source(run_id, after), run_id, after)

    def _attach_source(self, run_id: str, after: int) -> AbstractContextManager[EventSource]:
        return connect_sse(self._http, "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": str(after)})

    def _follow(
        self, opener: AbstractContextManager[EventSource], run_id: str | None, last_id: int
    ) -> Iterator[RunEvent]:
        retries = 0
        while True:
            try:
                with opener as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        self._raise_for_status(source.response)
                    for sse in source.iter_sse():
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
