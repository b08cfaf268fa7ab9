"""``/mcp``: the official MCP client (the mcp SDK's ``streamable_http_client`` + ``ClientSession``) lists the
assistants a caller may use as tools, calls one, and continues the conversation; another user reaches nothing of
the first's; bad input gets a clear tool error; no credential, a 401. In process, plus one real uvicorn process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from chatplane.llm.fake import ScriptedChatModel
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings

BASE = "http://127.0.0.1"


def _counting_reply(prompt: list[BaseMessage]) -> str:
    """Which user message of the conversation this is, and what it said: proof the thread is continued."""
    said = [m.content for m in prompt if isinstance(m, HumanMessage)]
    return f"#{len(said)}: {said[-1]}"


def _model() -> ScriptedChatModel:
    return ScriptedChatModel(replies=[_counting_reply])


@asynccontextmanager
async def mcp_session(
    http: httpx.AsyncClient, url: str = f"{BASE}/mcp", session_id: str | None = None
) -> AsyncIterator[ClientSession]:
    """The SDK's client on ``http``; ``session_id``: as if the server had given it this id (it keeps no session:
    any id a client sends back is one)."""
    if session_id is not None:
        http = _with_session_id(http, session_id)
    async with streamable_http_client(url, http_client=http) as (read, write, _), ClientSession(read, write) as s:
        await s.initialize()
        yield s


def _with_session_id(http: httpx.AsyncClient, session_id: str) -> httpx.AsyncClient:
    async def force(request: httpx.Request) -> None:
        request.headers["mcp-session-id"] = session_id

    return httpx.AsyncClient(
        transport=http._transport, base_url=http.base_url, headers=http.headers, event_hooks={"request": [force]}
    )


def _asgi_client(client: httpx.AsyncClient, key: str | None = None, base: str = BASE) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    app = client.app  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base, headers=headers, timeout=30)


async def _keys(client: httpx.AsyncClient, *users: str) -> dict[str, str]:
    store = ApiKeyStore(client.app.state.agent.storage.db)  # type: ignore[attr-defined]
    return {user: (await store.create(user))[1] for user in users}


_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
_ACCEPT = {"accept": "application/json, text/event-stream"}


def _text(result: Any) -> str:
    return "".join(block.text for block in result.content)


async def test_tools_are_the_assistants_and_a_session_continues_its_conversation(client_for, tmp_path: Path) -> None:
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path / 'db'}"), model=_model())
    async with _asgi_client(client) as http, mcp_session(http) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert list(tools) == ["chat", "react", "multi"]
        assert tools["chat"].inputSchema["required"] == ["message"]
        assert set(tools["chat"].inputSchema["properties"]) == {"message", "thread"}
        assert tools["chat"].description

        first = await session.call_tool("chat", {"message": "hello"})
        assert not first.isError and _text(first) == "#1: hello"
        second = await session.call_tool("chat", {"message": "again"})
        assert _text(second) == "#2: again"  # the session's thread: the first message is in the prompt
        thread_id = first.structuredContent["thread_id"]
        assert second.structuredContent["thread_id"] == thread_id
        other = await session.call_tool("react", {"message": "hi"})
        assert _text(other) == "#1: hi"  # each assistant its own conversation
        assert other.structuredContent["thread_id"] != thread_id

    messages = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["messages"]
    assert [m["content"] for m in messages] == ["hello", "#1: hello", "again", "#2: again"]

    async with _asgi_client(client) as http, mcp_session(http) as session:
        fresh = await session.call_tool("chat", {"message": "new session"})
        assert _text(fresh) == "#1: new session"  # a new session, a new conversation
        named = await session.call_tool("chat", {"message": "back", "thread": thread_id})
        assert _text(named) == "#3: back"  # … unless it names a thread of the caller's
        assert named.structuredContent["thread_id"] == thread_id


async def test_own_assistants_are_tools_of_their_owner_only(client_for, tmp_path: Path) -> None:
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path / 'db'}"), model=_model())
    keys = await _keys(client, "alice", "bob")
    async with _asgi_client(client, keys["alice"]) as alice, _asgi_client(client, keys["bob"]) as bob:
        created = await alice.post(
            "/v1/assistants", json={"graph_id": "chat", "assistant_id": "alices-helper", "description": "Alice's"}
        )
        assert created.status_code == 201
        async with mcp_session(alice) as alices, mcp_session(bob) as bobs:
            alice_tools = {t.name: t for t in (await alices.list_tools()).tools}
            assert list(alice_tools) == ["chat", "react", "multi", "alices-helper"]
            assert alice_tools["alices-helper"].description.startswith("Alice's")
            assert [t.name for t in (await bobs.list_tools()).tools] == ["chat", "react", "multi"]

            answer = await alices.call_tool("alices-helper", {"message": "mine"})
            assert _text(answer) == "#1: mine"
            alices_thread = answer.structuredContent["thread_id"]

            # Bob cannot call Alice's assistant, nor reach her thread: the refusals of what does not exist.
            refused = await bobs.call_tool("alices-helper", {"message": "hers?"})
            missing = await bobs.call_tool("nobodys-helper", {"message": "?"})
            assert refused.isError and missing.isError
            assert _text(refused) == _text(missing).replace("nobodys-helper", "alices-helper")
            not_his = await bobs.call_tool("chat", {"message": "x", "thread": alices_thread})
            nowhere = await bobs.call_tool("chat", {"message": "x", "thread": "no-such-thread"})
            assert not_his.isError and _text(not_his) == _text(nowhere)

        # Nor through Alice's MCP session id: the same id is a conversation of Bob's own.
        session_id = await _session_id_of(client, keys["alice"])
        async with mcp_session(alice, session_id=session_id) as as_alice:
            assert _text(await as_alice.call_tool("chat", {"message": "one"})) == "#1: one"
        async with mcp_session(bob, session_id=session_id) as as_bob:
            his = await as_bob.call_tool("chat", {"message": "two"})
        assert _text(his) == "#1: two"
        # Alice's thread holds only her own turn.
        messages = (await alice.get(f"/v1/threads/{alices_thread}/messages")).json()["messages"]
        assert [m["content"] for m in messages] == ["mine", "#1: mine"]


async def _session_id_of(client: httpx.AsyncClient, key: str) -> str:
    """Open a session by hand (the SDK's client keeps its id to itself): the id the server gave it."""
    async with _asgi_client(client, key) as http:
        response = await http.post(
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            },
            headers={"accept": "application/json, text/event-stream"},
        )
        assert response.status_code == 200
        return response.headers["mcp-session-id"]


async def test_bad_arguments_get_clear_tool_errors(client_for) -> None:
    client = await client_for(make_settings(), model=_model())
    async with _asgi_client(client) as http, mcp_session(http) as session:
        cases = {
            "missing message": ("chat", {}, "`message` must be a non-empty string"),
            "blank message": ("chat", {"message": "  "}, "`message` must be a non-empty string"),
            "wrong type": ("chat", {"message": 42}, "`message` must be a non-empty string"),
            "unknown argument": ("chat", {"message": "x", "colour": "red"}, "Unknown argument `colour`"),
            "unknown tool": ("nope", {"message": "x"}, "No tool 'nope'"),
            "thread not a string": ("chat", {"message": "x", "thread": 7}, "`thread` must be a thread id"),
            "too long": ("chat", {"message": "x" * 40_000}, "invalid_request"),
        }
        for name, (tool, arguments, expected) in cases.items():
            result = await session.call_tool(tool, arguments)
            assert result.isError, name
            assert expected in _text(result), (name, _text(result))
        assert not (await session.call_tool("chat", {"message": "still fine"})).isError


async def test_a_credential_is_required_once_keys_exist_and_local_access_stays_on_loopback(
    client_for, tmp_path: Path
) -> None:
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path / 'db'}"), model=_model())
    initialize, accept = _INITIALIZE, _ACCEPT
    # No key yet: the local user, but only on a loopback name (a DNS-rebinding page cannot use it).
    async with _asgi_client(client, base="http://evil.example") as foreign:
        refused = await foreign.post("/mcp", json=initialize, headers=accept)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    async with _asgi_client(client) as local:
        from_page = await local.post("/mcp", json=initialize, headers={**accept, "origin": "http://evil.example"})
        assert from_page.status_code == 403
        opened = await local.post("/mcp", json=initialize, headers=accept)
        assert opened.status_code == 200 and len(opened.headers["mcp-session-id"]) == 32
        for method in ("GET", "DELETE"):  # no stream of the server's own, no session state to end
            refused = await local.request(method, "/mcp", headers={"mcp-session-id": opened.headers["mcp-session-id"]})
            assert refused.status_code == 405 and refused.headers["allow"] == "POST"
            assert refused.json()["error"]["code"] == "method_not_allowed"

    keys = await _keys(client, "alice")
    async with _asgi_client(client) as anonymous:
        response = await anonymous.post("/mcp", json=initialize, headers=accept)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthorized"
        wrong = await anonymous.post("/mcp", json=initialize, headers={**accept, "authorization": "Bearer cp_nope"})
        assert wrong.status_code == 401
    async with (
        _asgi_client(client, keys["alice"], base="http://mcp.example.com") as keyed,
        mcp_session(keyed, "http://mcp.example.com/mcp") as session,
    ):  # with a credential, any host name (a server behind a proxy)
        assert [t.name for t in (await session.list_tools()).tools] == ["chat", "react", "multi"]


class _RoundRobin(httpx.AsyncBaseTransport):
    """Each request to the next of several apps: a client whose connections land on different processes."""

    def __init__(self, apps: list[Any]) -> None:
        self._transports = [httpx.ASGITransport(app=app) for app in apps]
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await self._transports[self.calls % len(self._transports)].handle_async_request(request)


async def test_a_browser_page_of_an_allowed_origin_may_use_it(client_for) -> None:
    """CORS: the session and protocol headers may be sent and the session id read by a page of an origin in
    ``CHATPLANE_CORS_ORIGINS`` (the local user's origin check lets it in too)."""
    page = "http://app.example"
    client = await client_for(make_settings(cors_origins=[page]), model=_model())
    async with _asgi_client(client) as http:
        preflight = await http.options(
            "/mcp",
            headers={
                "origin": page,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, mcp-session-id, mcp-protocol-version",
            },
        )
        assert preflight.status_code == 200
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "mcp-session-id" in allowed and "mcp-protocol-version" in allowed
        opened = await http.post("/mcp", json=_INITIALIZE, headers={**_ACCEPT, "origin": page})
        assert opened.status_code == 200
        assert "mcp-session-id" in opened.headers["access-control-expose-headers"].lower()


@pytest.mark.postgres
async def test_a_session_goes_on_in_whichever_process_a_request_reaches(client_for, pg_url: str) -> None:
    """Two servers on one PostgreSQL database, the requests of one MCP session alternating between them: the
    conversation goes on (the session lives in no process)."""
    settings = make_settings(storage_url=pg_url)
    one, two = await client_for(settings, model=_model()), await client_for(settings, model=_model())
    transport = _RoundRobin([one.app, two.app])  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http, mcp_session(http) as session:
        answers = [_text(await session.call_tool("chat", {"message": word})) for word in ("a", "b", "c", "d")]
    assert answers == ["#1: a", "#2: b", "#3: c", "#4: d"]
    assert transport.calls >= 6


@pytest.mark.e2e
async def test_mcp_over_a_real_server(server_factory, tmp_path: Path) -> None:
    """The official client against ``chatplane serve``: SSE responses over real HTTP, a session kept by the
    server, the conversation continued, and the answer in the thread's history over the REST API."""
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path / 'db'}"})
    async with httpx.AsyncClient(timeout=30) as http, mcp_session(http, f"{server.url}/mcp") as session:
        assert "chat" in [t.name for t in (await session.list_tools()).tools]
        first = await session.call_tool("chat", {"message": "one"})
        second = await session.call_tool("chat", {"message": "two"})
        assert (_text(first), _text(second)) == ("echo: one", "echo: two")
        thread_id = second.structuredContent["thread_id"]
        assert first.structuredContent["thread_id"] == thread_id
        bad = await session.call_tool("chat", {"message": ""})
        assert bad.isError
        messages = (await http.get(f"{server.url}/v1/threads/{thread_id}/messages")).json()["messages"]
        assert [m["content"] for m in messages] == ["one", "echo: one", "two", "echo: two"]
