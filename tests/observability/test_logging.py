"""Structured logs: JSON lines with the request id, user, thread and run; no secrets or bodies unless asked."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from chatplane.observability import context
from chatplane.observability.logging import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    configured_elsewhere,
    remove_logging,
)
from chatplane.service.auth import User
from tests.conftest import make_settings

SECRET = "sk-live-DO-NOT-LOG-0123456789"


@pytest.fixture
def log_stream() -> Iterator[Any]:
    """``log_stream(**settings)`` → a StringIO that chatplane's handler writes to (removed afterwards)."""
    root = logging.getLogger()
    level = root.level

    def install(**overrides: Any) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(make_settings(**overrides), stream=stream)
        return stream

    yield install
    remove_logging()
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _record(message: str, *args: Any, exc: BaseException | None = None, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("chatplane.test", logging.WARNING, __file__, 1, message, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    return record


def _raise_with_secret() -> BaseException:
    try:
        raise RuntimeError(f"upstream rejected key {SECRET}")
    except RuntimeError as exc:
        return exc


def test_a_json_line_has_the_time_level_and_context_and_describes_errors_without_their_text() -> None:
    scope: dict[str, Any] = {"state": {"user": User("alice", "key")}, "path_params": {"thread_id": "t-1"}}
    record = _record("stored %d things", 3, exc=_raise_with_secret(), status=503)
    tokens = context.bind_request("req-7", scope)
    try:
        assert ContextFilter().filter(record)
    finally:
        context.unbind_request(tokens)
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data.pop("time"))
    assert data == {
        "level": "warning",
        "logger": "chatplane.test",
        "message": "stored 3 things",
        "request_id": "req-7",
        "user": "alice",
        "thread_id": "t-1",
        "status": 503,
        "error": data["error"],
    }
    assert data["error"].startswith("RuntimeError at ") and SECRET not in line and "Traceback" not in line


def test_the_handler_adds_the_context_and_the_text_format_has_no_traceback(log_stream) -> None:
    stream = log_stream(log_format="text")
    scope: dict[str, Any] = {"state": {"user": User("alice", "key")}, "path_params": {"run_id": "r-9"}}
    tokens = context.bind_request("req-8", scope)
    try:
        logging.getLogger("chatplane.test").error("it failed", exc_info=_raise_with_secret())
    finally:
        context.unbind_request(tokens)
    text = stream.getvalue()
    assert "ERROR   chatplane.test: it failed" in text
    assert "request_id=req-8" in text and "user=alice" in text and "run_id=r-9" in text
    assert 'error="RuntimeError at' in text
    assert SECRET not in text and "Traceback" not in text
    assert TextFormatter().formatException((None, None, None)) == ""


async def test_a_log_line_carries_the_request_id_given_in_the_header(client_for, log_stream) -> None:
    stream = log_stream(log_format="json")
    client = await client_for(make_settings())
    headers = {"X-Request-ID": "trace-me-42", "Authorization": f"Bearer {SECRET}"}
    created = await client.post("/v1/threads", json={}, headers=headers)
    assert created.headers["x-request-id"] == "trace-me-42"
    thread_id = created.json()["thread_id"]
    response = await client.post(
        f"/v1/threads/{thread_id}/runs", json={"message": "my private words"}, headers={"X-Request-ID": "run-req-1"}
    )
    run_id = response.json()["run_id"]
    assert response.headers["x-request-id"] == "run-req-1"

    lines = json_lines(stream)
    access = [line for line in lines if line["logger"] == "chatplane.access"]
    assert {
        "request_id": "trace-me-42",
        "user": "local",
        "method": "POST",
        "path": "/v1/threads",
        "route": "/v1/threads",
        "status": 201,
    }.items() <= access[0].items()
    assert {"request_id": "run-req-1", "thread_id": thread_id, "status": 200}.items() <= access[1].items()
    (finished,) = [line for line in lines if line.get("run_id") == run_id and line["logger"] == "chatplane.runs"]
    assert {
        "level": "info",
        "request_id": "run-req-1",  # the run's line has the id of the request that started it
        "user": "local",
        "thread_id": thread_id,
        "status": "succeeded",
        "agent": "chat",
        "model": "fake:echo",
    }.items() <= finished.items()
    assert finished["input_tokens"] > 0 and finished["output_tokens"] > 0
    everything = stream.getvalue()
    assert "my private words" not in everything and SECRET not in everything


async def test_an_unusable_request_id_is_replaced(client_for) -> None:
    client = await client_for(make_settings())
    for given in ("has spaces in it", "x" * 200, "<script>", ""):
        answered = (await client.get("/healthz", headers={"X-Request-ID": given})).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", answered), given
    assert (await client.get("/healthz")).headers["x-request-id"] != answered


async def test_message_bodies_are_logged_only_when_content_logging_is_on(client_for, log_stream) -> None:
    for log_content in (False, True):
        stream = log_stream(log_format="json")
        client = await client_for(make_settings(log_content=log_content))
        thread_id = (await client.post("/v1/threads", json={})).json()["thread_id"]
        await client.post(f"/v1/threads/{thread_id}/runs", json={"message": "tell nobody"})
        contents = [line.get("content") for line in json_lines(stream) if "content" in line]
        if log_content:
            assert contents == ["tell nobody", "echo: tell nobody"]
        else:
            assert contents == [] and "tell nobody" not in stream.getvalue()


async def test_the_app_leaves_logging_alone_when_the_host_configured_it(client_for) -> None:
    assert configured_elsewhere()  # pytest's own handlers are on the root logger
    await client_for(make_settings(log_format="json"))
    assert not any(type(h).__name__ == "_ChatplaneHandler" for h in logging.getLogger().handlers)


def test_http_clients_do_not_log_a_line_per_model_call_at_info(log_stream) -> None:
    log_stream(log_level="info")
    for name in ("httpx", "httpcore", "httpx2", "httpcore2"):  # httpx2: the openai SDK's client
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)


_LINE_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ([A-Z]+) ")


async def test_a_text_line_cannot_be_forged_by_a_request(client_for, log_stream) -> None:
    """A path with a decoded ``%0A`` (and a header) neither starts a line nor adds a field of its own."""
    stream = log_stream(log_format="text")
    client = await client_for(make_settings())
    forged = "%0D%0A2030-01-01 00:00:00.000 ERROR   chatplane.runs: forged%1B[31m%E2%80%A8 [user=admin]"
    await client.get(f"/v1/threads/x{forged}", headers={"X-Request-ID": "req-1"})
    logging.getLogger("chatplane.test").warning("given %s", "a\nb", extra={"note": "x run_id=forged\n]"})
    lines = stream.getvalue().split("\n")[:-1]
    assert lines and all(_LINE_START.match(line) for line in lines), lines
    assert "ERROR" not in [_LINE_START.match(line).group(1) for line in lines]  # type: ignore[union-attr]
    (access,) = [line for line in lines if "chatplane.access" in line]
    assert "\\r\\n2030-01-01" in access and "\\u001b[31m\\u2028" in access
    (given,) = [line for line in lines if "chatplane.test" in line]
    assert given.endswith('given a\\nb  [note="x run_id=forged\\n]"]')
