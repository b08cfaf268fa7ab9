"""The real embedded model (SmolLM2-135M on llama.cpp), loaded by a real server: no key, no network."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.embedded, pytest.mark.e2e]


def test_embedded_model_answers_through_chat(server_factory) -> None:
    server = server_factory({"CHATPLANE_MODEL": "local:smollm2-135m"})  # else every default: SQLite under ./data
    response = httpx.post(
        f"{server.url}/chat",
        json={"user_id": "alice", "message": "What is the capital of France?"},
        timeout=120,
    )
    assert response.status_code == 200
    assert response.json()["response"].strip()
    ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
    assert ready == {"status": "ready", "checks": {"storage": True, "model": True}}


async def test_embedded_model_streams_in_process(tmp_path) -> None:
    from chatplane import ProductionAgent
    from tests.conftest import make_settings

    settings = make_settings(model="local:smollm2-135m", max_output_tokens=24)
    async with ProductionAgent(settings=settings) as agent:
        pieces = [p async for p in agent.astream_chat("bob", "Count from one to five.")]
        assert len(pieces) > 1
        assert "".join(pieces).strip()
        history = await agent.aget_history("session-bob")
        assert history[-1].usage_metadata is not None  # llama.cpp reports usage through the OpenAI protocol
