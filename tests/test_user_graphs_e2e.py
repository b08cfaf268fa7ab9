"""A team's graphs on real servers: streamed and re-attached over HTTP, and taken over after a worker is killed
mid-run without redoing the steps it had finished (per-step checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.servers import wait_for
from tests.sse import iter_events

pytestmark = pytest.mark.e2e

DEMO = str(Path(__file__).parent / "projects" / "demo" / "chatplane.json")


def test_a_graph_streams_and_a_client_reattaches(server_factory, tmp_path: Path) -> None:
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path}/e2e.db"},
        args=["--config", DEMO],
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tid = client.post("/v1/threads", json={"agent": "support"}).json()["thread_id"]
        body = {"message": "hello", "stream_mode": ["custom", "values"]}
        events = list(iter_events(client, "POST", f"/v1/threads/{tid}/runs/stream", json=body))
        kinds = [e["type"] for e in events]
        assert kinds[0] == "run_started" and "custom" in kinds and "values" in kinds and kinds[-1] == "run_completed"
        run_id = events[0]["run_id"]
        again = list(iter_events(client, "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": "2"}))
        assert [e["id"] for e in again] == [e["id"] for e in events[2:]]
        assert client.get("/agents").json()["agents"][3]["name"] == "support"


@pytest.mark.postgres
def test_a_killed_worker_s_graph_run_goes_on_after_its_last_finished_step(
    server_factory, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    env = {
        "CHATPLANE_MODEL": "fake:echo",
        "CHATPLANE_STORAGE_URL": pg_url,
        "CHATPLANE_REDIS_URL": redis_url,
        "CHATPLANE_RUN_LEASE_S": "2",
        "CHATPLANE_CONFIG_FILE": DEMO,
        "DEMO_STEP_S": "1.0",
        "DEMO_JOURNAL": str(journal),
    }
    doomed, survivor = server_factory(env), server_factory(env)
    with httpx.Client(base_url=doomed.url, timeout=30) as on_doomed:
        tid = on_doomed.post("/v1/threads", json={"agent": "steps"}).json()["thread_id"]
        run = on_doomed.post(f"/v1/threads/{tid}/runs", json={"input": {}, "background": True}).json()
        wait_for(lambda: journal.exists() and journal.read_text() == "a\n", timeout=30)
    doomed.kill()  # kill -9, after step a, during step b
    with httpx.Client(base_url=survivor.url, timeout=30) as client:
        finished = wait_for(
            lambda: (r := client.get(f"/v1/runs/{run['run_id']}").json())["status"] in ("succeeded", "failed") and r,
            timeout=60,
        )
        assert finished["status"] == "succeeded", json.dumps(finished)
        state = client.get(f"/v1/threads/{tid}/state").json()["values"]
    assert state["done"] == ["a", "b", "c"]
    assert journal.read_text().splitlines().count("a") == 1  # the finished step was not done again
