"""What the sync and async clients share: URLs, headers, bodies and how answers are read. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from chatplane.client.errors import APIError, RateLimitError, error_class
from chatplane.schemas import Multitask, RunEvent

M = TypeVar("M", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8000"
STREAM_RETRIES = 3
"""How many times a dropped event stream is resumed (from the last event id) before giving up."""


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
    def _run_body(message: str, multitask: Multitask, background: bool) -> dict[str, Any]:
        return {"message": message, "multitask": multitask, "background": background}

    @staticmethod
    def _thread_body(agent: str | None, title: str | None, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"metadata": dict(metadata or {})}
        if agent is not None:
            body["agent"] = agent
        if title is not None:
            body["title"] = title
        return body

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

    @staticmethod
    def _event(data: str) -> RunEvent | None:
        """An SSE ``data`` payload → RunEvent (None for heartbeats)."""
        if not data:
            return None
        return RunEvent.model_validate(json.loads(data))


__all__ = ["STREAM_RETRIES", "APIError", "ClientBase"]
