"""Reading chatplane's SSE run streams in tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse


def iter_events(
    client: httpx.Client, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Parsed RunEvents (dicts) from an SSE endpoint, as they arrive."""
    with connect_sse(client, method, url, headers=headers or {}, **kwargs) as source:
        source.response.raise_for_status()
        for sse in source.iter_sse():
            if not sse.data:
                continue  # a heartbeat
            event = json.loads(sse.data)
            assert sse.id == str(event["id"]) and sse.event == event["type"]
            yield event
