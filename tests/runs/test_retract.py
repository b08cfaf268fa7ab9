"""A model attempt that streamed tokens and failed is retracted: a ``retract`` event tells clients to drop its
text, so the answer a client assembles is the retry's alone — over the run events, the seed's ``/chat/stream``,
the embedded ``astream_chat``, and a cancel during the retry, which keeps only the retry's text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx_sse import aconnect_sse

from chatplane.agent import ProductionAgent
from chatplane.events import Retraction
from chatplane.llm.fake import ScriptedChatModel
from tests.conftest import make_settings

FAILED = "first attempt words here"
ANSWER = "the real answer is this"
LONG_ANSWER = " ".join(f"r{i}" for i in range(1, 41))


def _dropping(answer: str = ANSWER, **options: Any) -> ScriptedChatModel:
    """Streams half of ``FAILED``, drops (a transient failure, retried), then answers ``answer``."""
    return ScriptedChatModel(replies=[FAILED, answer], drops=1, **options)


async def sse(client: Any, url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every server-sent event of ``url`` as ``{"event", "data"}``."""
    async with aconnect_sse(client, "POST", url, json=body) as source:
        source.response.raise_for_status()
        return [{"event": e.event, "data": json.loads(e.data)} async for e in source.aiter_sse() if e.data]


def assemble(events: list[dict[str, Any]]) -> str:
    """What a client shows from the token events, honouring ``retract``."""
    texts: dict[str | None, str] = {}
    for event in events:
        data = event["data"]
        if event["type"] == "token":
            texts[data["message_id"]] = texts.get(data["message_id"], "") + data["text"]
        elif event["type"] == "retract":
            texts.pop(data["message_id"], None)
    return "".join(texts.values())


@pytest.mark.parametrize("agent", ["chat", "react", "multi"])
async def test_the_failed_attempt_is_retracted_on_the_run_stream(client_for, storage_url: str, agent: str) -> None:
    client = await client_for(make_settings(storage_url=storage_url), model=_dropping())
    tid = (await client.post("/v1/threads", json={"agent": agent})).json()["thread_id"]
    events = [e["data"] for e in await sse(client, f"/v1/threads/{tid}/runs/stream", {"message": "hi"})]

    assert events[-1]["type"] == "run_completed"
    tokens = [e["data"] for e in events if e["type"] == "token"]
    (retract,) = [e["data"] for e in events if e["type"] == "retract"]
    assert retract["message_id"] == tokens[0]["message_id"] and "".join(t["text"] for t in tokens).startswith("first")
    assert assemble(events) == ANSWER
    (message,) = [e["data"]["message"] for e in events if e["type"] == "message"]
    assert message["content"] == ANSWER and message["id"] != retract["message_id"]
    stored = (await client.get(f"/v1/threads/{tid}/messages")).json()["messages"]
    assert [m["content"] for m in stored] == ["hi", ANSWER]


async def test_seed_chat_stream_says_retract_and_its_done_holds_the_real_answer(client_for) -> None:
    client = await client_for(make_settings(), model=_dropping())
    events = await sse(client, "/chat/stream", {"user_id": "u", "message": "hi"})
    kinds = [e["event"] for e in events]
    assert kinds.count("retract") == 1 and kinds[-1] == "done"
    shown = ""
    for event in events:
        if event["event"] == "token":
            shown += event["data"]["text"]
        elif event["event"] == "retract":
            shown = shown[: len(shown) - event["data"]["dropped"]]
    assert shown == ANSWER == events[-1]["data"]["response"]


async def test_embedded_stream_yields_a_retraction_of_what_the_attempt_streamed() -> None:
    async with ProductionAgent(_dropping(), settings=make_settings()) as agent:
        pieces = [piece async for piece in agent.astream_chat("u", "hi", "s1")]
    (retraction,) = [p for p in pieces if isinstance(p, Retraction)]
    before = "".join(pieces[: pieces.index(retraction)])
    assert FAILED.startswith(before) and retraction.dropped == len(before) > 0
    assert "".join(pieces[pieces.index(retraction) + 1 :]) == ANSWER


async def test_a_cancel_during_the_retry_keeps_only_the_retrys_text(persistent_storage_url: str) -> None:
    settings = make_settings(storage_url=persistent_storage_url)
    async with ProductionAgent(_dropping(LONG_ANSWER, token_delay=0.02), settings=settings) as agent:
        stream = agent.astream_chat("u", "count", "s1")
        retracted = False
        async for piece in stream:
            if isinstance(piece, Retraction):
                retracted = True
            elif retracted:
                break  # the retry streams: stop here
        await stream.aclose()
        await agent.runs.cancel_thread("s1")
        history = await agent.aget_history("s1")
    assert [m.type for m in history] == ["human", "ai"]
    kept = history[-1]
    assert kept.text and LONG_ANSWER.startswith(kept.text) and kept.text != LONG_ANSWER
    assert "first" not in kept.text
