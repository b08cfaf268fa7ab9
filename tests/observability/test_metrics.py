"""GET /metrics: what a run, a tool call, a failure, a rate limit and a storage fault do to the metrics."""

from __future__ import annotations

import re
import sqlite3

from langchain_core.messages import BaseMessage

from chatplane.failures import as_chatplane_error
from chatplane.llm.fake import ScriptedChatModel
from chatplane.observability.metrics import clear_multiprocess_dir
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings
from tests.observability.helpers import Scrape, auth, scrape

_WORDS = re.compile(r"\S+\s*|\s+")  # how the fake model counts tokens


def fake_usage(prompt: list[BaseMessage], answer: str) -> tuple[int, int]:
    """The usage the fake model reports for one call (its documented rule: whitespace-separated pieces)."""
    return sum(len(_WORDS.findall(m.text)) for m in prompt), len(_WORDS.findall(answer))


async def test_a_run_moves_the_metrics(client_for) -> None:
    model = ScriptedChatModel(echo=True)
    client = await client_for(make_settings(), model=model)
    before = await scrape(client)
    assert before.value("chatplane_runs_total") == 0
    thread_id = (await client.post("/v1/threads", json={})).json()["thread_id"]
    run = (await client.post(f"/v1/threads/{thread_id}/runs", json={"message": "hello there"})).json()
    assert run["status"] == "succeeded"

    response = await client.get("/metrics")
    after = Scrape(response.text)
    assert thread_id not in response.text and run["run_id"] not in response.text  # ids are never labels
    route = "/v1/threads/{thread_id}/runs"
    assert after.value("chatplane_http_requests_total", method="POST", route=route, status="200") == 1
    assert after.value("chatplane_http_requests_total", method="POST", route="/v1/threads", status="201") == 1
    assert after.value("chatplane_http_request_duration_seconds_count", method="POST", route=route) == 1
    assert after.value("chatplane_runs_total", agent="chat", outcome="succeeded") == 1
    assert after.value("chatplane_run_duration_seconds_count", agent="chat", outcome="succeeded") == 1
    assert after.value("chatplane_llm_call_duration_seconds_count", model="fake:echo", outcome="ok") == 1
    assert after.value("chatplane_llm_time_to_first_token_seconds_count", model="fake:echo") == 1
    assert after.value("chatplane_runs_active") == 0
    assert after.value("chatplane_streams_active") == 0

    # tokens by model: what the model reported, what the run recorded
    (prompt,) = model.prompts
    expected_in, expected_out = fake_usage(prompt, "echo: hello there")
    assert after.value("chatplane_llm_tokens_total", model="fake:echo", direction="input") == expected_in
    assert after.value("chatplane_llm_tokens_total", model="fake:echo", direction="output") == expected_out
    assert run["usage"] == {
        "input_tokens": expected_in,
        "output_tokens": expected_out,
        "total_tokens": expected_in + expected_out,
    }


async def test_tool_calls_and_every_model_call_are_timed(client_for) -> None:
    settings = make_settings(model='fake:tool:calculator:{"expression":"2*21"}|It is 42.', default_agent="react")
    client = await client_for(settings)
    thread_id = (await client.post("/v1/threads", json={"agent": "react"})).json()["thread_id"]
    run = (await client.post(f"/v1/threads/{thread_id}/runs", json={"message": "2*21?"})).json()
    assert run["output"]["content"] == "It is 42."
    metrics = await scrape(client)
    assert metrics.value("chatplane_tool_call_duration_seconds_count", tool="calculator", outcome="ok") == 1
    assert metrics.value("chatplane_llm_call_duration_seconds_count", outcome="ok") == 2
    assert metrics.value("chatplane_runs_total", agent="react", outcome="succeeded") == 1
    tokens = metrics.value("chatplane_llm_tokens_total")
    assert tokens == run["usage"]["total_tokens"] > 0


async def test_a_failed_run_is_counted_with_its_error_code(client_for) -> None:
    client = await client_for(make_settings(model="fake:echo?fail=error"))
    thread_id = (await client.post("/v1/threads", json={})).json()["thread_id"]
    response = await client.post(f"/v1/threads/{thread_id}/runs", json={"message": "hi"})
    assert response.status_code == 502
    metrics = await scrape(client)
    assert metrics.value("chatplane_runs_total", agent="chat", outcome="failed") == 1
    assert metrics.value("chatplane_run_errors_total", agent="chat", code="model_error") == 1
    assert metrics.value("chatplane_llm_call_duration_seconds_count", outcome="error") >= 1
    assert metrics.value("chatplane_llm_call_duration_seconds_count", outcome="ok") == 0
    assert metrics.value("chatplane_http_requests_total", status="502") == 1
    assert metrics.value("chatplane_runs_active") == 0


async def test_rate_limit_rejections_are_counted(client_for) -> None:
    client = await client_for(make_settings(rate_limit_per_minute=2))
    _, key = await ApiKeyStore(client.app.state.agent.storage.db).create("alice")
    statuses = [(await client.get("/v1/threads", headers=auth(key))).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    metrics = await scrape(client)
    assert metrics.value("chatplane_rate_limited_total", limit="requests") == 1
    assert metrics.value("chatplane_rate_limited_total", limit="runs") == 0
    assert metrics.value("chatplane_http_requests_total", route="/v1/threads", status="429") == 1


async def test_storage_errors_are_counted_by_type(client_for) -> None:
    client = await client_for(make_settings())
    as_chatplane_error(sqlite3.OperationalError("database is locked"), "a test")
    as_chatplane_error(ValueError("not a storage error"), "a test")
    metrics = await scrape(client)
    assert metrics.value("chatplane_storage_errors_total", error="OperationalError") == 1
    assert metrics.value("chatplane_storage_errors_total") == 1


async def test_unknown_paths_share_one_route_label(client_for) -> None:
    client = await client_for(make_settings())
    for n in range(3):
        assert (await client.get(f"/no/such/page-{n}")).status_code == 404
    response = await client.get("/metrics")
    assert "page-1" not in response.text
    assert Scrape(response.text).value("chatplane_http_requests_total", route="unmatched", status="404") == 3


async def test_metrics_can_be_switched_off(client_for) -> None:
    client = await client_for(make_settings(metrics_enabled=False))
    assert (await client.get("/metrics")).status_code == 404
    response = await client.post("/v1/threads", json={})
    assert response.status_code == 201 and response.headers["x-request-id"]


def test_a_multiprocess_folder_can_be_cleared_before_the_workers_start(tmp_path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"x")
    (tmp_path / "gauge_livesum_123.db").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("not ours")
    assert clear_multiprocess_dir(str(tmp_path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert clear_multiprocess_dir(str(tmp_path / "missing")) == 0
