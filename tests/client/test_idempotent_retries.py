"""The SDK sends a run-creating request again after a lost answer or a 503, with the same Idempotency-Key: the
message is in the thread once, and the caller gets its answer."""

from __future__ import annotations

from typing import Any

import httpx

from chatplane.client import AsyncClient, Client


class LosesFirstAnswers(httpx.HTTPTransport):
    """Forwards every request, but loses the answer to the first ``lose`` runs created (as a dropped connection would):
    the server did the work, the client never heard."""

    def __init__(self, lose: int) -> None:
        super().__init__()
        self.lose = lose
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/runs"):
            self.keys.append(request.headers.get("Idempotency-Key"))
            if self.lose > 0:
                self.lose -= 1
                response.read()
                raise httpx.ReadError("connection lost", request=request)
        return response


class AsyncAnswers503(httpx.AsyncHTTPTransport):
    """Answers the first POST with a 503 without forwarding it (the database was down)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not self.refused:
            self.refused = True
            body = {"error": {"code": "storage_unavailable", "message": "try again"}}
            return httpx.Response(503, json=body, request=request)
        return await super().handle_async_request(request)


def _server(server_factory: Any) -> str:
    return str(server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"}).url)


def test_a_lost_answer_is_asked_again_and_the_message_is_sent_once(server_factory) -> None:
    url = _server(server_factory)
    transport = LosesFirstAnswers(lose=2)
    with Client(url, http_client=httpx.Client(base_url=url, transport=transport, timeout=30)) as client:
        tid = client.create_thread().thread_id
        run = client.run(tid, "only once")
        assert run.output is not None and run.output.content == "echo: only once"
        messages = [m.content for m in client.messages(tid).messages]
        assert messages == ["only once", "echo: only once"]
        chat = client.chat("seed once", user_id="local", session_id="s1")
        assert chat.response == "echo: seed once"
    assert len(transport.keys) == 3 and len(set(transport.keys)) == 1 and transport.keys[0]  # one key, three sends


async def test_a_503_is_sent_again_with_the_same_key(server_factory) -> None:
    url = _server(server_factory)
    async with httpx.AsyncClient(base_url=url, timeout=30) as plain:
        tid = (await plain.post("/v1/threads", json={})).json()["thread_id"]
    transport = AsyncAnswers503()
    http = httpx.AsyncClient(base_url=url, transport=transport, timeout=30)
    async with AsyncClient(url, http_client=http) as client:
        events = [e async for e in client.stream(tid, "streamed once")]
        assert events[-1].type == "run_completed"
        assert [m.content for m in (await client.messages(tid)).messages] == ["streamed once", "echo: streamed once"]
