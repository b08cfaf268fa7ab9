"""The assembled ``chatplane`` app: every command and command group is registered and answers ``--help``."""

from __future__ import annotations

import pexpect
import pytest

from tests.cli.helpers import spawn as _spawn


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["chat", "--help"]])
def test_help_everywhere(args: list[str], tmp_path) -> None:
    child = _spawn(args, tmp_path)
    child.expect("Usage")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.parametrize("args", [["threads", "--help"], ["threads", "list", "--help"], ["keys", "--help"]])
def test_help_for_command_groups(args: list[str], tmp_path) -> None:
    child = _spawn(args, tmp_path)
    child.expect("Usage")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
