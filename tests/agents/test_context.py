"""Long threads stay cheap: the prompt stops growing at the budget, the thread keeps every message."""

from __future__ import annotations

from langchain_core.messages.utils import count_tokens_approximately

from chatplane import ProductionAgent
from chatplane.agents.context import context_budget
from chatplane.llm.fake import ScriptedChatModel
from tests.conftest import make_settings


async def test_prompt_stops_growing_past_the_budget_and_history_is_whole(tmp_path) -> None:
    model = ScriptedChatModel(echo=True)
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/long.db", context_budget_tokens=300)
    async with ProductionAgent(model, settings=settings) as agent:
        sizes = []
        for turn in range(120):
            await agent.achat("u", f"message number {turn} with some words in it")
            sizes.append(count_tokens_approximately(model.prompts[-1]))
        history = await agent.aget_history("session-u")
    assert len(history) == 240  # every message is kept
    budget_plus_system = 300 + count_tokens_approximately(model.prompts[-1][:1])
    assert max(sizes) <= budget_plus_system
    assert max(sizes[60:]) - min(sizes[60:]) < 30  # flat once past the budget
    assert sizes[0] < sizes[20]  # it did grow before the budget was reached
    last_prompt = model.prompts[-1]
    assert last_prompt[0].type == "system" and last_prompt[1].type == "human"  # trimmed at a user message


def test_the_default_budget_fits_the_embedded_model() -> None:
    local = make_settings(model="local:smollm2-135m", local_context_tokens=4096, local_parallel=2)
    assert context_budget(local) == 4096 // 2 - 512 - 200
    assert context_budget(make_settings(model="fake:echo")) == 8_000
    big_local = make_settings(model="local:smollm2-135m", local_context_tokens=65536, local_parallel=1)
    assert context_budget(big_local) == 8_000  # sized for cost even when the window is larger
    assert context_budget(make_settings(context_budget_tokens=1234)) == 1234


async def test_with_default_settings_a_long_thread_of_2kb_messages_sends_a_flat_prompt(tmp_path) -> None:
    """No budget configured: the prompt at turn 120 is at most 1.2x the one at turn 60, and history is whole."""
    model = ScriptedChatModel(echo=True)
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/long.db")
    assert settings.context_budget_tokens is None
    async with ProductionAgent(model, settings=settings) as agent:
        sizes: list[int] = []
        for turn in range(1, 121):
            body = f"turn {turn}: " + " ".join(f"word{turn}-{i}" for i in range(300))  # about 2 KB
            await agent.achat("u", body[:2048])
            sizes.append(sum(len(str(m.content)) for m in model.prompts[-1]))
        history = await agent.aget_history("session-u")
    assert len(history) == 240  # every message is kept and returned
    assert history[0].text.startswith("turn 1: ") and history[-2].text.startswith("turn 120: ")
    at_60, at_120 = sizes[59], sizes[119]
    assert at_120 <= 1.2 * at_60
    assert sizes[4] < at_60  # it did grow at first, until the default budget was reached
    assert at_120 < 120 * 2 * 2048 / 4  # far from the whole thread


async def test_an_assistant_s_budget_overrides_the_default(tmp_path, client_for) -> None:
    model = ScriptedChatModel(echo=True)
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path}/a.db"), model=model)
    roomy = await client.post("/v1/assistants", json={"graph_id": "chat", "context": {"context_budget_tokens": 30_000}})
    assert roomy.status_code == 201, roomy.text
    last_prompt: dict[str, int] = {}
    for agent in ("chat", roomy.json()["assistant_id"]):
        thread = (await client.post("/v1/threads", json={"agent": agent})).json()["thread_id"]
        for turn in range(40):
            ran = await client.post(f"/v1/threads/{thread}/runs", json={"message": f"{turn} " + "x" * 2040})
            assert ran.json()["status"] == "succeeded", ran.text
        last_prompt[agent] = sum(len(str(m.content)) for m in model.prompts[-1])
    default, roomier = last_prompt.values()
    assert default <= 8_000 * 4 * 1.1  # the default budget, about four characters a token
    assert roomier > 3 * default  # the assistant's own budget
