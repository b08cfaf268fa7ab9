"""Readiness means "can serve": a busy pool is ready, an unreachable database is not; liveness never asks either."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_settings
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("busy", [False, True])
async def test_readyz_stays_200_with_every_pooled_connection_busy(pg_url: str, client_for, busy: bool) -> None:
    settings = make_settings(storage_url=pg_url, pg_pool_min_size=2, pg_pool_max_size=2, storage_timeout_s=5.0)
    client = await client_for(settings)
    pool = client.app.state.agent.storage.pool
    async with AsyncExitStack() as held:
        if busy:
            for _ in range(2):  # the whole pool, taken and kept for the length of the probes
                await held.enter_async_context(pool.connection())
            assert pool.get_stats()["pool_available"] == 0
        for _ in range(3):
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready", "checks": {"storage": True, "model": True}}
    assert (await client.post("/chat", json={"user_id": "a", "message": "hi"})).status_code == 200


async def test_readyz_is_503_when_postgres_is_unreachable_and_200_again_after(pg_url: str, client_for) -> None:
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    client = await client_for(make_settings(storage_url=proxied, storage_timeout_s=1.0))
    assert (await client.get("/readyz")).status_code == 200  # the probe's own connection is open now

    await proxy.cut()  # every connection dropped, nothing listening: the kept one dies, a new one is refused
    down = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "checks": {"storage": False, "model": True}}
    assert (await client.get("/healthz")).status_code == 200  # liveness: the process is fine, no restart

    await proxy.start()
    for _ in range(50):
        if (await client.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("not ready again after the database came back")
    await proxy.cut()


async def test_readyz_is_503_when_postgres_was_never_there_after_start(pg_url: str, client_for) -> None:
    """A database whose port closes for good (as after its host went away) fails readiness promptly."""
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    client = await client_for(make_settings(storage_url=proxied, storage_timeout_s=1.0))
    await proxy.cut()  # before the first probe: it has no connection yet and cannot open one
    for _ in range(2):
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["storage"] is False


async def test_a_database_that_accepts_but_never_answers_fails_the_probe_within_its_bound() -> None:
    from chatplane.storage.probe import PostgresProbe

    silent: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)  # kept open, never a byte back (a host behind a dropped route)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = PostgresProbe(f"postgresql://u@127.0.0.1:{port}/db", timeout_s=0.5)
    try:
        assert await probe.ping() is False
    finally:
        await probe.close()
        for writer in silent:
            writer.transport.abort()
        server.close()
        await server.wait_closed()
