"""Secure by default: authentication, per-user ownership on every route (HTTP, SSE, WebSocket), limits, no leaks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect

from chatplane.errors import ConfigError
from chatplane.llm.fake import FAKE_SECRET
from chatplane.storage.engine import open_storage
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings
from tests.sse import iter_events


async def _create_keys(storage_url: str, *users: str) -> dict[str, str]:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = ApiKeyStore(storage.db)
        return {user: (await store.create(user))[1] for user in users}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- the ownership matrix -------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_another_users_thread_is_a_404_on_every_route_and_nothing_changes(server_factory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sec.db"
    keys = asyncio.run(_create_keys(url, "alice", "bob"))
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:echo?delay=0.2", "CHATPLANE_STORAGE_URL": url, "CHATPLANE_SSE_PING_S": "0.2"}
    )
    alice = httpx.Client(base_url=server.url, headers=_auth(keys["alice"]), timeout=30)
    bob = httpx.Client(base_url=server.url, headers=_auth(keys["bob"]), timeout=30)
    with alice, bob:
        tid = alice.post("/v1/threads", json={"title": "alice's"}).json()["thread_id"]
        run_id = alice.post(f"/v1/threads/{tid}/runs", json={"message": "secret plan"}).json()["run_id"]
        alice.post("/chat", json={"user_id": "alice", "message": "seed secret", "session_id": "s1"})
        waiting = alice.post(f"/v1/threads/{tid}/runs", json={"message": "slow", "background": True}).json()

        def alice_view() -> dict:
            return {
                "thread": alice.get(f"/v1/threads/{tid}").json(),
                "messages": [m["content"] for m in alice.get(f"/v1/threads/{tid}/messages").json()["messages"]],
                "session": alice.get("/history/s1").json(),
                "threads": [t["thread_id"] for t in alice.get("/v1/threads").json()["threads"]],
            }

        alice.post(f"/v1/runs/{waiting['run_id']}/cancel")  # settle alice's state before taking the snapshot
        before = alice_view()

        attempts = [
            ("GET", f"/v1/threads/{tid}", None),
            ("PATCH", f"/v1/threads/{tid}", {"title": "pwned"}),
            ("DELETE", f"/v1/threads/{tid}", None),
            ("GET", f"/v1/threads/{tid}/messages", None),
            ("GET", f"/v1/threads/{tid}/runs", None),
            ("POST", f"/v1/threads/{tid}/runs", {"message": "inject"}),
            ("POST", f"/v1/threads/{tid}/runs", {"message": "inject", "background": True}),
            ("GET", f"/v1/runs/{run_id}", None),
            ("POST", f"/v1/runs/{run_id}/cancel", None),
            ("POST", f"/v1/runs/{run_id}/resume", {"decisions": [{"type": "approve"}]}),
            ("GET", "/history/s1", None),
            ("POST", "/reset?session_id=s1", None),
        ]
        for method, path, body in attempts:
            response = bob.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.status_code)
            assert response.json()["error"]["code"] in ("thread_not_found", "run_not_found", "session_not_found")
        for method, path in (("POST", f"/v1/threads/{tid}/runs/stream"), ("GET", f"/v1/runs/{run_id}/stream")):
            body = {"message": "inject"} if method == "POST" else None
            with bob.stream(method, path, json=body) as response:
                assert response.status_code == 404
        # the seed API: bob's "s1" is his own session, not alice's
        assert bob.post("/chat", json={"user_id": "bob", "message": "mine", "session_id": "s1"}).status_code == 200
        assert bob.get("/history/s1").json()["messages"] == ["mine", "echo: mine"]
        # a missing thread looks exactly the same
        missing = bob.get("/v1/threads/00000000-0000-0000-0000-000000000000")
        assert missing.json() == bob.get(f"/v1/threads/{tid}").json()

        async def bob_websocket() -> tuple[dict, int | None]:
            ws_url = server.url.replace("http://", "ws://") + f"/v1/threads/{tid}/ws"
            async with connect(ws_url, additional_headers=_auth(keys["bob"])) as ws:
                frame = json.loads(await ws.recv())
                await ws.wait_closed()
                return frame, ws.close_code

        frame, code = asyncio.run(bob_websocket())
        assert frame["error"]["code"] == "thread_not_found" and code == 4404
        assert alice_view() == before


@pytest.mark.e2e
def test_websocket_authenticates_by_header_or_first_frame(server_factory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ws.db"
    keys = asyncio.run(_create_keys(url, "alice"))
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": url})
    tid = httpx.post(f"{server.url}/v1/threads", json={}, headers=_auth(keys["alice"])).json()["thread_id"]
    ws_url = server.url.replace("http://", "ws://") + f"/v1/threads/{tid}/ws"

    async def talk(first_frame: dict | None, headers: dict | None = None) -> list[dict]:
        frames = []
        async with connect(ws_url, additional_headers=headers or {}) as ws:
            if first_frame is not None:
                await ws.send(json.dumps(first_frame))
            await ws.send(json.dumps({"type": "message", "message": "hi"}))
            async for raw in ws:
                frames.append(json.loads(raw))
                if frames[-1].get("type") == "error" or frames[-1].get("event", {}).get("type") == "run_completed":
                    break
        return frames

    by_frame = asyncio.run(talk({"type": "auth", "token": keys["alice"]}))
    assert by_frame[-1]["event"]["type"] == "run_completed"
    by_header = asyncio.run(talk(None, _auth(keys["alice"])))
    assert by_header[-1]["event"]["type"] == "run_completed"
    refused = asyncio.run(talk({"type": "auth", "token": "cp_000000000000_nope"}))
    assert refused[-1]["error"]["code"] == "unauthorized"


# --- authentication ---------------------------------------------------------------------------------------------------


async def test_local_user_until_the_first_key_then_keys_only(client_for, tmp_path: Path) -> None:
    client = await client_for(make_settings(storage_url=f"sqlite:///{tmp_path}/a.db"))
    assert (await client.get("/v1/threads")).status_code == 200  # development: the local user
    store = ApiKeyStore(client.app.state.agent.storage.db)
    key_record, key = await store.create("alice", "laptop")
    anonymous = await client.get("/v1/threads")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert (await client.get("/v1/threads", headers=_auth(key))).status_code == 200
    for bad in ("cp_000000000000_wrong", key[:-1] + "x", "Basic abc", "garbage"):
        header = bad if bad.startswith("Basic") else f"Bearer {bad}"
        assert (await client.get("/v1/threads", headers={"Authorization": header})).status_code == 401
    assert await store.revoke(key_record.key_id)
    assert (await client.get("/v1/threads", headers=_auth(key))).status_code == 401  # at once


async def test_a_first_key_created_elsewhere_closes_the_local_user_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    async with (
        open_storage(make_settings(storage_url=url)) as here,
        open_storage(make_settings(storage_url=url)) as cli,
    ):
        server_keys, cli_keys = ApiKeyStore(here.db), ApiKeyStore(cli.db)  # as `chatplane keys create` would
        assert not await server_keys.any_created()
        record, _ = await cli_keys.create("alice")
        assert await server_keys.any_created()
        await cli_keys.revoke(record.key_id)
        assert await server_keys.any_created()  # revoking every key does not reopen the server


class _CountingReads:
    """A ``Database`` that counts ``fetchone`` calls (the key store's reads)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.dialect = db.dialect
        self.reads = 0

    async def fetchone(self, *args: Any) -> Any:
        self.reads += 1
        return await self._db.fetchone(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def _eventually(check: Any, want: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := await check()) != want:
        assert time.monotonic() < deadline, f"still {got!r}"
        await asyncio.sleep(0.01)


@pytest.mark.postgres
async def test_keys_made_or_revoked_elsewhere_reach_a_server_that_caches_them(client_for, pg_url: str) -> None:
    """On PostgreSQL the server caches the keys it has read, and every key change made anywhere (here a second
    store on the same database, as `chatplane keys` on another host) reaches it through LISTEN/NOTIFY."""
    client = await client_for(make_settings(storage_url=pg_url))
    server_keys = client.app.state.authenticator.keys
    counting = server_keys.db = _CountingReads(server_keys.db)
    assert (await client.get("/v1/threads")).status_code == 200  # no key yet: the local user
    assert (await client.get("/v1/threads")).status_code == 200
    assert counting.reads == 1  # the "no key yet" is remembered while nothing changes
    async with open_storage(make_settings(storage_url=pg_url)) as elsewhere:
        cli_keys = ApiKeyStore(elsewhere.db)
        record, key = await cli_keys.create("alice")

        async def anonymous() -> int:
            return (await client.get("/v1/threads")).status_code

        await _eventually(anonymous, 401)  # the first key, made elsewhere, ends the local user
        assert (await client.get("/v1/threads", headers=_auth(key))).status_code == 200
        reads = counting.reads
        assert (await client.get("/v1/threads", headers=_auth(key))).status_code == 200
        assert counting.reads == reads  # cached
        assert await cli_keys.revoke(record.key_id)

        async def with_key() -> int:
            return (await client.get("/v1/threads", headers=_auth(key))).status_code

        await _eventually(with_key, 401)


@pytest.mark.postgres
async def test_a_process_whose_key_listener_is_cut_forgets_its_keys_and_listens_again(pg_url: str) -> None:
    """A change made while the listener was away is never missed: losing the listener, and getting it back,
    each drop the cache (and nothing is cached in between)."""
    import psycopg

    from chatplane.storage.key_changes import APPLICATION_NAME, KeyChangeListener

    async with (
        open_storage(make_settings(storage_url=pg_url)) as here,
        open_storage(make_settings(storage_url=pg_url)) as elsewhere,
    ):
        server_keys, cli_keys = ApiKeyStore(here.db), ApiKeyStore(elsewhere.db)
        listener = KeyChangeListener(pg_url, server_keys.forget, retry_s=0.5)
        server_keys.cache_trusted = lambda: listener.listening
        await listener.start()
        try:
            assert listener.listening
            record, key = await cli_keys.create("bob")
            assert await server_keys.verify(key) is not None  # read, then cached
            with psycopg.connect(pg_url, autocommit=True) as admin:
                killed = admin.execute(  # this test's own database: other tests' listeners run beside it
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND datname = current_database()",
                    (APPLICATION_NAME,),
                ).fetchall()
            assert killed == [(True,)]
            assert await cli_keys.revoke(record.key_id)  # its notification has no listener to reach
            await _eventually(lambda: server_keys.verify(key), None)

            async def listening() -> bool:
                return listener.listening

            await _eventually(listening, True)  # back by itself
            _, other_key = await cli_keys.create("carol")
            counting = server_keys.db = _CountingReads(server_keys.db)

            async def cached() -> bool:  # once the creation's own notification has come and gone
                assert await server_keys.verify(other_key) is not None
                reads = counting.reads
                assert await server_keys.verify(other_key) is not None
                return counting.reads == reads

            await _eventually(cached, True)  # caching again
        finally:
            await listener.aclose()


async def test_seed_user_id_must_be_the_authenticated_user(client_for) -> None:
    client = await client_for(make_settings())
    _, key = await ApiKeyStore(client.app.state.agent.storage.db).create("alice")
    ok = await client.post("/chat", json={"user_id": "alice", "message": "hi"}, headers=_auth(key))
    assert ok.status_code == 200
    spoof = await client.post("/chat", json={"user_id": "bob", "message": "hi"}, headers=_auth(key))
    assert spoof.status_code == 403
    assert spoof.json()["error"]["code"] == "forbidden"
    extra = await client.post("/v1/threads", json={"owner": "bob"}, headers=_auth(key))
    assert extra.status_code == 422  # no mass assignment: unknown fields are refused


async def test_not_on_loopback_means_no_local_user(client_for) -> None:
    client = await client_for(make_settings(host="0.0.0.0"))
    assert (await client.get("/v1/threads")).status_code == 401


def _hs256(secret: str, **claims: object) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, secret, algorithm="HS256")


async def test_jwt_hs256(client_for) -> None:
    secret = "s" * 40
    client = await client_for(make_settings(jwt_secret=secret, jwt_audience="chatplane"))
    good = _hs256(secret, sub="carol", aud="chatplane")
    created = await client.post("/v1/threads", json={}, headers=_auth(good))
    assert created.status_code == 201
    assert (await client.get("/v1/threads")).status_code == 401  # JWT configured: no local user
    for token in (
        _hs256("x" * 40, sub="carol", aud="chatplane"),  # wrong signature
        _hs256(secret, sub="carol", aud="other"),  # wrong audience
        jwt.encode({"exp": int(time.time()) - 10, "sub": "carol", "aud": "chatplane"}, secret, algorithm="HS256"),
        _hs256(secret, sub="bad user!", aud="chatplane"),
        jwt.encode({"sub": "carol", "aud": "chatplane"}, secret, algorithm="HS256"),  # no expiry
    ):
        assert (await client.get("/v1/threads", headers=_auth(token))).status_code == 401


async def test_jwt_from_a_jwks_file(client_for, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    public_jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk]}))
    client = await client_for(make_settings(jwt_jwks=str(jwks)))
    token = jwt.encode({"sub": "dave", "exp": int(time.time()) + 60}, private, algorithm="RS256", headers={"kid": "k1"})
    assert (await client.post("/v1/threads", json={}, headers=_auth(token))).status_code == 201
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sub": "dave", "exp": int(time.time()) + 60}, other, algorithm="RS256", headers={"kid": "k1"})
    assert (await client.get("/v1/threads", headers=_auth(forged))).status_code == 401


# --- production refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({}, "chatplane keys create"),
        ({"cors_origins": ["*"], "jwt_secret": "k" * 40}, "CHATPLANE_CORS_ORIGINS"),
        ({"jwt_secret": "changeme"}, "CHATPLANE_JWT_SECRET"),
        ({"jwt_secret": "short-but-not-default"}, "CHATPLANE_JWT_SECRET"),
    ],
)
async def test_production_refuses_unsafe_settings(client_for, overrides: dict, names: str) -> None:
    with pytest.raises(ConfigError) as refused:
        await client_for(make_settings(env="production", **overrides))
    assert names in refused.value.message


async def test_production_starts_with_a_key(client_for, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    keys = await _create_keys(url, "ops")
    client = await client_for(make_settings(env="production", storage_url=url))
    assert (await client.get("/v1/threads")).status_code == 401
    assert (await client.get("/v1/threads", headers=_auth(keys["ops"]))).status_code == 200


@pytest.mark.e2e
def test_production_refusal_is_a_clear_start_up_message(tmp_path: Path) -> None:
    from tests.servers import ServerProcess, free_port

    server = ServerProcess(
        {"CHATPLANE_ENV": "production", "CHATPLANE_MODEL": "fake:echo", "CHATPLANE_CORS_ORIGINS": '["*"]'},
        free_port(),
        tmp_path,
    )
    with pytest.raises(RuntimeError, match="server exited"):
        server.start(timeout=30)
    assert "CHATPLANE_CORS_ORIGINS" in server.log() and "Traceback" not in server.log()


# --- limits ---------------------------------------------------------------------------------------------------------


async def _keyed(client: httpx.AsyncClient, user: str = "alice") -> httpx.AsyncClient:
    """Authenticate ``client`` with a new key for ``user`` (the local development user is never limited)."""
    _, key = await ApiKeyStore(client.app.state.agent.storage.db).create(user)
    client.headers.update(_auth(key))
    return client


async def test_requests_per_minute_give_429_with_retry_after(client_for) -> None:
    client = await _keyed(await client_for(make_settings(rate_limit_per_minute=3)))
    statuses = [(await client.get("/v1/threads")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/v1/threads")
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert (await client.get("/healthz")).status_code == 200  # probes are never limited


async def test_daily_token_budget(client_for) -> None:
    client = await _keyed(await client_for(make_settings(tokens_per_day=10)))
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    first = await client.post(f"/v1/threads/{tid}/runs", json={"message": "one two three four five six"})
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] > 10
    over = await client.post(f"/v1/threads/{tid}/runs", json={"message": "again"})
    assert over.status_code == 429
    assert "tokens" in over.json()["error"]["message"] and int(over.headers["Retry-After"]) > 0


async def test_concurrent_runs_per_user(client_for) -> None:
    settings = make_settings(model="fake:echo?delay=0.5", max_concurrent_runs_per_user=1)
    client = await _keyed(await client_for(settings))
    t1 = (await client.post("/v1/threads", json={})).json()["thread_id"]
    t2 = (await client.post("/v1/threads", json={})).json()["thread_id"]
    assert (await client.post(f"/v1/threads/{t1}/runs", json={"message": "a", "background": True})).status_code == 202
    second = await client.post(f"/v1/threads/{t2}/runs", json={"message": "b", "background": True})
    assert second.status_code == 429
    local = await client_for(settings)  # the local development user is not limited
    l1 = (await local.post("/v1/threads", json={})).json()["thread_id"]
    l2 = (await local.post("/v1/threads", json={})).json()["thread_id"]
    assert (await local.post(f"/v1/threads/{l1}/runs", json={"message": "a", "background": True})).status_code == 202
    assert (await local.post(f"/v1/threads/{l2}/runs", json={"message": "b", "background": True})).status_code == 202


# --- no leaks -------------------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_provider_error_text_never_reaches_client_or_log(server_factory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/leak.db"
    keys = asyncio.run(_create_keys(url, "alice"))
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:echo?fail=error", "CHATPLANE_STORAGE_URL": url, "CHATPLANE_LOG_LEVEL": "debug"}
    )
    with httpx.Client(base_url=server.url, headers=_auth(keys["alice"]), timeout=30) as client:
        chat = client.post("/chat", json={"user_id": "alice", "message": "hello"})
        assert chat.status_code == 502 and FAKE_SECRET not in chat.text
        tid = client.post("/v1/threads", json={}).json()["thread_id"]
        events = list(iter_events(client, "POST", f"/v1/threads/{tid}/runs/stream", json={"message": "x"}))
        assert events[-1]["type"] == "run_failed" and FAKE_SECRET not in json.dumps(events)
    log = server.log()
    assert "model_error" in log
    assert FAKE_SECRET not in log
    assert keys["alice"] not in log
    assert keys["alice"].split("_")[-1] not in log
