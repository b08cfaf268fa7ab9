"""The Python SDK (sync and async) against a real server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from chatplane.client import (
    APIConnectionError,
    AsyncClient,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
)
from tests.servers import free_port
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e
REPLY = " ".join(f"w{i}" for i in range(40))


@pytest.fixture
def server(server_factory):
    return server_factory({"CHATPLANE_MODEL": f"fake:{REPLY}?token_delay=0.03", "CHATPLANE_STORAGE_URL": "memory://"})


def test_sync_client_covers_threads_runs_and_streaming(server) -> None:
    with Client(server.url) as client:
        assert "chat" in [a.name for a in client.agents().agents]
        thread = client.create_thread(title="sdk", metadata={"a": 1})
        assert client.get_thread(thread.thread_id).title == "sdk"
        assert client.update_thread(thread.thread_id, title="renamed").title == "renamed"

        run = client.run(thread.thread_id, "hello")
        assert run.status == "succeeded" and run.output is not None and run.output.content == REPLY

        events = list(client.stream(thread.thread_id, "again"))
        assert events[0].type == "run_started" and events[-1].type == "run_completed"
        assert "".join(e.data["text"] for e in events if e.type == "token") == REPLY
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        replay = list(client.attach(events[0].run_id, after=3))
        assert [e.id for e in replay] == [e.id for e in events[3:]]

        started = client.start_run(thread.thread_id, "third")
        with pytest.raises(ConflictError) as busy:
            client.run(thread.thread_id, "too soon")
        assert busy.value.code == "thread_busy"
        cancelled = client.cancel_run(started.run_id)
        assert cancelled.status == "cancelled"

        messages = client.messages(thread.thread_id).messages
        assert [m.role for m in messages] == ["user", "assistant"] * 3
        assert messages[-1].status == "cancelled"
        assert [t.thread_id for t in client.iter_threads(page_size=1)] == [thread.thread_id]

        client.delete_thread(thread.thread_id)
        with pytest.raises(NotFoundError) as missing:
            client.get_thread(thread.thread_id)
        assert missing.value.code == "thread_not_found"
        with pytest.raises(InvalidRequestError):
            client.create_thread(agent="no-such-agent")

        assert client.chat("hi", user_id="u").response == REPLY
        assert client.history("session-u").messages == ["hi", REPLY]
        client.reset("session-u")


async def test_async_client_covers_the_same_ground(server) -> None:
    async with AsyncClient(server.url) as client:
        thread = await client.create_thread()
        run = await client.run(thread.thread_id, "hello")
        assert run.output is not None and run.output.content == REPLY
        events = [e async for e in client.stream(thread.thread_id, "stream")]
        assert events[-1].type == "run_completed"
        assert sum(1 for e in events if e.type == "token") == 40
        assert [t.thread_id async for t in client.iter_threads()] == [thread.thread_id]
        with pytest.raises(NotFoundError):
            await client.get_run("nope")
        assert (await client.chat("hi", user_id="u")).session_id == "session-u"


def test_a_dropped_stream_is_resumed_without_losing_or_repeating_events(server) -> None:
    """A proxy between client and server cuts every connection once, mid-stream."""
    loop = asyncio.new_event_loop()
    proxy = TcpProxy("127.0.0.1", server.port)
    proxy.port = free_port()
    ready = threading.Event()

    def run_proxy() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run_proxy, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        with Client(f"http://127.0.0.1:{proxy.port}") as client:
            tid = client.create_thread().thread_id
            events = []
            for event in client.stream(tid, "go"):
                events.append(event)
                if len(events) == 8:  # cut the connection, then let new ones through again
                    asyncio.run_coroutine_threadsafe(proxy.cut(), loop).result(5)
                    asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(5)
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert events[-1].type == "run_completed"
        assert "".join(e.data["text"] for e in events if e.type == "token") == REPLY
        deadline = time.monotonic() + 10  # the access line is written when the re-attached stream has closed
        while f"/v1/runs/{events[0].run_id}/stream" not in server.log():  # it really re-attached
            assert time.monotonic() < deadline, "no re-attach request in the server's access log"
            time.sleep(0.1)
    finally:
        asyncio.run_coroutine_threadsafe(proxy.cut(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_errors_map_to_exceptions(server_factory) -> None:
    failing = server_factory({"CHATPLANE_MODEL": "fake:echo?fail=error", "CHATPLANE_STORAGE_URL": "memory://"})
    with Client(failing.url) as client:
        tid = client.create_thread().thread_id
        with pytest.raises(ServerError) as raised:
            client.run(tid, "hi")
        assert raised.value.status == 502 and raised.value.code == "model_error" and raised.value.run_id
        events = list(client.stream(tid, "again"))
        assert events[-1].type == "run_failed" and events[-1].data["error"]["code"] == "model_error"
    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(APIConnectionError):
        nowhere.agents()


def test_tool_approval_through_an_assistant_is_answered_with_decisions(server_factory) -> None:
    calc = 'tool:calculator:{"expression":"1234+4321"}|It is 5555.'
    server = server_factory({"CHATPLANE_MODEL": f"fake:{calc}", "CHATPLANE_STORAGE_URL": "memory://"})
    with Client(server.url) as client:
        careful = client.create_assistant("react", context={"approve_tools": ["calculator"]})
        tid = client.create_thread(agent=careful.assistant_id).thread_id
        paused = list(client.stream(tid, "add them"))[-1]
        assert paused.type == "interrupt"
        assert paused.data["requests"][0]["value"]["action_requests"][0]["name"] == "calculator"
        with pytest.raises(TypeError):
            client.resume(paused.run_id, decisions=[{"type": "approve"}], value="both")
        assert client.resume(paused.run_id, decisions=[{"type": "approve"}]).run_id == paused.run_id
        rest = list(client.attach(paused.run_id, after=paused.id))
        assert any(e.type == "tool_result" and e.data["content"] == "5555" for e in rest)
        assert rest[-1].type == "run_completed"
