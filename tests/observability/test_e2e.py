"""Operations on real servers (``chatplane serve`` in a subprocess): JSON logs, open streams, several workers."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatplane.storage.engine import open_storage
from tests.conftest import make_settings
from tests.observability.helpers import scrape_sync
from tests.servers import wait_for
from tests.sse import iter_events

pytestmark = pytest.mark.e2e


def _wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    return wait_for(predicate, timeout, interval=0.05)


def test_a_real_server_logs_json_lines_with_the_request_id(server_factory) -> None:
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://", "CHATPLANE_LOG_FORMAT": "json"}
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        created = client.post("/v1/threads", json={}, headers={"X-Request-ID": "e2e-create"})
        assert created.headers["x-request-id"] == "e2e-create"
        thread_id = created.json()["thread_id"]
        run = client.post(
            f"/v1/threads/{thread_id}/runs", json={"message": "private words"}, headers={"X-Request-ID": "e2e-run"}
        ).json()

    def lines() -> list[dict[str, Any]]:
        found = []
        for line in server.log().splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def of_run() -> list[dict[str, Any]]:
        return [line for line in lines() if line.get("request_id") == "e2e-run"]

    logged = _wait_for(lambda: len(of_run()) == 2 and of_run())  # the run's line, then the request's access line
    access = [line for line in lines() if line["logger"] == "chatplane.access"]
    assert {"request_id": "e2e-create", "status": 201, "route": "/v1/threads"}.items() <= access[0].items()
    assert {line["logger"] for line in logged} == {"chatplane.runs", "chatplane.access"}
    (finished,) = [line for line in logged if line["logger"] == "chatplane.runs"]
    assert finished["run_id"] == run["run_id"] and finished["thread_id"] == thread_id and finished["user"] == "local"
    # uvicorn's own lines go through the same handler once the app has started
    assert any(line["logger"] == "uvicorn.error" and "startup complete" in line["message"] for line in lines())
    assert "private words" not in server.log()


def test_open_streams_and_active_runs_are_gauged(server_factory) -> None:
    words = " ".join(f"w{i}" for i in range(60))
    server = server_factory({"CHATPLANE_MODEL": f"fake:{words}?token_delay=0.05", "CHATPLANE_STORAGE_URL": "memory://"})
    with httpx.Client(base_url=server.url, timeout=30) as client, httpx.Client(base_url=server.url) as scraper:
        thread_id = client.post("/v1/threads", json={}).json()["thread_id"]
        during: dict[str, float] = {}
        for event in iter_events(client, "POST", f"/v1/threads/{thread_id}/runs/stream", json={"message": "go"}):
            if event["type"] == "token" and not during:
                metrics = scrape_sync(scraper)
                during = {
                    "sse": metrics.value("chatplane_streams_active", kind="sse"),
                    "runs": metrics.value("chatplane_runs_active", agent="chat"),
                }
        assert during == {"sse": 1, "runs": 1}
        after = _wait_for(lambda: (m := scrape_sync(scraper)).value("chatplane_streams_active") == 0 and m)
        assert after.value("chatplane_runs_active") == 0
        assert after.value("chatplane_llm_time_to_first_token_seconds_count") == 1
        route = "/v1/threads/{thread_id}/runs/stream"
        assert after.value("chatplane_http_requests_total", route=route, status="200") == 1


async def _create_tables(storage_url: str) -> None:
    async with open_storage(make_settings(storage_url=storage_url)):
        pass


@pytest.mark.postgres
def test_metrics_are_summed_across_worker_processes(server_factory, pg_url, redis_url, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    long_reply = " ".join(f"w{i}" for i in range(400))  # keeps a worker busy for a moment: the other accepts
    env = {
        "CHATPLANE_MODEL": f"fake:{long_reply}",
        "CHATPLANE_STORAGE_URL": pg_url,
        "CHATPLANE_REDIS_URL": redis_url,
        "CHATPLANE_METRICS_MULTIPROC_DIR": str(metrics_dir),
    }
    # Create the tables first: two workers starting at once on an empty database can race in LangGraph's own
    # saver.setup() (UniqueViolation), which storage.py runs outside its advisory lock (reported).
    asyncio.run(_create_tables(pg_url))
    server = server_factory(env, args=["--workers", "2"])
    with httpx.Client(base_url=server.url, timeout=60) as client:
        thread_ids = [client.post("/v1/threads", json={}).json()["thread_id"] for _ in range(4)]

    def run(thread_id: str) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:  # a connection of its own
            response = client.post(f"/v1/threads/{thread_id}/runs", json={"message": "go"})
            assert response.json()["status"] == "succeeded"

    def served_by() -> set[str]:
        return {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}

    runs = 0
    while len(served_by()) < 2 and runs < 80:  # until both workers have answered something
        threads = [threading.Thread(target=run, args=(thread_id,)) for thread_id in thread_ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        runs += len(threads)
    assert len(served_by()) == 2
    route = "/v1/threads/{thread_id}/runs"
    for _ in range(6):  # whichever worker answers, it reports both
        with httpx.Client(base_url=server.url) as client:  # a new connection each time
            metrics = scrape_sync(client)
        assert metrics.value("chatplane_http_requests_total", route=route, status="200") == runs
        assert metrics.value("chatplane_runs_total", outcome="succeeded") == runs
        assert metrics.value("chatplane_http_requests_total", route="/v1/threads", status="201") == 4
        assert metrics.value("chatplane_runs_active") == 0
