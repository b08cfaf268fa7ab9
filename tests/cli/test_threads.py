"""``chatplane threads`` against a server (``--url``); the local-storage path is driven from ``test_chat``."""

from __future__ import annotations

import pexpect

from tests.cli.helpers import spawn as _spawn


def test_threads_commands_against_a_server(server_factory, tmp_path) -> None:
    import httpx

    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    tid = httpx.post(f"{server.url}/v1/threads", json={"title": "remote one"}).json()["thread_id"]
    httpx.post(f"{server.url}/v1/threads/{tid}/runs", json={"message": "over the wire"}, timeout=30)
    listing = _spawn(["threads", "list", "--url", server.url], tmp_path)
    listing.expect("remote one")
    listing.expect(pexpect.EOF)
    shown = _spawn(["threads", "show", tid, "--url", server.url], tmp_path)
    shown.expect("echo: over the wire")
    shown.expect(pexpect.EOF)
    deleted = _spawn(["threads", "delete", tid, "--url", server.url], tmp_path)
    deleted.expect("Deleted")
    deleted.expect(pexpect.EOF)
    assert httpx.get(f"{server.url}/v1/threads/{tid}").status_code == 404


async def test_threads_commands_on_local_storage(tmp_path) -> None:
    """Locally, ``show`` gives the whole thread — earlier turns from the transcript too, not only the checkpoint's
    last run — and ``delete`` refuses a thread whose run is running (the server executing it would write it
    again): it deletes once nothing runs."""
    import asyncio

    from chatplane import ProductionAgent
    from tests.conftest import make_settings

    url = f"sqlite:///{tmp_path}/local.db"
    async with ProductionAgent(settings=make_settings(storage_url=url)) as agent:
        for text in ("first", "second", "third"):
            await agent.achat("cli", text)
        running = await agent.storage.runs.create(
            "session-cli", "cli", "chat", {"message": "x"}, "reject", claim_for=("elsewhere", 1e12)
        )

    def run(args: list[str]) -> str:
        child = _spawn(["threads", *args, "--storage", url, "--user", "cli"], tmp_path)
        child.expect(pexpect.EOF)
        return str(child.before)

    shown = await asyncio.to_thread(run, ["show", "session-cli"])
    assert shown.index("echo: first") < shown.index("echo: second") < shown.index("echo: third")
    refused = await asyncio.to_thread(run, ["delete", "session-cli"])
    assert "is running" in refused and "Deleted" not in refused
    async with ProductionAgent(settings=make_settings(storage_url=url)) as agent:
        await agent.storage.runs.finish(running, "cancelled", {})
    assert "Deleted session-cli" in await asyncio.to_thread(run, ["delete", "session-cli"])
    async with ProductionAgent(settings=make_settings(storage_url=url)) as agent:
        assert await agent.storage.threads.find("session-cli", "cli") is None
