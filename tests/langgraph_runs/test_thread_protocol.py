"""The thread protocol (``client.threads.stream``: ``/threads/{id}/commands`` and ``/threads/{id}/stream/events``)
through langgraph-sdk's own client, against a real server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e


async def test_a_run_streams_values_and_message_tokens(lg_client: Any) -> None:
    async with lg_client.threads.stream(assistant_id="support") as thread:
        events = thread.subscribe(["values", "messages", "lifecycle", "updates", "custom"])
        await thread.run.start(input={"messages": [{"role": "user", "content": "hi there"}]})
        seen = []
        async def read():
            async for e in events:
                seen.append(e)
                print(e)
                if e["method"] == "lifecycle" and e["params"]["data"]["event"] == "completed":
                    return
        await asyncio.wait_for(read(), 20)
        output = await thread.output.with_timeout(30)
    assert output["messages"][-1]["content"] == "support says hi there"
