"""Close the classes, not the instances: every route of the app (walked from its OpenAPI schema) and every WebSocket
frame type, with each class of hostile value — NUL, lone surrogates, control characters, very long strings, deeply
nested values, wrong types, huge integers, invalid UTF-8 in paths, binary frames — on SQLite and PostgreSQL.

Each gets a 4xx with the stable error body (``{"error": {"code", "message"}}``; OpenAI's shape on ``/v1/chat/...`` and
``/v1/models``), an answer (what is storable may be accepted), or on a socket an error frame / close code — never a
5xx, never a logged exception. In process (``client_for``), a few thousand requests, fast.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings

# Raw JSON values, as a client in another language sends them.
TEXT_CLASSES = {
    "nul": '"a\\u0000b"',
    "surrogate": '"a\\ud800b"',
    "control": '"a\\u0001\\u001b[31m\\u007f\\u2028b"',
    "long": '"' + "x" * 70_000 + '"',
}
VALUE_CLASSES = {
    **TEXT_CLASSES,
    "deep": "[" * 3000 + "]" * 3000,
    "deep_object": '{"a":' * 500 + "1" + "}" * 500,
    "object": '{"k": "v"}',
    "list": '["x", 1]',
    "bool": "true",
    "null": "null",
    "huge_int": "1" + "0" * 400,
    "huge_float": "1e400",
    "negative_huge": "-17401206548286191812609048576",
}
WHOLE_BODIES = {
    "array": "[]",
    "string": '"x"',
    "number": "1",
    "deep": "[" * 5000 + "]" * 5000,
    "nan": '{"x": NaN}',
    "not_json": "{",
    "invalid_utf8": b'{"message": "\xff\xfe"}',
}
# Path and query values, percent-encoded as they travel.
URL_CLASSES = {
    "nul": "a%00b",
    "surrogate": "a%ED%A0%80b",
    "invalid_utf8": "a%FF%FEb",
    "control": "a%01%1B%7Fb",
    "newline": "a%0D%0AX-Forged:%201",
    "long": "x" * 5000,
    "huge_int": "1" + "0" * 400,
    "negative": "-1",
    "dots": "..%2F..%2Fetc",
}
SAMPLES: dict[str, Any] = {
    "message": "hi",
    "messages": [{"role": "user", "content": "hi"}],
    "model": "chatplane-chat",
    "graph_id": "chat",
    "assistant_id": "chat",
    "user_id": "u",
}
OPENAI_SHAPED = ("/v1/chat/completions", "/v1/models")


def _schema(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node and not node.get("properties"):
            return next((_schema(spec, n) for n in node[key] if "$ref" in n or "properties" in n), node)
    return node


def _sample(name: str, node: dict[str, Any]) -> Any:
    if name in SAMPLES:
        return SAMPLES[name]
    kind = node.get("type")
    return {"string": "x", "integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(kind, "x")


def _bodies(spec: dict[str, Any], operation: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Hostile bodies: each property of the body's schema with each value class (the required others plausible),
    and whole bodies of the wrong shape."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return []
    schema = _schema(spec, content.get("schema", {}))
    properties = {k: _schema(spec, v) for k, v in (schema.get("properties") or {}).items()}
    base = {k: _sample(k, properties[k]) for k in schema.get("required", []) if k in properties}
    bodies = [(f"body:{name}", raw if isinstance(raw, bytes) else raw.encode()) for name, raw in WHOLE_BODIES.items()]
    for prop in properties:
        others = json.dumps({k: v for k, v in base.items() if k != prop})[1:-1]
        for name, raw in VALUE_CLASSES.items():
            body = "{" + (others + ", " if others else "") + f'"{prop}": {raw}' + "}"
            bodies.append((f"{prop}:{name}", body.encode()))
    return bodies


def _url(path: str, real: dict[str, str], hostile: str | None, value: str) -> str:
    """``path`` with ``hostile`` (a parameter's name) set to ``value``, every other parameter to a real id."""
    for name in re.findall(r"{(\w+)}", path):
        path = path.replace("{" + name + "}", value if name == hostile else real.get(name, "chat"))
    return path


def _cases(spec: dict[str, Any], real: dict[str, str]) -> list[tuple[str, str, str, bytes | None]]:
    """(label, method, url, body): one hostile thing per request, everything else real or plausible."""
    cases: list[tuple[str, str, str, bytes | None]] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            params = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]

            def url(hostile: str | None = None, value: str = "", query: str = "", at: str = path) -> str:
                return _url(at, real, hostile, value) + query

            for param in params:
                for name, value in URL_CLASSES.items():
                    if param["in"] == "path":
                        cases.append((f"{param['name']}:{name}", method, url(param["name"], value), None))
                    else:
                        cases.append((f"?{param['name']}:{name}", method, url(query=f"?{param['name']}={value}"), None))
            for label, body in _bodies(spec, operation):
                cases.append((label, method, url(), body))
    return cases


def _stable_error(path: str, response: httpx.Response) -> bool:
    """Chatplane's error body, or OpenAI's on its routes (a path that matches no route is chatplane's 404)."""
    error = response.json().get("error")
    if not isinstance(error, dict):
        return False
    shapes = [("code", "message")] + ([("message", "type", "code")] if path.startswith(OPENAI_SHAPED) else [])
    return any(all(isinstance(error.get(k), str) and error[k] for k in keys) for keys in shapes)


async def _real_ids(client: httpx.AsyncClient) -> dict[str, str]:
    thread = (await client.post("/v1/threads", json={"title": "t"})).json()["thread_id"]
    run = (await client.post(f"/v1/threads/{thread}/runs", json={"message": "hi"})).json()["run_id"]
    return {"thread_id": thread, "run_id": run, "session_id": "s1", "assistant_id": "chat", "model": "chatplane-chat"}


async def test_every_route_refuses_every_hostile_class_with_a_stable_4xx(
    client_for, persistent_storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(storage_url=persistent_storage_url, rate_limit_per_minute=0)
    client = await client_for(settings)
    spec = client.app.openapi()  # type: ignore[attr-defined]
    real = await _real_ids(client)
    caplog.set_level(logging.WARNING)
    failures = []
    cases = _cases(spec, real)
    for label, method, url, body in cases:
        headers = {"content-type": "application/json"} if body is not None else {}
        response = await client.request(method.upper(), url, content=body, headers=headers)
        if response.status_code >= 500 or (response.status_code >= 400 and not _stable_error(url, response)):
            failures.append((method, url[:120], label, response.status_code, response.text[:200]))
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failures, "\n".join(map(str, failures))
    assert not logged, [r.getMessage()[:300] for r in logged[:10]]
    assert len(cases) > 500


WS_FRAMES: dict[str, dict[str, Any]] = {
    "auth": {"type": "auth", "token": "x"},
    "message": {"type": "message", "message": "hi", "multitask": "enqueue", "idempotency_key": None},
    "cancel": {"type": "cancel", "run_id": "r"},
    "resume": {"type": "resume", "run_id": "r", "decisions": [{"type": "approve"}]},
    "attach": {"type": "attach", "run_id": "r", "after": 0},
    "unknown": {"type": "unknown"},
}


def _ws_frames(run_id: str) -> list[tuple[str, str]]:
    """(label, raw frame): each field of each frame type with each value class; whole frames of the wrong shape."""
    frames = [(f"frame:{k}", raw) for k, raw in WHOLE_BODIES.items() if isinstance(raw, str) and k != "not_json"]
    for kind, frame in WS_FRAMES.items():
        plausible = {k: (run_id if k == "run_id" else v) for k, v in frame.items() if v is not None}
        for field in frame:
            others = json.dumps({k: v for k, v in plausible.items() if k != field})[1:-1]
            for name, raw in VALUE_CLASSES.items():
                body = "{" + (others + ", " if others else "") + f'"{field}": {raw}}}'
                frames.append((f"{kind}.{field}:{name}", body))
    return frames


def test_every_websocket_frame_type_refuses_every_hostile_class(
    persistent_storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from chatplane.service.app import create_app

    settings = make_settings(storage_url=persistent_storage_url, rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as client:
        thread_id = client.post("/v1/threads", json={}).json()["thread_id"]
        run_id = client.post(f"/v1/threads/{thread_id}/runs", json={"message": "hi"}).json()["run_id"]
        caplog.set_level(logging.WARNING)
        answers: dict[str, str] = {}
        frames = _ws_frames(run_id)
        with client.websocket_connect(f"/v1/threads/{thread_id}/ws") as ws, _Reader(ws) as reader:
            for label, raw in frames:
                ws.send_text(raw)
                answers[label] = reader.answer()
        closed = []
        for frame in (b'{"type": "message", "message": "hi"}', "not json", '{"type": "message"'):
            with client.websocket_connect(f"/v1/threads/{thread_id}/ws") as ws:
                ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_text(frame)
                error = ws.receive_json()["error"]["code"]
                try:
                    ws.receive_json()
                except WebSocketDisconnect as exc:
                    closed.append((error, exc.code))
        for path_value in ("a%00b", "a%ED%A0%80b", "a%FF", "x" * 5000):
            with client.websocket_connect(f"/v1/threads/{path_value}/ws") as ws:
                error = ws.receive_json()["error"]["code"]
                with pytest.raises(WebSocketDisconnect) as refused:
                    ws.receive_json()
                closed.append((error, refused.value.code))
    assert len(answers) == len(frames) > 150
    unexpected = {label: code for label, code in answers.items() if code not in _FRAME_ANSWERS}
    assert not unexpected, unexpected
    taken = {label: code for label, code in answers.items() if code in _TAKEN and label.split(":")[1] in _NEVER_TAKEN}
    assert not taken, taken  # a wrong type is refused, never read as something else
    assert {code for _, code in closed[:3]} == {1003}, closed
    assert all(4400 <= code < 4500 for _, code in closed[3:]), closed
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, [r.getMessage()[:300] for r in logged[:10]]


_TAKEN = {"accepted", "run", "events"}
_NEVER_TAKEN = {"nul", "surrogate", "deep", "deep_object", "object", "list", "bool", "huge_int", "huge_float"}
_FRAME_ANSWERS = {"invalid_request", "run_not_found", "run_state_conflict", "thread_busy", "accepted", "run", "events"}


class _Reader:
    """Reads a test socket with a time limit: an ``attach`` that is accepted answers with events only."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.pool = ThreadPoolExecutor(1)
        self.pending: Future[Any] | None = None

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def answer(self, quiet_s: float = 1.0, first_s: float = 20.0) -> str:
        """The frame's answer: its type, an error's code, ``events`` (a run's events only) or ``silent``. Every
        frame gets an answer, so the first one is waited for long (a loaded machine is slow to parse a deeply
        nested frame); once events come, ``quiet_s`` without one ends them."""
        saw_events = False
        while True:
            self.pending = self.pending or self.pool.submit(self.ws.receive_json)
            try:
                frame = self.pending.result(timeout=quiet_s if saw_events else first_s)
            except TimeoutError:
                return "events" if saw_events else "silent"
            self.pending = None
            if frame["type"] != "event":
                return str(frame["error"]["code"] if frame["type"] == "error" else frame["type"])
            saw_events = True
