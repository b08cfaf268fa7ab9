"""A2A: the a2a-sdk client reads an assistant's card, sends, streams, continues a context, gets and cancels tasks
(chatplane runs on chatplane threads); another user reaches nothing of the first's; bad input gets clear errors;
the JSON-RPC endpoint authenticates like every route. In process, plus one real uvicorn process."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings

BASE = "http://chatplane.test"


def _http(client: httpx.AsyncClient, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    app = client.app  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers, timeout=30)


async def _a2a(http: httpx.AsyncClient, assistant: str = "chat", *, streaming: bool = False) -> Client:
    card = await A2ACardResolver(http, f"{BASE}/a2a/{assistant}").get_agent_card()
    return ClientFactory(ClientConfig(httpx_client=http, streaming=streaming)).create(card)


def _send(text: str, context_id: str | None = None, *, now: bool = False, **message: Any) -> pb.SendMessageRequest:
    sent = pb.Message(message_id=str(uuid.uuid4()), role=pb.ROLE_USER, parts=[pb.Part(text=text)], **message)
    if context_id:
        sent.context_id = context_id
    return pb.SendMessageRequest(message=sent, configuration=pb.SendMessageConfiguration(return_immediately=now))


async def _task(client: Client, request: pb.SendMessageRequest) -> pb.Task:
    """What a blocking send answers: one ``task``."""
    events = [event async for event in client.send_message(request)]
    assert len(events) == 1 and events[0].WhichOneof("payload") == "task"
    return events[0].task


def _answer(task: pb.Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


async def _keys(client: httpx.AsyncClient, *users: str) -> dict[str, str]:
    store = ApiKeyStore(client.app.state.agent.storage.db)  # type: ignore[attr-defined]
    return {user: (await store.create(user))[1] for user in users}


async def test_cards_say_where_to_talk_and_how_to_authenticate(client_for) -> None:
    client = await client_for(make_settings())
    server = (await client.get("/.well-known/agent-card.json")).json()
    assert server["name"] == "chat"
    assert [skill["id"] for skill in server["skills"]] == ["chat", "react", "multi"]
    assert server["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert server["securityRequirements"] == [{"schemes": {"bearer": {}}}]
    assert server["capabilities"]["streaming"] is True
    interfaces = {(i["protocolVersion"], i["url"]) for i in server["supportedInterfaces"]}
    assert interfaces == {("1.0", f"{BASE}/a2a/chat"), ("0.3", f"{BASE}/a2a/chat")}
    assert server["url"] == f"{BASE}/a2a/chat"  # A2A 0.3's fields too, for older clients

    async with _http(client) as http:
        card = await A2ACardResolver(http, f"{BASE}/a2a/react").get_agent_card()
    assert card.name == "react" and [s.id for s in card.skills] == ["react"]
    assert card.supported_interfaces[0].url == f"{BASE}/a2a/react"
    assert (await client.get("/a2a/nope/.well-known/agent-card.json")).status_code == 404


async def test_send_stream_continue_get_and_cancel(client_for, tmp_path: Path) -> None:
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path / 'db'}"))
    async with _http(client) as http:
        a2a = await _a2a(http)
        first = await _task(a2a, _send("hello"))
        assert first.status.state == pb.TASK_STATE_COMPLETED
        assert _answer(first) == "echo: hello" and first.status.message.parts[0].text == "echo: hello"
        assert [m.role for m in first.history] == [pb.ROLE_USER, pb.ROLE_AGENT]
        context = first.context_id

        # The context is a chatplane thread, the task a chatplane run.
        run = (await http.get(f"/v1/runs/{first.id}")).json()
        assert run["thread_id"] == context and run["status"] == "succeeded"

        streaming = await _a2a(http, streaming=True)
        events = [event async for event in streaming.send_message(_send("again", context))]
        kinds = [event.WhichOneof("payload") for event in events]
        assert kinds[0] == "task" and kinds[-1] == "status_update"
        assert "artifact_update" in kinds
        assert events[0].task.context_id == context
        assert events[-1].status_update.status.state == pb.TASK_STATE_COMPLETED
        assert events[-1].status_update.status.message.parts[0].text == "echo: again"
        chunks = [e.artifact_update for e in events if e.WhichOneof("payload") == "artifact_update"]
        assert chunks[-1].last_chunk and chunks[-1].artifact.parts[0].text == "echo: again"
        streamed_id = events[0].task.id

        messages = (await http.get(f"/v1/threads/{context}/messages")).json()["messages"]
        assert [m["content"] for m in messages] == ["hello", "echo: hello", "again", "echo: again"]

        got = await a2a.get_task(pb.GetTaskRequest(id=streamed_id))
        assert got.status.state == pb.TASK_STATE_COMPLETED and _answer(got) == "echo: again"
        with pytest.raises(TaskNotCancelableError):
            await a2a.cancel_task(pb.CancelTaskRequest(id=streamed_id))
        # A task of this assistant is not found at another assistant's endpoint.
        with pytest.raises(TaskNotFoundError):
            await (await _a2a(http, "react")).get_task(pb.GetTaskRequest(id=streamed_id))


async def test_cancel_a_working_task(client_for) -> None:
    client = await client_for(make_settings(model="fake:never?fail=hang"))
    async with _http(client) as http:
        a2a = await _a2a(http)
        started = await _task(a2a, _send("take your time", now=True))  # returnImmediately: the task as it starts
        assert started.status.state in (pb.TASK_STATE_SUBMITTED, pb.TASK_STATE_WORKING)
        cancelled = await a2a.cancel_task(pb.CancelTaskRequest(id=started.id))
        assert cancelled.status.state == pb.TASK_STATE_CANCELED
        assert (await a2a.get_task(pb.GetTaskRequest(id=started.id))).status.state == pb.TASK_STATE_CANCELED
        assert (await http.get(f"/v1/runs/{started.id}")).json()["status"] == "cancelled"


async def test_another_user_reaches_nothing_of_the_first(client_for, tmp_path: Path) -> None:
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path / 'db'}"))
    keys = await _keys(client, "alice", "bob")
    async with _http(client, keys["alice"]) as alice, _http(client, keys["bob"]) as bob:
        assert (await alice.post("/v1/assistants", json={"graph_id": "chat", "assistant_id": "alices"})).is_success
        alices = await _a2a(alice, "alices")
        task = await _task(alices, _send("mine"))
        assert _answer(task) == "echo: mine"

        # Her assistant's card and endpoint: the same 404 as an assistant that does not exist.
        for path in ("/a2a/{}/.well-known/agent-card.json", "/a2a/{}"):
            hers = await bob.request("GET" if "card" in path else "POST", path.format("alices"), json={})
            missing = await bob.request("GET" if "card" in path else "POST", path.format("nobodys"), json={})
            assert hers.status_code == missing.status_code == 404
            assert hers.content == missing.content

        # Her task, by id, from Bob's side of the same graph: not found, as a made-up id; nor cancelled.
        bobs = await _a2a(bob, "chat")
        chat_task = await _task(await _a2a(alice, "chat"), _send("at chat"))
        for task_id in (chat_task.id, str(uuid.uuid4())):
            with pytest.raises(TaskNotFoundError):
                await bobs.get_task(pb.GetTaskRequest(id=task_id))
            with pytest.raises(TaskNotFoundError):
                await bobs.cancel_task(pb.CancelTaskRequest(id=task_id))
        # Her context: refused as a context that does not exist, and nothing lands in her thread.
        errors = []
        for context in (chat_task.context_id, str(uuid.uuid4())):
            with pytest.raises(InvalidParamsError) as refused:
                await _task(bobs, _send("into hers", context))
            errors.append(refused.value.message)
        assert errors[0] == errors[1] and "contextId" in errors[0]
        messages = (await alice.get(f"/v1/threads/{chat_task.context_id}/messages")).json()["messages"]
        assert [m["content"] for m in messages] == ["at chat", "echo: at chat"]

        # Without a credential: 401, the stable body, the bearer challenge; the server's card stays public.
        async with _http(client) as anonymous:
            response = await anonymous.post("/a2a/chat", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"})
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "unauthorized"
            card = await anonymous.get("/a2a/chat/.well-known/agent-card.json")
            assert card.status_code == 401
            assert (await anonymous.get("/.well-known/agent-card.json")).status_code == 200


async def test_bad_input_gets_clear_errors(client_for) -> None:
    client = await client_for(make_settings())
    async with _http(client) as http:
        a2a = await _a2a(http)
        with pytest.raises(ContentTypeNotSupportedError, match="only text parts"):
            await _task(a2a, pb.SendMessageRequest(message=pb.Message(message_id="m", parts=[pb.Part(url="x://y")])))
        with pytest.raises(InvalidParamsError, match="at least one text part"):
            await _task(a2a, _send("   "))
        with pytest.raises(InvalidParamsError, match="message"):
            await _task(a2a, _send("x" * 40_000))
        with pytest.raises(UnsupportedOperationError, match="taskId"):
            await _task(a2a, _send("go on", task_id="some-task"))
        with pytest.raises(InvalidParamsError, match="ROLE_USER"):
            await _task(a2a, _agent_role("as agent"))
        with pytest.raises(PushNotificationNotSupportedError):
            await a2a.create_task_push_notification_config(pb.TaskPushNotificationConfig(task_id="t", url="https://x"))

    async with _http(client) as raw:  # A2A 0.3's method names, as an older client sends them
        unknown = (await raw.post("/a2a/chat", json={"jsonrpc": "2.0", "id": 1, "method": "tasks/nope"})).json()
        assert unknown["error"]["code"] == -32601
        not_json = (await raw.post("/a2a/chat", content=b"{", headers={"content-type": "application/json"})).json()
        assert not_json["error"]["code"] == -32700
        sent = await raw.post(
            "/a2a/chat",
            json={
                "jsonrpc": "2.0",
                "id": 2,
                "method": "message/send",
                "params": {"message": {"messageId": "m1", "role": "user", "parts": [{"kind": "text", "text": "old"}]}},
            },
        )
        task = sent.json()["result"]
        assert task["kind"] == "task" and task["status"]["state"] == "completed"
        assert task["artifacts"][0]["parts"][0]["text"] == "echo: old"
        for method in ("tasks/get", "tasks/cancel"):
            missing = await raw.post(
                "/a2a/chat", json={"jsonrpc": "2.0", "id": 3, "method": method, "params": {"id": "nope"}}
            )
            assert missing.json()["error"]["code"] == -32001  # task not found
        got = await raw.post(
            "/a2a/chat", json={"jsonrpc": "2.0", "id": 4, "method": "tasks/get", "params": {"id": task["id"]}}
        )
        assert got.json()["result"]["status"]["state"] == "completed"


def _agent_role(text: str) -> pb.SendMessageRequest:
    request = _send(text)
    request.message.role = pb.ROLE_AGENT
    return request


@pytest.mark.e2e
async def test_stream_then_cancel_over_a_real_server(server_factory, tmp_path: Path) -> None:
    """The a2a-sdk client against ``chatplane serve``: a streamed task, cancelled from a second client while it
    works; the stream ends with the canceled state. Then a task followed by subscribing to it, cancelled."""
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:never?fail=hang", "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path / 'db'}"}
    )
    async with httpx.AsyncClient(timeout=60) as http:
        card = await A2ACardResolver(http, f"{server.url}/a2a/chat").get_agent_card()
        streaming = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
        canceller = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        states: list[int] = []
        cancelled: pb.Task | None = None
        async for event in streaming.send_message(_send("wait")):
            kind = event.WhichOneof("payload")
            if kind == "task":
                task_id = event.task.id
            elif kind == "status_update":
                states.append(event.status_update.status.state)
                if event.status_update.status.state == pb.TASK_STATE_WORKING:
                    cancelled = await canceller.cancel_task(pb.CancelTaskRequest(id=task_id))
        assert states == [pb.TASK_STATE_WORKING, pb.TASK_STATE_CANCELED]
        assert cancelled is not None and cancelled.status.state == pb.TASK_STATE_CANCELED
        got = await canceller.get_task(pb.GetTaskRequest(id=task_id))
        assert got.status.state == pb.TASK_STATE_CANCELED

        # A task started without waiting, followed by subscribing to it, cancelled while followed.
        started = await _task(canceller, _send("again", got.context_id, now=True))
        followed = []
        async for event in streaming.subscribe(pb.SubscribeToTaskRequest(id=started.id)):
            followed.append(event.WhichOneof("payload"))
            if len(followed) == 1:
                assert event.task.id == started.id
                await canceller.cancel_task(pb.CancelTaskRequest(id=started.id))
            elif event.WhichOneof("payload") == "status_update":
                last = event.status_update.status.state
        assert followed[0] == "task" and last == pb.TASK_STATE_CANCELED
        with pytest.raises(UnsupportedOperationError):  # a finished task has nothing more to follow
            async for _ in streaming.subscribe(pb.SubscribeToTaskRequest(id=started.id)):
                pass
