"""How ``/history`` shows a conversation: the agent's answers rendered as Markdown, each tool call and tool result on
a line of its own — never the raw text of either."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

from chatplane.cli.conversations import Said

_RESULT_CHARS = 200


def show_history(console: Console, history: list[Said]) -> None:
    for said in history:
        if said.role == "user":
            console.print(Text.assemble(("you", "green"), " › ", said.text))
        elif said.role == "tool":
            tool = (said.name or "tool", "red" if said.status == "error" else "cyan")
            console.print(Text.assemble(("  ← ", "dim"), tool, ": ", _short(said.text)), style="dim")
        else:
            for name, args in said.tool_calls:
                console.print(Text.assemble(("  → ", "dim"), (name, "cyan"), (f"({_arguments(args)})", "dim")))
            if said.text.strip():
                stopped = " (stopped)" if said.status == "cancelled" else ""
                console.print(Text.assemble(("agent", "blue"), f" ›{stopped}"))
                console.print(Markdown(said.text))


def _arguments(args: dict[str, Any]) -> str:
    return _short(", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in args.items()))


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _RESULT_CHARS else line[: _RESULT_CHARS - 1] + "…"
