"""Driving ``python -m chatplane`` through a pseudo-terminal, as a person would, for the CLI tests."""

from __future__ import annotations

import os
import sys

import pexpect


def spawn(args: list[str], cwd, env_extra: dict[str, str] | None = None) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATPLANE_", "OPENAI_"))}
    env.update({"TERM": "dumb", "COLUMNS": "120", **(env_extra or {})})
    return pexpect.spawn(
        sys.executable, ["-m", "chatplane", *args], cwd=str(cwd), env=env, encoding="utf-8", timeout=60
    )
