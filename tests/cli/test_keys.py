"""``chatplane keys``: create, list and revoke straight in the storage database, as an operator would."""

from __future__ import annotations

import re

import pexpect

from tests.cli.helpers import spawn


def _run(args: list[str], cwd) -> tuple[int, str]:
    child = spawn(args, cwd)
    child.expect(pexpect.EOF)
    output = child.before or ""
    child.close()
    return child.exitstatus, output


def test_keys_create_list_revoke(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path}/keys.db"
    status, output = _run(["keys", "create", "--user", "alice", "--name", "laptop", "--storage", storage], tmp_path)
    assert status == 0
    key_id = re.search(r"Key (\w+) for user alice", output)
    assert key_id is not None
    assert re.search(rf"cp_{key_id[1]}_\S+", output)  # the full key, printed once

    status, output = _run(["keys", "list", "--user", "alice", "--storage", storage], tmp_path)
    assert status == 0
    assert key_id[1] in output and "laptop" in output and "active" in output
    assert "cp_" not in output  # never the secret

    status, output = _run(["keys", "revoke", key_id[1], "--storage", storage], tmp_path)
    assert (status, f"Revoked {key_id[1]}.") == (0, output.strip())
    status, output = _run(["keys", "list", "--storage", storage], tmp_path)
    assert "revoked" in output
    status, output = _run(["keys", "revoke", key_id[1], "--storage", storage], tmp_path)
    assert status == 1 and f"No active key {key_id[1]}" in output


def test_keys_refuse_memory_storage_and_a_bad_user(tmp_path) -> None:
    status, output = _run(["keys", "create", "--user", "alice", "--storage", "memory://"], tmp_path)
    assert status == 2 and "would vanish" in output
    status, output = _run(
        ["keys", "create", "--user", "no spaces", "--storage", f"sqlite:///{tmp_path}/k.db"], tmp_path
    )
    assert status == 2 and "user must be" in output
