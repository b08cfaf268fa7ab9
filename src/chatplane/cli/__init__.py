"""The ``chatplane`` command (``[project.scripts]`` and ``python -m chatplane`` both call ``main``).

One module per command or command group — ``serve``, ``chat`` (with ``conversations``), ``agents``, ``prune``,
``keys``, ``threads``, ``webhooks``, ``memory``, ``users`` — and ``common`` for what they share; this module only
assembles them into one Typer app."""

from __future__ import annotations

import typer

from chatplane.cli import branches, keys, memory, threads, users, webhooks
from chatplane.cli.agents import agents
from chatplane.cli.chat import chat
from chatplane.cli.prune import prune
from chatplane.cli.serve import serve

app = typer.Typer(
    help="chatplane: a production-grade service for LLM agents.", no_args_is_help=True, add_completion=False
)
app.command()(serve)
app.command()(chat)
app.command()(prune)
app.command()(agents)
app.add_typer(keys.app, name="keys")
app.add_typer(threads.app, name="threads")
app.add_typer(branches.app, name="branch")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(memory.app, name="memory")
app.add_typer(users.app, name="users")


def main() -> None:
    app()


__all__ = ["app", "main"]
