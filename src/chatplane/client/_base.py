"""What the sync and async clients share: URLs, headers, bodies and how answers are read. No I/O here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from chatplane.client.errors import APIError, RateLimitError, error_class
from chatplane.events import PAUSE_EVENTS, StreamMode
from chatplane.schemas import Multitask, RunCommand, RunEvent

M = TypeVar("M", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8000"
STREAM_RETRIES = 3
"""How many times a dropped event stream is resumed (from the last event id) before giving up."""
CREATE_RETRIES = 3
"""How many times a request that creates a run is sent again — with the same ``Idempotency-Key``, so never a second
message — after a ``503`` or a connection error."""


def idempotency_headers(key: str | None) -> dict[str, str]:
    """The header a run-creating request carries: the caller's key, or a fresh one for this call (its retries
    share it)."""
    return {"Idempotency-Key": key or uuid.uuid4().hex}


def retry_delay(attempt: int) -> float:
    """Seconds before the ``attempt``-th retry (0.5, 1, 2 …)."""
    return 0.5 * float(2**attempt)


UNSET: Any = object()
"""A keyword not given (``None`` is a value a graph's ``interrupt`` may be resumed with)."""


class RunOptions(TypedDict, total=False):
    """What a run takes besides its ``message`` (all optional; POST /v1/threads/{id}/runs has each in full).

    A run takes one of ``message``, ``input`` or ``command``.
    """

    input: Mapping[str, Any]
    """The graph's input (GET /agents has its JSON schema), for a graph whose state is not (only) messages."""
    context: Mapping[str, Any]
    """The graph's run context (its context schema), over the assistant's."""
    config: Mapping[str, Any]
    """LangGraph config: ``configurable``, ``tags``, ``metadata``, ``recursion_limit``."""
    command: RunCommand | Mapping[str, Any]
    """``{"resume": value}`` (a waiting run takes it), ``{"update": {...}}``, ``{"goto": "node"}``."""
    stream_mode: StreamMode | Sequence[StreamMode]
    """LangGraph stream modes, each part an event of that type: ``values``, ``updates``, ``messages``, ``custom`` …"""
    stream_subgraphs: bool
    """Stream the subgraphs' parts too (``event.data["namespace"]`` says whose)."""
    webhook: str
    """A URL told the run's outcome when it ends: a signed POST (``chatplane.client.verify_webhook``)."""


_RUN_OPTIONS = frozenset(RunOptions.__annotations__)


class ClientBase:
    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout, connect=10.0)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "chatplane-python"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    @staticmethod
    def _run_body(
        message: str | None, multitask: Multitask, background: bool, options: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A run's body with only what was given (the server refuses a run with none of message/input/command)."""
        options = options or {}
        unknown = sorted(set(options) - _RUN_OPTIONS)
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        body: dict[str, Any] = {"multitask": multitask, "background": background}
        if message is not None:
            body["message"] = message
        for key in ("input", "context", "config"):
            if options.get(key) is not None:
                body[key] = dict(options[key])
        command = options.get("command")
        if isinstance(command, RunCommand):
            body["command"] = command.model_dump(mode="json", exclude_unset=True)
        elif command is not None:
            body["command"] = dict(command)
        mode = options.get("stream_mode")
        if mode:
            body["stream_mode"] = [mode] if isinstance(mode, str) else list(mode)
        if options.get("stream_subgraphs"):
            body["stream_subgraphs"] = True
        if options.get("webhook"):
            body["webhook"] = options["webhook"]
        return body

    @staticmethod
    def _resume_body(decisions: Sequence[Mapping[str, Any]] | None, value: Any) -> dict[str, Any]:
        if (decisions is None) == (value is UNSET):
            raise TypeError("resume() takes either `decisions` (tool approval) or `value` (a graph's interrupt)")
        if decisions is not None:
            return {"decisions": [dict(d) for d in decisions]}
        return {"resume": value}

    @staticmethod
    def _thread_body(agent: str | None, title: str | None, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"metadata": dict(metadata or {})}
        if agent is not None:
            body["agent"] = agent
        if title is not None:
            body["title"] = title
        return body

    @staticmethod
    def _given(**fields: Any) -> dict[str, Any]:
        """The fields that were given (not None), mappings copied: an assistant's body."""
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in fields.items() if v is not None}

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            error = response.json()["error"]
            code, message, run_id = str(error["code"]), str(error["message"]), error.get("run_id")
        except (ValueError, KeyError, TypeError):
            code, message, run_id = "http_error", f"HTTP {response.status_code}", None
        cls = error_class(response.status_code)
        if cls is RateLimitError:
            retry_after = float(response.headers.get("Retry-After", "0") or 0)
            raise RateLimitError(response.status_code, code, message, run_id, retry_after)
        raise cls(response.status_code, code, message, run_id)

    @classmethod
    def _parse(cls, response: httpx.Response, model: type[M]) -> M:
        cls._raise_for_status(response)
        return model.model_validate(response.json())

    @classmethod
    def _parse_list(cls, response: httpx.Response, model: type[M]) -> list[M]:
        cls._raise_for_status(response)
        return TypeAdapter(list[model]).validate_python(response.json())  # type: ignore[valid-type]

    @staticmethod
    def _event(data: str) -> RunEvent | None:
        """An SSE ``data`` payload → RunEvent (None for heartbeats)."""
        if not data:
            return None
        return RunEvent.model_validate(json.loads(data))

    @staticmethod
    def _paused(last: RunEvent | None) -> bool:
        """Whether a stream that closed (or broke) without a terminal event is done: the server closes a stream
        when the run pauses for a human, so a pause that was the last event ends it. A replayed pause followed by
        more events (a run resumed since) does not: the stream goes on."""
        return last is not None and last.type in PAUSE_EVENTS

    @staticmethod
    def _item_params(namespace: Sequence[str], key: str) -> dict[str, str]:
        return {"namespace": ".".join(namespace), "key": key}

    @classmethod
    def _search_body(
        cls,
        namespace_prefix: Sequence[str],
        query: str | None,
        filter: Mapping[str, Any] | None,
        limit: int,
        offset: int,
    ) -> dict[str, Any]:
        body = cls._given(query=query, filter=filter)
        return {"namespace_prefix": list(namespace_prefix), "limit": limit, "offset": offset, **body}


__all__ = ["STREAM_RETRIES", "UNSET", "APIError", "ClientBase", "RunOptions"]
