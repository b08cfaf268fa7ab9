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
