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
    assert context_budget(make_settings(model="fake:echo")) == 100_000
    assert context_budget(make_settings(context_budget_tokens=1234)) == 1234
