"""The thread protocol's WebSocket when the thread's events cannot be read (the database gone mid-stream): an error
frame without exception text, then close code 1011 — never a socket left open and silent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from chatplane.service.app import create_app
from chatplane.service.langgraph import protocol_socket
from tests.conftest import make_settings


def test_an_unreadable_event_stream_ends_the_socket_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: Any) -> AsyncIterator[dict[str, Any]]:
        raise OSError("secret detail: connection to 10.0.0.5 refused")
        yield {}

    monkeypatch.setattr(protocol_socket, "thread_events", broken)
    with TestClient(create_app(make_settings())) as client:
        tid = client.post("/threads", json={}).json()["thread_id"]
        with client.websocket_connect(f"/threads/{tid}/stream/events") as ws:
            ws.send_json({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["values"]}})
            assert ws.receive_json()["type"] == "success"
            error = ws.receive_json()
            assert error["type"] == "error" and error["error"] and error["message"]
            assert "secret" not in str(error) and "10.0.0.5" not in str(error)
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1011
