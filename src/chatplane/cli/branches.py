"""``chatplane branch``: a server's thread as a tree of turns (with ``--url``, through the SDK) — show the current
branch with its versions ("2/3"), edit a message, regenerate an answer, switch branch, fork a thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chatplane.cli.common import console
from chatplane.cli.threads import KeyOpt, ThreadArg, _remote

if TYPE_CHECKING:
    from chatplane.branch_schemas import BranchOut

app = typer.Typer(
    help="A thread's branches on a server: show, edit, regenerate, switch, fork (docs/branches.md).",
    no_args_is_help=True,
)
ServerOpt = Annotated[str, typer.Option("--url", help="The chatplane server.")]
MessageArg = Annotated[str, typer.Argument(help="A message id (`chatplane branch show` lists them).")]


def _print(branch: BranchOut) -> None:
    for item in branch.messages:
        message = item.message
        versions = f" [{item.siblings.index + 1}/{item.siblings.count}]" if item.siblings else ""
        console.print(f"[dim]{message.id}[/dim]{versions} [bold]{message.role}[/bold] › ", end="")
        console.print(message.content, markup=False, highlight=False)


@app.command("show")
def show(thread_id: ThreadArg, url: ServerOpt, key: KeyOpt = None) -> None:
    """The current branch, each message with its id, and [n/m] where it has other versions."""
    _print(_remote(url, key, lambda c: c.branch(thread_id)))


@app.command("edit")
def edit(
    thread_id: ThreadArg,
    message_id: MessageArg,
    text: Annotated[str, typer.Argument(help="The new text.")],
    url: ServerOpt,
    key: KeyOpt = None,
) -> None:
    """Edit a user message: a new branch from there, and its answer."""
    run = _remote(url, key, lambda c: c.edit_message(thread_id, message_id, text))
    console.print(run.output.content if run.output else "", markup=False, highlight=False)


@app.command("regenerate")
def regenerate(thread_id: ThreadArg, message_id: MessageArg, url: ServerOpt, key: KeyOpt = None) -> None:
    """Another answer to a turn, on a new branch."""
    run = _remote(url, key, lambda c: c.regenerate(thread_id, message_id))
    console.print(run.output.content if run.output else "", markup=False, highlight=False)


@app.command("switch")
def switch(thread_id: ThreadArg, message_id: MessageArg, url: ServerOpt, key: KeyOpt = None) -> None:
    """Make the newest branch through a message (of any branch) the current one, and show it."""
    _print(_remote(url, key, lambda c: c.switch_branch(thread_id, message_id)))


@app.command("fork")
def fork(
    thread_id: ThreadArg,
    url: ServerOpt,
    key: KeyOpt = None,
    message_id: Annotated[str | None, typer.Option("--at", help="Up to this message's turn (default: all).")] = None,
) -> None:
    """A new thread with this one's current branch (up to a turn), by reference."""
    new = _remote(url, key, lambda c: c.fork_thread(thread_id, message_id=message_id))
    console.print(f"Forked into {new.thread_id}.")
