"""Several real server processes on one PostgreSQL and one Redis: any process serves any request."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.servers import wait_for
from tests.sse import iter_events

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REPLY = " ".join(f"w{i}" for i in range(80))


@pytest.fixture
def cluster_env(pg_url: str, redis_url: str) -> dict[str, str]:
    return {
        "CHATPLANE_STORAGE_URL": pg_url,
        "CHATPLANE_REDIS_URL": redis_url,
        "CHATPLANE_RUN_LEASE_S": "2",
        "CHATPLANE_SSE_PING_S": "0.5",
    }


_wait_for = wait_for


def test_a_run_started_on_one_process_is_streamed_reattached_and_cancelled_on_another(
    server_factory, cluster_env
) -> None:
    env = {**cluster_env, "CHATPLANE_MODEL": f"fake:{REPLY}?token_delay=0.05"}
    a, b = server_factory(env), server_factory(env)
    with httpx.Client(base_url=a.url, timeout=30) as on_a, httpx.Client(base_url=b.url, timeout=30) as on_b:
        tid = on_a.post("/v1/threads", json={}).json()["thread_id"]
        run = on_a.post(f"/v1/threads/{tid}/runs", json={"message": "go", "background": True}).json()
        run_id = run["run_id"]
        seen = []
        for event in iter_events(on_b, "GET", f"/v1/runs/{run_id}/stream"):  # followed through B
            seen.append(event)
            if sum(1 for e in seen if e["type"] == "token") == 5:
                break
        for event in iter_events(
            on_a, "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": str(seen[-1]["id"])}
        ):
            seen.append(event)  # re-attached through A
            if sum(1 for e in seen if e["type"] == "token") == 10:
                break
        assert [e["id"] for e in seen] == list(range(1, len(seen) + 1))
        assert on_b.get(f"/v1/runs/{run_id}").json()["status"] == "running"
        cancelled = on_b.post(f"/v1/runs/{run_id}/cancel").json()  # cancelled through B, runs on A
        assert cancelled["status"] == "cancelled"
        messages = on_b.get(f"/v1/threads/{tid}/messages").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["status"] == "cancelled" and REPLY.startswith(messages[1]["content"])
        assert on_b.get(f"/v1/threads/{tid}/runs").json()[0]["status"] == "cancelled"


async def _spread(urls: list[str], tid: str, n: int) -> list[httpx.Response]:
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    try:
        return await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    f"/v1/threads/{tid}/runs", json={"message": f"m{i}", "multitask": "enqueue", "background": True}
                )
                for i in range(n)
            )
        )
    finally:
        for client in clients:
            await client.aclose()


def test_fifty_messages_into_one_thread_across_processes_keep_order(server_factory, cluster_env) -> None:
    env = {**cluster_env, "CHATPLANE_MODEL": "fake:echo?delay=0.02"}
    a, b = server_factory(env), server_factory(env)
    with httpx.Client(base_url=a.url, timeout=30) as client:
        tid = client.post("/v1/threads", json={}).json()["thread_id"]
        responses = asyncio.run(_spread([a.url, b.url], tid, 50))
        assert [r.status_code for r in responses] == [202] * 50
        accepted = sorted((r.json()["created_at"], f"m{i}") for i, r in enumerate(responses))

        def idle() -> list[dict] | None:
            runs = client.get(f"/v1/threads/{tid}/runs", params={"limit": 100}).json()
            done = len(runs) == 50 and all(r["status"] == "succeeded" for r in runs)
            return runs if done else None

        _wait_for(idle, timeout=120)
        messages = client.get(f"/v1/threads/{tid}/messages", params={"limit": 500}).json()["messages"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        assert users == [message for _, message in accepted]  # nothing lost, acceptance order kept
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert answers == [f"echo: {u}" for u in users]


@pytest.mark.parametrize("recovery", ["resume", "fail"])
def test_a_killed_worker_s_run_is_recovered_by_another(server_factory, cluster_env, recovery: str) -> None:
    env = {**cluster_env, "CHATPLANE_MODEL": f"fake:{REPLY}?token_delay=0.05", "CHATPLANE_RUN_RECOVERY": recovery}
    doomed, survivor = server_factory(env), server_factory(env)
    with httpx.Client(base_url=doomed.url, timeout=30) as on_doomed:
        tid = on_doomed.post("/v1/threads", json={}).json()["thread_id"]
        run_id = on_doomed.post(f"/v1/threads/{tid}/runs", json={"message": "survive", "background": True}).json()[
            "run_id"
        ]
        _wait_for(lambda: on_doomed.get(f"/v1/runs/{run_id}").json()["status"] == "running")
        time.sleep(0.5)
    doomed.kill()  # kill -9, mid-run
    with httpx.Client(base_url=survivor.url, timeout=30) as client:
        run = _wait_for(
            lambda: (r := client.get(f"/v1/runs/{run_id}").json())["status"] in ("succeeded", "failed") and r,
            timeout=60,
        )
        messages = client.get(f"/v1/threads/{tid}/messages").json()["messages"]
        assert messages[0]["content"] == "survive"  # the accepted message was not lost
        if recovery == "resume":
            assert run["status"] == "succeeded"
            assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["content"] == REPLY
        else:
            assert run["status"] == "failed" and run["error"]["code"] == "worker_lost"
            retried = client.post(f"/v1/runs/{run_id}/retry").json()
            assert retried["status"] in ("pending", "running")
            final = _wait_for(
                lambda: (r := client.get(f"/v1/runs/{retried['run_id']}").json())["status"] == "succeeded" and r
            )
            assert final["status"] == "succeeded"
            messages = client.get(f"/v1/threads/{tid}/messages").json()["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["content"] == REPLY


def test_serve_with_two_workers(server_factory, cluster_env) -> None:
    server = server_factory({**cluster_env, "CHATPLANE_MODEL": "fake:echo"}, args=["--workers", "2"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tid = client.post("/v1/threads", json={}).json()["thread_id"]
        for i in range(6):  # requests land on either worker
            assert client.post(f"/v1/threads/{tid}/runs", json={"message": f"q{i}"}).json()["status"] == "succeeded"
        assert len(client.get(f"/v1/threads/{tid}/messages").json()["messages"]) == 12


def test_sigterm_hands_a_long_run_back_to_another_process(server_factory, cluster_env) -> None:
    env = {**cluster_env, "CHATPLANE_MODEL": f"fake:{REPLY}?token_delay=0.05", "CHATPLANE_SHUTDOWN_GRACE_S": "0.5"}
    leaving, staying = server_factory(env), server_factory(env)
    with httpx.Client(base_url=leaving.url, timeout=30) as client:
        tid = client.post("/v1/threads", json={}).json()["thread_id"]
        run_id = client.post(f"/v1/threads/{tid}/runs", json={"message": "hand me over", "background": True}).json()[
            "run_id"
        ]
        _wait_for(lambda: client.get(f"/v1/runs/{run_id}").json()["status"] == "running")
    leaving.stop()  # SIGTERM: the run outlives the grace period, so it goes back to the queue
    assert "handed 1 run(s) back" in leaving.log()
    with httpx.Client(base_url=staying.url, timeout=30) as client:
        run = _wait_for(lambda: (r := client.get(f"/v1/runs/{run_id}").json())["status"] == "succeeded" and r)
        assert run["status"] == "succeeded"
        messages = client.get(f"/v1/threads/{tid}/messages").json()["messages"]
        assert [m["content"] for m in messages] == ["hand me over", REPLY]


def test_a_dead_worker_s_runs_are_taken_over_before_its_leases_run_out(server_factory, cluster_env, pg_url) -> None:
    """PostgreSQL ends a killed worker's session and frees its advisory lock: another worker notices and takes its
    runs over then, not when their leases would have run out."""
    import psycopg

    env = {**cluster_env, "CHATPLANE_RUN_LEASE_S": "20", "CHATPLANE_MODEL": f"fake:{REPLY}?token_delay=0.05"}
    doomed, survivor = server_factory(env), server_factory(env)
    with httpx.Client(base_url=doomed.url, timeout=30) as on_doomed:
        tid = on_doomed.post("/v1/threads", json={}).json()["thread_id"]
        run_id = on_doomed.post(f"/v1/threads/{tid}/runs", json={"message": "go", "background": True}).json()["run_id"]
        _wait_for(lambda: on_doomed.get(f"/v1/runs/{run_id}").json()["status"] == "running")
        time.sleep(1.0)  # its lease renewed at least once
    with psycopg.connect(pg_url) as conn:
        lease_until = conn.execute("SELECT lease_until FROM chatplane_runs WHERE run_id = %s", (run_id,)).fetchone()[0]
    doomed.kill()  # kill -9, mid-run
    with httpx.Client(base_url=survivor.url, timeout=30) as client:
        _wait_for(lambda: client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded", timeout=60)
        finished_at = client.get(f"/v1/runs/{run_id}").json()["finished_at"]
        messages = client.get(f"/v1/threads/{tid}/messages").json()["messages"]
    assert finished_at < lease_until  # taken over (and done) while the dead worker's lease still stood
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["content"] == REPLY


async def _same_key(urls: list[str], tid: str, n: int) -> list[httpx.Response]:
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    body = {"message": "all at once", "multitask": "enqueue"}
    try:
        return await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    f"/v1/threads/{tid}/runs", json=body, headers={"Idempotency-Key": "k-two-processes"}
                )
                for i in range(n)
            )
        )
    finally:
        for client in clients:
            await client.aclose()


def test_twenty_requests_with_one_key_across_processes_make_one_run(server_factory, cluster_env) -> None:
    env = {**cluster_env, "CHATPLANE_MODEL": "fake:echo?token_delay=0.01"}
    a, b = server_factory(env), server_factory(env)
    with httpx.Client(base_url=a.url, timeout=30) as on_a:
        tid = on_a.post("/v1/threads", json={}).json()["thread_id"]
        answers = asyncio.run(_same_key([a.url, b.url], tid, 20))
        assert {r.status_code for r in answers} == {200}, [r.text for r in answers if r.status_code != 200]
        assert len({r.json()["run_id"] for r in answers}) == 1
        assert len({r.text for r in answers}) == 1  # 20 identical answers
        assert answers[0].json()["output"]["content"] == "echo: all at once"
        messages = on_a.get(f"/v1/threads/{tid}/messages").json()["messages"]
        assert [m["content"] for m in messages] == ["all at once", "echo: all at once"]
        assert len(on_a.get(f"/v1/threads/{tid}/runs").json()) == 1
