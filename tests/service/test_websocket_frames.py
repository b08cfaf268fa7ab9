"""Every WebSocket frame gets an answer, an error frame or a close code — never an exception in the server's log —
and every frame counts against the per-minute limit. A real server with the ``websockets`` client, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chatplane.storage.engine import open_storage
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e


async def _key(storage_url: str) -> str:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        return (await ApiKeyStore(storage.db).create("alice"))[1]


@pytest.fixture
def served(server_factory, persistent_storage_url: str) -> tuple[Any, dict[str, str]]:
    auth = {"Authorization": f"Bearer {asyncio.run(_key(persistent_storage_url))}"}
    server = server_factory(
        {
            "CHATPLANE_MODEL": "fake:echo",
            "CHATPLANE_STORAGE_URL": persistent_storage_url,
            "CHATPLANE_RATE_LIMIT_PER_MINUTE": "6",
        }
    )
    return server, auth


def _thread(server: Any, auth: dict[str, str]) -> str:
    return str(httpx.post(f"{server.url}/v1/threads", json={}, headers=auth).json()["thread_id"])


async def _next_error(ws: ClientConnection) -> dict[str, Any]:
    while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "error":
        pass
    return frame["error"]  # type: ignore[no-any-return]


async def _closed_with(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    error = await _next_error(ws)
    await asyncio.wait_for(ws.wait_closed(), 10)
    return error, ws.close_code


def _url(server: Any, thread_id: str) -> str:
    return server.url.replace("http://", "ws://") + f"/v1/threads/{thread_id}/ws"


async def _refused_frames(server: Any, auth: dict[str, str], thread_id: str) -> list[str]:
    """Frames answered with an error frame, the socket kept: their error codes."""
    codes = []
    async with connect(_url(server, thread_id), additional_headers=auth) as ws:
        for raw in (
            '{"type": "attach", "run_id": "a\\u0000b"}',
            '{"type": "cancel", "run_id": "a\\ud800b"}',
            '{"type": "message", "message": "hi", "extra": NaN}',
            '{"type": "message", "message": "a\\u0000b"}',
            '{"type": "attach", "after": ' + "[" * 3000 + "]" * 3000 + "}",
        ):
            await ws.send(raw)
            codes.append((await _next_error(ws))["code"])
    return codes


async def _closing_frames(server: Any, auth: dict[str, str], thread_id: str) -> list[tuple[str, int | None]]:
    closed = []
    for frame in (b'{"type": "message", "message": "hi"}', "not json"):
        async with connect(_url(server, thread_id), additional_headers=auth) as ws:
            await ws.send(frame)
            error, code = await _closed_with(ws)
            closed.append((error["code"], code))
    async with connect(_url(server, "a%00b"), additional_headers=auth) as ws:
        error, code = await _closed_with(ws)
        closed.append((error["code"], code))
    return closed


def test_hostile_frames_get_an_error_frame_or_a_close_code_never_an_exception(served) -> None:
    server, auth = served
    thread_id = _thread(server, auth)
    assert asyncio.run(_refused_frames(server, auth, thread_id)) == ["invalid_request"] * 5
    assert asyncio.run(_closing_frames(server, auth, thread_id)) == [
        ("invalid_request", 1003),  # a binary frame
        ("invalid_request", 1003),  # text that is not JSON
        ("invalid_request", 4422),  # a NUL in the thread id
    ]
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI" not in log and "internal_error" not in log


def test_attach_and_cancel_frames_count_against_the_per_minute_limit(served, tmp_path: Path) -> None:
    server, auth = served
    thread_id = _thread(server, auth)  # one request of six

    async def frames_until_limited() -> int:
        sent = 0
        async with connect(_url(server, thread_id), additional_headers=auth) as ws:  # two
            for kind in ("attach", "cancel") * 5:
                await ws.send(json.dumps({"type": kind, "run_id": "nope"}))
                sent += 1
                try:
                    error = await _next_error(ws)
                except ConnectionClosed:
                    break
                if error["code"] == "rate_limited":
                    return sent
        return -1

    assert asyncio.run(frames_until_limited()) == 5
