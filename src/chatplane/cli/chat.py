"""``chatplane chat``: chat in the terminal, with an agent in this process or a server's (``--url``); answers
stream as they are generated, and /commands switch, list, reopen and clear sessions."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Annotated

import typer
from rich.table import Table

from chatplane.cli.common import ModelOpt, StorageOpt, console, err_console, friendly, load_settings
from chatplane.cli.conversations import Conversation, LocalConversation, RemoteConversation
from chatplane.cli.history import show_history
from chatplane.client.errors import ChatplaneClientError
from chatplane.errors import ChatplaneError
from chatplane.events import Retraction
from chatplane.schemas import ID_PATTERN

CHAT_HELP = (
    "Commands: /new, /agent NAME (chat, react, multi: a new session with it), /threads, /open ID, /history, "
    "/reset, /help, /quit. Ctrl-D quits too."
)


def chat(
    url: Annotated[
        str | None,
        typer.Option("--url", help="A chatplane server to talk to; default: run the agent in-process."),
    ] = None,
    user: Annotated[str, typer.Option("--user", "-u", help="Your user id.")] = "cli",
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Session (in-process) or thread id (--url) to continue.")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--key", envvar="CHATPLANE_API_KEY", help="API key for --url.")] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent", "-a", help="Agent of a new session: chat, react, multi, or a graph or assistant of the server."
        ),
    ] = None,
    model: ModelOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Chat in the terminal; answers stream as they are generated."""
    conversation: Conversation
    if agent is not None and not re.fullmatch(ID_PATTERN, agent):
        err_console.print(f"[red]{agent!r} is no agent name: see GET /agents (chat, react, multi …).[/red]")
        raise typer.Exit(2)
    if url:
        try:
            conversation = RemoteConversation(url, api_key, session, agent)
        except ChatplaneClientError as exc:
            err_console.print(f"[red]{friendly(exc)}[/red]")
            raise typer.Exit(2) from None
        where = url
    else:
        settings = load_settings(model=model, storage_url=storage, log_level="warning")
        logging.basicConfig(level=logging.WARNING)
        with console.status(f"Starting {settings.model} ..."):
            try:
                conversation = LocalConversation(settings, user, session or f"cli-{secrets.token_hex(4)}", agent)
            except ChatplaneError as exc:
                err_console.print(f"[red]{exc.message}[/red]")
                raise typer.Exit(2) from None
        where = settings.model
    console.print(
        f"[bold]chatplane[/bold] · {where} · session [cyan]{conversation.session}[/cyan] "
        f"({conversation.agent_name or 'default agent'})\n[dim]{CHAT_HELP}[/dim]"
    )
    try:
        _repl(conversation)
    finally:
        conversation.close()


def _repl(conversation: Conversation) -> None:
    while True:
        try:
            line = console.input("[bold green]you ›[/bold green] ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not line:
            continue
        if line.startswith("/"):
            if _command(conversation, line):
                return
            continue
        console.print("[bold blue]agent ›[/bold blue] ", end="")
        answer = conversation.stream(line)
        try:
            for text in answer:
                if isinstance(text, Retraction):  # what was shown is void: the answer starts over below it
                    console.print("\n[dim](the model was tried again; its answer:)[/dim]")
                    continue
                console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
            console.print()
        except (ChatplaneError, ChatplaneClientError) as exc:
            console.print()
            err_console.print(f"[red]{friendly(exc)}[/red]")
        except KeyboardInterrupt:
            answer.close()  # stops the run (on a server: cancelled), not only its display
            console.print("\n[dim](interrupted: the answer was stopped)[/dim]")


def _command(conversation: Conversation, line: str) -> bool:
    """Run a /command; True means quit."""
    name = line.split()[0].lower()
    try:
        if name in ("/quit", "/exit", "/q"):
            return True
        if name == "/new":
            conversation.new()
            console.print(f"[dim]new session {conversation.session}[/dim]")
        elif name == "/agent":
            parts = line.split()
            if len(parts) != 2 or not re.fullmatch(ID_PATTERN, parts[1]):
                console.print("[dim]usage: /agent NAME (a graph or assistant: chat, react, multi …)[/dim]")
            else:
                conversation.new(parts[1])
                console.print(f"[dim]new session {conversation.session} with the {parts[1]} agent[/dim]")
        elif name == "/threads":
            table = Table("session", "agent", "title", box=None)
            for session, agent, title in conversation.sessions():
                marker = " ←" if session == conversation.session else ""
                table.add_row(session + marker, agent, title)
            console.print(table)
        elif name == "/open":
            parts = line.split()
            if len(parts) != 2:
                console.print("[dim]usage: /open SESSION (see /threads)[/dim]")
            else:
                conversation.open(parts[1])
                console.print(f"[dim]session {conversation.session} ({conversation.agent_name})[/dim]")
        elif name == "/history":
            show_history(console, conversation.history())
        elif name == "/reset":
            conversation.reset()
            console.print("[dim]session cleared[/dim]")
        else:
            console.print(f"[dim]{CHAT_HELP}[/dim]")
    except (ChatplaneError, ChatplaneClientError) as exc:
        err_console.print(f"[red]{friendly(exc)}[/red]")
    return False
