"""``join`` and ``wait`` of a run that executed in another process (two servers on one PostgreSQL and Redis): the
answer is read from the thread's state, and is the same as the executing process's own answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langgraph_sdk import get_sync_client

from tests.langgraph_runs.conftest import demo_env

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def test_join_through_another_process_answers_the_run_s_values(
    server_factory: Callable[..., Any], pg_url: str, redis_url: str
) -> None:
    env = demo_env(pg_url, CHATPLANE_REDIS_URL=redis_url)
    a, b = server_factory(env), server_factory(env)
    with get_sync_client(url=a.url, api_key=None) as on_a, get_sync_client(url=b.url, api_key=None) as on_b:
        thread = on_a.threads.create(graph_id="steps")
        run = on_a.runs.create(thread["thread_id"], "steps", input={})
        joined_on_b = on_b.runs.join(thread["thread_id"], run["run_id"])  # A executes it, B follows
        assert joined_on_b == {"done": ["a", "b", "c"]}
        assert on_a.runs.join(thread["thread_id"], run["run_id"]) == joined_on_b  # A answers from the run itself
        assert on_b.runs.get(thread["thread_id"], run["run_id"])["status"] == "success"

        chat = on_a.threads.create(graph_id="chat")
        first = on_a.runs.wait(chat["thread_id"], "chat", input={"messages": [{"role": "user", "content": "one"}]})
        second = on_a.runs.create(chat["thread_id"], "chat", input={"messages": [{"role": "user", "content": "two"}]})
        on_b_values: Any = on_b.runs.join(chat["thread_id"], second["run_id"])
        assert [m["type"] for m in on_b_values["messages"]] == ["human", "ai", "human", "ai"]  # the whole thread
        assert on_b_values["messages"][:2] == first["messages"]
        assert on_b_values == on_a.runs.join(chat["thread_id"], second["run_id"])
        assert on_b_values["messages"] == on_b.threads.get_state(chat["thread_id"])["values"]["messages"]
