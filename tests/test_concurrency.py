"""The seed's blocking LLM call stalled every user; chatplane must serve them at once.

The fake model holds each call until 50 are in flight together (10 s at most), then waits 300 ms: if requests were
served one after another, the peak would stay at 1 whatever the machine's speed.
"""

from __future__ import annotations

import asyncio

from chatplane.llm.fake import ScriptedChatModel
from tests.conftest import make_settings


async def test_fifty_chats_on_fifty_sessions_are_in_flight_at_once(client_for, storage_url: str) -> None:
    model = ScriptedChatModel(echo=True, delay=0.3, gather=50)
    settings = make_settings(storage_url=storage_url, pg_pool_max_size=20, max_concurrent_runs_per_user=0)
    client = await client_for(settings, model=model)
    responses = await asyncio.gather(
        *(
            client.post("/chat", json={"user_id": f"user{i}", "message": f"hello {i}", "session_id": f"s{i}"})
            for i in range(50)
        )
    )
    assert [r.status_code for r in responses] == [200] * 50
    assert [r.json()["response"] for r in responses] == [f"echo: hello {i}" for i in range(50)]
    assert model.peak_in_flight == 50
