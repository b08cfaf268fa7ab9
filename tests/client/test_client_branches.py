"""Branches through the SDK and the CLI against a real server (one process for both)."""

from __future__ import annotations

import pexpect

from chatplane.client import Client
from tests.cli.helpers import spawn


def test_sdk_and_cli_edit_regenerate_switch_and_fork(server_factory, tmp_path) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    with Client(server.url) as client:
        tid = client.create_thread(title="branches").thread_id
        client.run(tid, "one")
        client.run(tid, "two")
        first, _, second, answer = [m.message for m in client.branch(tid).messages]
        again = client.regenerate(tid, answer.id)
        assert again.output is not None and again.output.content == "echo: two"
        resent = client.branch(tid).messages[2].message  # a regenerate sends the turn's user message again
        assert resent.content == "two" and resent.id != second.id
        edited = client.edit_message(tid, resent.id, "TWO")
        assert edited.output is not None and edited.output.content == "echo: TWO"
        current = client.branch(tid).messages
        assert [m.message.content for m in current] == ["one", "echo: one", "TWO", "echo: TWO"]
        assert current[2].siblings is not None and (current[2].siblings.index, current[2].siblings.count) == (2, 3)
        history = client.thread_history(tid, limit=1)
        assert [t.index for t in history.turns] == [1] and history.next_cursor == "1"
        back = client.switch_branch(tid, second.id)
        assert [m.message.content for m in back.messages] == ["one", "echo: one", "two", "echo: two"]
        forked = client.fork_thread(tid, message_id=first.id)
        assert [m.content for m in client.messages(forked.thread_id).messages] == ["one", "echo: one"]

    shown = spawn(["branch", "show", tid, "--url", server.url], tmp_path)
    shown.expect(r"\[1/3\] user")
    shown.expect(pexpect.EOF)
    edit = spawn(["branch", "edit", tid, second.id, "again", "--url", server.url], tmp_path)
    edit.expect("echo: again")
    edit.expect(pexpect.EOF)
    switched = spawn(["branch", "switch", tid, second.id, "--url", server.url], tmp_path)
    switched.expect(r"\[1/4\] user")
    switched.expect(pexpect.EOF)
