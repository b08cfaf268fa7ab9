"""Usage accounting: tokens per run, thread and user match what the model reported; GET /v1/usage; cost."""

from __future__ import annotations

import datetime
import time

import pytest

from chatplane.llm.fake import ScriptedChatModel
from chatplane.storage.keys import ApiKeyStore
from chatplane.storage.usage import cost_of
from tests.conftest import make_settings
from tests.observability.helpers import auth
from tests.observability.test_metrics import fake_usage

PRICES = {"fake:echo": {"input_per_million": 2.5, "output_per_million": 10.0}}


def reported(model: ScriptedChatModel, calls: slice) -> tuple[int, int]:
    """What the fake model reported for these calls (it echoes the last user message)."""
    total_in = total_out = 0
    for prompt in model.prompts[calls]:
        last = next(m for m in reversed(prompt) if m.type == "human")
        used_in, used_out = fake_usage(prompt, f"echo: {last.text}")
        total_in, total_out = total_in + used_in, total_out + used_out
    return total_in, total_out


async def test_usage_totals_match_the_models_reported_usage(client_for, storage_url) -> None:
    model = ScriptedChatModel(echo=True)
    client = await client_for(make_settings(storage_url=storage_url, prices=PRICES), model=model)
    keys = ApiKeyStore(client.app.state.agent.storage.db)
    alice, bob = auth((await keys.create("alice"))[1]), auth((await keys.create("bob"))[1])

    # alice: two threads and a stateless OpenAI-style request
    first = (await client.post("/v1/threads", json={}, headers=alice)).json()["thread_id"]
    second = (await client.post("/v1/threads", json={}, headers=alice)).json()["thread_id"]
    runs = []
    for thread_id, message in ((first, "one two three"), (first, "four five"), (second, "six")):
        response = await client.post(f"/v1/threads/{thread_id}/runs", json={"message": message}, headers=alice)
        runs.append(response.json())
    completion = await client.post(
        "/v1/chat/completions",
        json={"model": "chatplane-chat", "messages": [{"role": "user", "content": "seven eight nine ten"}]},
        headers=alice,
    )
    assert completion.status_code == 200
    alice_calls = len(model.prompts)
    # bob: one run
    bobs = (await client.post("/v1/threads", json={}, headers=bob)).json()["thread_id"]
    await client.post(f"/v1/threads/{bobs}/runs", json={"message": "not alice's"}, headers=bob)

    expected_in, expected_out = reported(model, slice(0, alice_calls))
    report = (await client.get("/v1/usage", headers=alice)).json()
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    assert report["user"] == "alice" and report["until"] == today
    total = report["total"]
    assert (total["runs"], total["input_tokens"], total["output_tokens"]) == (4, expected_in, expected_out)
    assert total["total_tokens"] == expected_in + expected_out
    assert total["cost"] == pytest.approx((expected_in * 2.5 + expected_out * 10.0) / 1_000_000)
    assert report["by_model"] == [{"model": "fake:echo", **total}]
    assert report["by_day"] == [{"date": today, **total, "models": [{"model": "fake:echo", **total}]}]
    assert report["unpriced_models"] == []

    # per run and per thread: the same numbers the runs recorded
    recorded = [r["usage"] for r in runs] + [
        {
            "input_tokens": completion.json()["usage"]["prompt_tokens"],
            "output_tokens": completion.json()["usage"]["completion_tokens"],
        }
    ]
    assert sum(u["input_tokens"] for u in recorded) == expected_in
    assert sum(u["output_tokens"] for u in recorded) == expected_out
    of_first = (await client.get("/v1/usage", params={"thread_id": first}, headers=alice)).json()
    assert of_first["thread_id"] == first and of_first["total"]["runs"] == 2
    assert of_first["total"]["input_tokens"] == runs[0]["usage"]["input_tokens"] + runs[1]["usage"]["input_tokens"]

    # only your own
    bobs_report = (await client.get("/v1/usage", headers=bob)).json()
    assert bobs_report["total"]["runs"] == 1
    assert bobs_report["total"]["input_tokens"] == reported(model, slice(alice_calls, None))[0]
    assert (await client.get("/v1/usage", params={"thread_id": first}, headers=bob)).status_code == 404


async def test_usage_by_day_and_period(client_for, tmp_path) -> None:
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path}/usage.db"))
    db = client.app.state.agent.storage.db
    thread_id = (await client.post("/v1/threads", json={})).json()["thread_id"]
    for message in ("old message", "new message"):
        await client.post(f"/v1/threads/{thread_id}/runs", json={"message": message})
    old_run = (await client.get(f"/v1/threads/{thread_id}/runs")).json()[-1]
    three_days_ago = time.time() - 3 * 86400
    await db.execute("UPDATE chatplane_runs SET created_at = %s WHERE run_id = %s", (three_days_ago, old_run["run_id"]))

    report = (await client.get("/v1/usage")).json()
    days = [d["date"] for d in report["by_day"]]
    old_day = datetime.datetime.fromtimestamp(three_days_ago, datetime.UTC).date()
    assert days == [old_day.isoformat(), datetime.datetime.now(datetime.UTC).date().isoformat()]
    assert report["by_day"][0]["input_tokens"] == old_run["usage"]["input_tokens"]
    assert report["total"]["runs"] == 2 and report["total"]["cost"] is None  # no price table
    assert report["unpriced_models"] == ["fake:echo"]

    recent = (
        await client.get("/v1/usage", params={"since": (old_day + datetime.timedelta(days=1)).isoformat()})
    ).json()
    assert recent["total"]["runs"] == 1
    only_old = (
        await client.get("/v1/usage", params={"since": old_day.isoformat(), "until": old_day.isoformat()})
    ).json()
    assert only_old["total"]["runs"] == 1 and only_old["by_day"][0]["date"] == old_day.isoformat()

    for params in (
        {"since": "2025-02-01", "until": "2025-01-01"},
        {"since": "2020-01-01", "until": "2025-01-01"},
        {"until": "0001-01-01"},
        {"since": "9999-12-31"},
        {"since": "yesterday"},
        {"until": "2025-02-30"},
        {"until": "1.5e-200"},
    ):
        response = await client.get("/v1/usage", params=params)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_cost_uses_the_price_of_the_model_id_or_its_name() -> None:
    prices = {"openai:gpt-4o": {"input_per_million": 2.5, "output_per_million": 10}, "gpt-4o-mini": {}}
    assert cost_of("openai:gpt-4o", 1_000_000, 100_000, prices) == pytest.approx(3.5)
    assert cost_of("local:gpt-4o-mini", 10, 10, prices) is None  # an empty price table entry is no price
    assert cost_of("openai:unknown", 10, 10, prices) is None
