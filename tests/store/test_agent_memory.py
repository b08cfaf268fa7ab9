"""An assistant with ``memory`` on, on memory, SQLite and PostgreSQL: the model (scripted) saves a fact in one thread
and is told it in another (recall); it searches, updates and forgets; another user's assistant never sees it; with
memory off, the tools and recall are absent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from chatplane.agents.memory import RECALL_HEADER
from chatplane.llm.fake import ScriptedChatModel
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings


def call(name: str, args: dict[str, Any], n: int = 0) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call-{name}-{n}", "type": "tool_call"}])


def system_of(prompt: list[BaseMessage]) -> str:
    return "\n".join(m.text for m in prompt if isinstance(m, SystemMessage))


def cook(prompt: list[BaseMessage]) -> str:
    return "Cook lentils." if "vegetarian" in system_of(prompt) else "Cook a steak."


async def _ask(client: httpx.AsyncClient, assistant: str, message: str, headers: dict[str, str]) -> dict[str, Any]:
    thread = (await client.post("/v1/threads", json={"agent": assistant}, headers=headers)).json()["thread_id"]
    run = await client.post(f"/v1/threads/{thread}/runs", json={"message": message}, headers=headers)
    assert run.status_code in (200, 201), run.text
    return dict(run.json())


async def _assistant(client: httpx.AsyncClient, headers: dict[str, str], **context: Any) -> str:
    body = {"graph_id": "react", "name": "Remembers", "context": context}
    created = await client.post("/v1/assistants", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["assistant_id"])


async def test_a_memory_saved_in_one_thread_is_used_in_another(client_for, storage_url: str) -> None:
    model = ScriptedChatModel(
        replies=[
            call("save_memory", {"content": "The user is vegetarian."}),
            "Noted: you are vegetarian.",
            cook,  # alice, another thread
            cook,  # bob, with an assistant of his own with memory on
        ]
    )
    client = await client_for(make_settings(storage_url=storage_url), model=model)
    keys = ApiKeyStore(client.app.state.agent.storage.db)
    alice = {"Authorization": f"Bearer {(await keys.create('alice'))[1]}"}
    bob = {"Authorization": f"Bearer {(await keys.create('bob'))[1]}"}
    mine = await _assistant(client, alice, memory=True)

    first = await _ask(client, mine, "Remember that I am vegetarian.", alice)
    assert first["output"]["content"] == "Noted: you are vegetarian."
    saved = (await client.post("/v1/store/items/search", json={"namespace_prefix": ["memories"]}, headers=alice)).json()
    assert [i["value"] for i in saved["items"]] == [{"content": "The user is vegetarian."}]

    second = await _ask(client, mine, "What should I cook tonight?", alice)
    assert second["output"]["content"] == "Cook lentils."
    assert RECALL_HEADER in system_of(model.prompts[2]) and "- The user is vegetarian." in system_of(model.prompts[2])

    bobs = await _assistant(client, bob, memory=True)
    assert (await _ask(client, bobs, "What should I cook tonight?", bob))["output"]["content"] == "Cook a steak."
    assert RECALL_HEADER not in system_of(model.prompts[3])


async def test_the_tools_search_update_and_forget(client_for) -> None:
    model = ScriptedChatModel(
        replies=[
            call("save_memory", {"content": "I live in Lisbon."}, 1),
            call("search_memories", {"query": "where does the user live?"}, 2),
            lambda prompt: call(
                "update_memory", {"key": prompt[-1].text.split(":")[0], "content": "I live in Porto."}, 3
            ),
            call("search_memories", {"query": "city"}, 4),
            lambda prompt: call("forget_memory", {"key": prompt[-1].text.split(":")[0]}, 5),
            call("forget_memory", {"key": "nope"}, 6),
            "Done.",
        ]
    )
    client = await client_for(make_settings(), model=model)
    assistant = await _assistant(client, {}, memory=True, memory_recall=0)
    assert (await _ask(client, assistant, "Keep, change, then drop where I live.", {}))["output"]["content"] == "Done."
    results = [m.text for m in model.prompts[-1] if m.type == "tool"]
    assert results[0].startswith("Saved memory ") and results[1].endswith(": I live in Lisbon.")
    assert results[2].startswith("Updated memory ") and results[3].endswith(": I live in Porto.")
    assert results[4].startswith("Forgot memory ") and results[5] == "There is no memory 'nope'."
    assert (await client.post("/v1/store/items/search", json={})).json() == {"items": []}
    assert all(RECALL_HEADER not in system_of(p) for p in model.prompts)  # memory_recall 0: tools only


async def test_memory_is_off_by_default(client_for) -> None:
    model = ScriptedChatModel(replies=["Hello."])
    client = await client_for(make_settings(), model=model)
    await client.put(
        "/v1/store/items", json={"namespace": ["memories"], "key": "k", "value": {"content": "vegetarian"}}
    )
    assert (await _ask(client, "react", "What should I cook?", {}))["output"]["content"] == "Hello."
    assert RECALL_HEADER not in system_of(model.prompts[0])
    graph = client.app.state.agent.registry.get("react").sample
    assert not any(name in graph.nodes["tools"].bound.tools_by_name for name in ("save_memory", "forget_memory"))


@pytest.mark.parametrize("recall", [-1, 21])
async def test_a_bad_memory_setting_is_a_422(client_for, recall: int) -> None:
    client = await client_for(make_settings())
    body = {"graph_id": "react", "context": {"memory": True, "memory_recall": recall}}
    assert (await client.post("/v1/assistants", json=body)).status_code == 422


def test_recall_counts_tokens_as_langchain_and_leaves_the_request_as_it_was() -> None:
    from langchain.agents.middleware import ModelRequest
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.messages.utils import count_tokens_approximately

    from chatplane.agents.memory import RECALL_HEADER, _system_tokens, _with_system_message

    for text in (RECALL_HEADER, "", "- a", "- I am vegetarian.", "é" * 101):
        assert _system_tokens(text) == count_tokens_approximately([SystemMessage(text)])
    request = ModelRequest(model=None, messages=[HumanMessage("hi")], system_message=SystemMessage("base"))  # type: ignore[arg-type]
    changed = _with_system_message(request, SystemMessage("base + memories"))
    assert changed.system_message is not None and changed.system_message.text == "base + memories"
    assert request.system_message is not None and request.system_message.text == "base"
    assert changed.messages is request.messages and changed.model is request.model
