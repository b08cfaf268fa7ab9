"""What storage cannot hold, and JSON a strict parser refuses, is a 422 at the edge on every route — never a 500.

On SQLite and PostgreSQL (the one that cannot store a NUL). Values are sent as raw JSON bytes, the way a client in
another language sends them (``\\u0000``, ``\\ud800``, ``NaN``).
"""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.conftest import make_settings

NUL, SURROGATE = "\\u0000", "\\ud800"


async def _send(client: httpx.AsyncClient, method: str, path: str, raw: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return await client.request(method, path, content=raw.encode() if raw is not None else None, headers=headers)


def _path_cases(thread_id: str) -> list[tuple[str, str, str | None]]:
    return [
        ("GET", "/v1/threads/a%00b", None),
        ("PATCH", "/v1/threads/a%00b", '{"title": "x"}'),
        ("DELETE", "/v1/threads/a%00b", None),
        ("GET", "/v1/threads/a%00b/messages", None),
        ("POST", "/v1/threads/a%00b/runs", '{"message": "hi"}'),
        ("GET", "/v1/runs/a%00b", None),
        ("GET", "/v1/runs/a%00b/stream", None),
        ("POST", "/v1/runs/a%00b/cancel", None),
        ("GET", "/history/a%00b", None),
        ("POST", "/reset?session_id=a%00b", None),
        ("GET", "/v1/threads?cursor=%00", None),
        ("GET", f"/v1/threads/{thread_id}/messages?cursor=1%00", None),
        ("GET", "/v1/usage?thread_id=a%00b", None),
    ]


def _body_cases(thread_id: str) -> list[tuple[str, str, str | None]]:
    bad: list[tuple[str, str, str | None]] = []
    for char in (NUL, SURROGATE):
        bad += [
            ("POST", "/v1/threads", f'{{"title": "a{char}b"}}'),
            ("POST", "/v1/threads", f'{{"metadata": {{"k": "a{char}b"}}}}'),
            ("POST", "/v1/threads", f'{{"metadata": {{"k{char}": 1}}}}'),
            ("POST", "/v1/threads", f'{{"metadata": {{"list": [[["a{char}"]]]}}}}'),
            ("PATCH", f"/v1/threads/{thread_id}", f'{{"title": "a{char}b"}}'),
            ("PATCH", f"/v1/threads/{thread_id}", f'{{"metadata": {{"k": "{char}"}}}}'),
            ("POST", f"/v1/threads/{thread_id}/runs", f'{{"message": "a{char}b"}}'),
            ("POST", "/chat", f'{{"user_id": "a", "message": "a{char}b"}}'),
        ]
    for constant in ("NaN", "Infinity", "-Infinity"):
        bad += [
            ("POST", "/v1/threads", f'{{"ttl_days": {constant}}}'),
            ("POST", "/v1/threads", f'{{"metadata": {{"x": {constant}}}}}'),
        ]
    bad.append(("POST", "/v1/threads", '{"metadata": {"deep": ' + "[" * 5000 + "]" * 5000 + "}}"))
    huge = "17401206548286191812609048576"  # beyond 64 bits: no database column holds it
    bad += [
        ("POST", "/v1/threads", '{"ttl_days": 1e400}'),  # a float that Python's parser turns into Infinity
        ("POST", "/v1/threads", f'{{"metadata": {{"n": {huge}}}}}'),
        ("POST", "/v1/assistants/search", f'{{"offset": {huge}}}'),
        ("GET", f"/v1/assistants?offset={huge}", None),
        ("GET", f"/v1/threads?limit=-{huge}", None),
        ("GET", f"/v1/threads/{thread_id}/messages?limit=1{'0' * 5000}", None),
    ]
    return bad


async def test_unstorable_text_and_non_json_numbers_are_422_on_every_route(
    client_for, persistent_storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await client_for(make_settings(storage_url=persistent_storage_url))
    thread_id = (await client.post("/v1/threads", json={"title": "t"})).json()["thread_id"]
    caplog.set_level(logging.WARNING)
    for method, path, raw in _path_cases(thread_id) + _body_cases(thread_id):
        response = await _send(client, method, path, raw)
        assert response.status_code == 422, (method, path, raw, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and error["message"], (method, path)
        assert "\x00" not in error["message"] and "\\u0000" not in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    thread = (await client.get(f"/v1/threads/{thread_id}")).json()
    assert (thread["title"], thread["metadata"]) == ("t", {})  # nothing of it was stored
    assert (await client.get(f"/v1/threads/{thread_id}/messages")).json()["messages"] == []


async def test_openai_routes_refuse_the_same_with_their_400(client_for, persistent_storage_url: str) -> None:
    client = await client_for(make_settings(storage_url=persistent_storage_url))
    for raw in (
        '{"model": "chat", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
        '{"model": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\u0000"}]}]}',
        '{"model": "chat", "temperature": NaN, "messages": [{"role": "user", "content": "x"}]}',
    ):
        response = await _send(client, "POST", "/v1/chat/completions", raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["type"] == "invalid_request_error"


async def test_ordinary_text_passes_untouched(client_for) -> None:
    """Escapes, control characters other than NUL, paired surrogates (an emoji) and numbers are all fine."""
    client = await client_for(make_settings())
    raw = (
        '{"title": "tab\\there \\ud83d\\ude00 \\u00e9", '
        '"metadata": {"n": 1.5e300, "s": "NaN", "i": "Infinity", "big": 9223372036854775807, '
        '"digits": "1740120654828619181"}}'
    )
    response = await _send(client, "POST", "/v1/threads", raw)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "tab\there \U0001f600 é"
    assert response.json()["metadata"] == {
        "n": 1.5e300,
        "s": "NaN",
        "i": "Infinity",
        "big": 2**63 - 1,
        "digits": "1740120654828619181",
    }
