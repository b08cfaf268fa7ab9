"""Webhooks in-process, to a real HTTP receiver: every outcome once with a valid signature, a failing receiver
retried then given up, SSRF attempts (loopback, 169.254.169.254, a redirect to a private address) refused and
recorded, deliveries that outlive a restart, secrets per user, and another user reaching nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from chatplane.service.app import create_app
from chatplane.webhooks import signing
from chatplane.webhooks.guard import check_webhook_url
from tests.conftest import make_settings
from tests.schedules.receiver import webhook_receiver

SECRET = "s" * 40


def as_user(user: str) -> dict[str, str]:
    # Made when the module is collected, which can be long before its tests run in the whole suite: a day, not minutes.
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 86_400}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


ALICE, BOB = as_user("alice"), as_user("bob")


def settings(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "webhook_allowlist": ["127.0.0.1"],
        "webhook_backoff_s": 0.05,
        "webhook_retry_s": 1.0,
        "schedule_poll_s": 0.1,
    }
    return make_settings(**{**values, **overrides})


async def run_with_webhook(client: httpx.AsyncClient, url: str, headers: dict[str, str] = ALICE) -> str:
    thread = (await client.post("/v1/threads", json={}, headers=headers)).json()["thread_id"]
    sent = await client.post(f"/v1/threads/{thread}/runs", json={"message": "hi", "webhook": url}, headers=headers)
    assert sent.status_code == 200, sent.text
    return str(sent.json()["run_id"])


async def settled(client: httpx.AsyncClient, run_id: str, headers: dict[str, str] = ALICE) -> dict[str, Any]:
    """The run's delivery once it is delivered or given up."""
    for _ in range(400):
        answer = await client.get(f"/v1/runs/{run_id}/webhook", headers=headers)
        if answer.status_code == 200 and answer.json()["status"] in ("delivered", "failed"):
            return dict(answer.json())
        await asyncio.sleep(0.025)
    raise AssertionError(f"the webhook of {run_id} never settled")


async def test_every_outcome_is_delivered_once_and_signed(client_for, storage_url: str) -> None:
    with webhook_receiver() as receiver:
        client = await client_for(settings(storage_url=storage_url))
        secret = (await client.get("/v1/webhooks/secret", headers=ALICE)).json()["secret"]
        assert secret.startswith("whsec_")
        runs = [await run_with_webhook(client, f"{receiver.url}/ok") for _ in range(3)]
        for run_id in runs:
            delivery = await settled(client, run_id)
            assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 1
            assert delivery["attempts"][0]["status_code"] == 204 and delivery["attempts"][0]["error"] is None
        await asyncio.sleep(0.3)  # a few more dispatcher rounds: nothing is sent twice
        got = receiver.at("/ok")
        assert sorted(r.headers["webhook-id"] for r in got) == sorted(runs)
        for request in got:
            assert signing.verify(secret, request.headers, request.body)
            assert not signing.verify(secret, request.headers, request.body + b" ")
            assert not signing.verify(secret, request.headers, request.body, now=time.time() + 600)  # replayed late
            payload = httpx.Response(200, content=request.body).json()
            assert payload["type"] == "run.finished" and payload["status"] == "succeeded"
            assert payload["run_id"] == request.headers["webhook-id"] and payload["usage"]["total_tokens"] > 0


async def test_a_failed_run_is_reported_too(client_for, tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        client = await client_for(settings(model="fake:echo?fail=error", storage_url=f"sqlite:///{tmp_path}/f.db"))
        thread = (await client.post("/v1/threads", json={}, headers=ALICE)).json()["thread_id"]
        sent = await client.post(
            f"/v1/threads/{thread}/runs",
            json={"message": "hi", "webhook": f"{receiver.url}/ok", "background": True},
            headers=ALICE,
        )
        run_id = sent.json()["run_id"]
        assert (await settled(client, run_id))["status"] == "delivered"
        [request] = receiver.at("/ok")
        payload = httpx.Response(200, content=request.body).json()
        assert payload["status"] == "failed" and payload["error"]["code"] == "model_error"


async def test_a_failing_receiver_is_retried_then_given_up(client_for) -> None:
    with webhook_receiver() as receiver:
        client = await client_for(settings())
        run_id = await run_with_webhook(client, f"{receiver.url}/fail")
        delivery = await settled(client, run_id)
        attempts = delivery["attempts"]
        # retried after 0.05, 0.1, 0.2, 0.4 s …: at most five attempts fit in the second it may take
        assert delivery["status"] == "failed" and 2 <= len(attempts) <= 5, delivery
        assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
        assert {(a["status_code"], a["error"]) for a in attempts} == {(500, "http 500")}
        assert delivery["next_attempt_at"] is None and delivery["finished_at"] >= attempts[-1]["at"]
        assert len(receiver.at("/fail")) == len(attempts)


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:{port}/ok", "refused: loopback address refused"),
        ("http://localhost:{port}/ok", "refused: loopback address refused"),
        ("http://169.254.169.254/latest/meta-data/", "refused: link-local address refused"),
        ("http://[::1]:{port}/ok", "refused: loopback address refused"),
        ("http://10.1.2.3/hook", "refused: private address refused"),
    ],
)
async def test_ssrf_targets_are_refused_and_recorded(client_for, target: str, reason: str) -> None:
    with webhook_receiver() as receiver:
        client = await client_for(settings(webhook_allowlist=[]))  # nothing allowed but public addresses
        port = receiver.url.rsplit(":", 1)[1]
        run_id = await run_with_webhook(client, target.format(port=port))
        delivery = await settled(client, run_id)
        assert delivery["status"] == "failed" and len(delivery["attempts"]) == 1  # refused: not retried
        assert delivery["attempts"][0]["error"] == reason and delivery["attempts"][0]["status_code"] is None
        assert receiver.requests == []


async def test_a_redirect_to_a_private_address_is_refused(client_for) -> None:
    with webhook_receiver() as receiver:
        client = await client_for(settings())  # the receiver (127.0.0.1) is allowed; where it redirects is not
        for to in ("http://10.0.0.7/admin", "http://169.254.169.254/latest/meta-data/"):
            run_id = await run_with_webhook(client, f"{receiver.url}/redirect?to={to}")
            delivery = await settled(client, run_id)
            [attempt] = delivery["attempts"]
            assert delivery["status"] == "failed" and attempt["error"].startswith("refused: redirect: ")
        assert len(receiver.at("/redirect")) == 2
        # a redirect to an allowed address is followed (and checked)
        run_id = await run_with_webhook(client, f"{receiver.url}/redirect?to={receiver.url}/ok")
        assert (await settled(client, run_id))["status"] == "delivered" and len(receiver.at("/ok")) == 1


@asynccontextmanager
async def serving(app_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, its lifespan running, until the block ends (a process that starts and stops)."""
    app = create_app(app_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chatplane.test") as client,
    ):
        yield client


async def test_a_pending_delivery_survives_a_restart(tmp_path: Path) -> None:
    """Recorded in the database: a process that stops with a delivery waiting for its retry leaves it to the next."""
    url = f"sqlite:///{tmp_path}/restart.db"
    with webhook_receiver() as receiver:
        async with serving(settings(storage_url=url, webhook_backoff_s=0.5, webhook_retry_s=600.0)) as first:
            run_id = await run_with_webhook(first, f"{receiver.url}/fail")
            for _ in range(200):
                delivery = (await first.get(f"/v1/runs/{run_id}/webhook", headers=ALICE)).json()
                if delivery.get("attempts"):
                    break
                await asyncio.sleep(0.025)
            assert delivery["status"] == "pending" and len(delivery["attempts"]) == 1
        # stopped before its retry; the receiver is fixed meanwhile (it answers /fail with 204 now)
        receiver.fixed = True
        async with serving(settings(storage_url=url)) as second:
            delivery = await settled(second, run_id)
        assert delivery["status"] == "delivered" and [a["attempt"] for a in delivery["attempts"]] == [1, 2]
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 204]
        assert len(receiver.at("/fail")) == 2


async def test_a_run_whose_process_stopped_before_telling_the_dispatcher_is_still_reported(client_for) -> None:
    """The delivery is recorded (``waiting``) as the run is accepted: if the run's end is recorded but the process
    stops before making it due, any dispatcher's sweep finds the ended run and delivers it."""
    from chatplane.webhooks.dispatcher import WebhookDispatcher

    with webhook_receiver() as receiver:
        client = await client_for(settings())
        hooks = client.app.state.agent.runs.hooks.finished  # type: ignore[attr-defined]
        [told] = [h for h in hooks if isinstance(getattr(h, "__self__", None), WebhookDispatcher)]
        hooks.remove(told)  # as if the process had died right after recording the outcome
        thread = (await client.post("/v1/threads", json={}, headers=ALICE)).json()["thread_id"]
        body = {"message": "hi", "webhook": f"{receiver.url}/ok", "background": True}
        run_id = (await client.post(f"/v1/threads/{thread}/runs", json=body, headers=ALICE)).json()["run_id"]
        delivery = await settled(client, run_id)
        assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 1
        [request] = receiver.at("/ok")
        assert request.headers["webhook-id"] == run_id
        assert httpx.Response(200, content=request.body).json()["status"] == "succeeded"


async def test_secrets_are_per_user_and_rotate(client_for) -> None:
    client = await client_for(settings())
    alice = (await client.get("/v1/webhooks/secret", headers=ALICE)).json()["secret"]
    assert (await client.get("/v1/webhooks/secret", headers=ALICE)).json()["secret"] == alice
    bob = (await client.get("/v1/webhooks/secret", headers=BOB)).json()["secret"]
    assert bob != alice
    rotated = (await client.post("/v1/webhooks/secret/rotate", headers=ALICE)).json()["secret"]
    assert rotated not in (alice, bob)
    assert (await client.get("/v1/webhooks/secret", headers=ALICE)).json()["secret"] == rotated
    assert (await client.get("/v1/webhooks/secret", headers=BOB)).json()["secret"] == bob


async def test_another_users_run_webhook_is_the_same_404_as_a_missing_one(client_for) -> None:
    with webhook_receiver() as receiver:
        client = await client_for(settings())
        run_id = await run_with_webhook(client, f"{receiver.url}/ok")
        await settled(client, run_id)
        theirs = await client.get(f"/v1/runs/{run_id}/webhook", headers=BOB)
        missing = await client.get("/v1/runs/no-such-run/webhook", headers=BOB)
        assert theirs.status_code == missing.status_code == 404 and theirs.content == missing.content


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook", "http://"])
async def test_a_webhook_that_is_not_http_is_a_422_naming_it(client_for, url: str) -> None:
    client = await client_for(settings())
    thread = (await client.post("/v1/threads", json={}, headers=ALICE)).json()["thread_id"]
    sent = await client.post(f"/v1/threads/{thread}/runs", json={"message": "hi", "webhook": url}, headers=ALICE)
    assert sent.status_code == 422 and "`webhook`" in sent.json()["error"]["message"], sent.text
    body = {"schedule": "0 9 * * *", "message": "hi", "webhook": url}
    cron = await client.post("/v1/crons", json=body, headers=ALICE)
    assert cron.status_code == 422 and "`webhook`" in cron.json()["error"]["message"], cron.text


def test_production_takes_https_only() -> None:
    assert check_webhook_url("https://hooks.example.com/x", production=True)
    for url in ("http://hooks.example.com/x", "ftp://hooks.example.com/x"):
        with pytest.raises(Exception, match="`webhook` must be an https URL"):
            check_webhook_url(url, production=True)
    assert check_webhook_url("http://hooks.example.com/x", production=False)
