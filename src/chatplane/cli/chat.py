"""The ``chatplane`` command: ``serve`` the API, ``chat`` in a terminal."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.table import Table

from chatplane.client.errors import ChatplaneClientError
from chatplane.config import Settings
from chatplane.errors import ChatplaneError, ThreadNotFoundError

AGENT_NAMES = ("chat", "react", "multi")

app = typer.Typer(
    help="chatplane: a production-grade service for LLM agents.", no_args_is_help=True, add_completion=False
)
console = Console()
err_console = Console(stderr=True)

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model id, e.g. local:smollm2-135m, openai:gpt-4o, fake:echo."),
]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Storage URL: sqlite:///path.db, postgresql://..., memory://")
]


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:  # pydantic's ValidationError; its text names the setting, never a secret value
        err_console.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (CHATPLANE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CHATPLANE_PORT).")] = None,
    model: ModelOpt = None,
    storage: StorageOpt = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes; more than one needs PostgreSQL storage and Redis.")
    ] = 1,
) -> None:
    """Start the HTTP API (and the web page) on the configured model and storage."""
    import os

    import uvicorn

    from chatplane.observability.logging import configure_logging
    from chatplane.service.app import create_app

    overrides = {"host": host, "port": port, "model": model, "storage_url": storage}
    settings = _settings(**overrides)
    configure_logging(settings)
    if workers > 1:
        if not settings.storage_url.startswith(("postgresql://", "postgres://")) or not settings.redis_url:
            err_console.print(
                "[red]Several workers share state through PostgreSQL and Redis: set CHATPLANE_STORAGE_URL to a "
                "postgresql:// URL and CHATPLANE_REDIS_URL.[/red]"
            )
            raise typer.Exit(2)
        # Each worker process builds its own app from the environment: pass the command-line choices down.
        for name, value in overrides.items():
            if value is not None:
                os.environ[f"CHATPLANE_{name.upper()}"] = str(value)
    console.print(f"chatplane on http://{settings.host}:{settings.port}  model={settings.model}  workers={workers}")
    uvicorn.run(
        create_app(settings, own_process=True) if workers == 1 else "chatplane.service.app:app_factory",
        factory=workers > 1,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )


class _Conversation(Protocol):
    session: str
    agent_name: str | None

    def new(self, agent: str | None = None) -> None: ...
    def open(self, session: str) -> None: ...
    def stream(self, message: str) -> Iterator[str]: ...
    def history(self) -> list[tuple[str, str]]: ...
    def sessions(self) -> list[tuple[str, str, str]]: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class _LocalConversation:
    """Chat with an agent running in this process (the sync API of ``ProductionAgent``)."""

    def __init__(self, settings: Settings, user: str, session: str, agent: str | None) -> None:
        from chatplane.agent import ProductionAgent

        self.user, self.session, self.agent_name = user, session, agent
        self.agent = ProductionAgent(settings=settings)
        self.agent.__enter__()

    def new(self, agent: str | None = None) -> None:
        self.session = f"cli-{secrets.token_hex(4)}"
        self.agent_name = agent or self.agent_name

    def open(self, session: str) -> None:
        known = {t.session_id or t.thread_id: t for t in self.agent.list_sessions(self.user, limit=100)}
        if session not in known:
            raise ChatplaneError(f"No session {session!r}; /threads lists yours.")
        self.session, self.agent_name = session, known[session].agent

    def stream(self, message: str) -> Iterator[str]:
        return self.agent.stream_chat(self.user, message, self.session, agent=self.agent_name)

    def history(self) -> list[tuple[str, str]]:
        return [(m.type, m.text) for m in self.agent.get_history(self.session)]

    def sessions(self) -> list[tuple[str, str, str]]:
        return [(t.session_id or t.thread_id, t.agent, t.title or "") for t in self.agent.list_sessions(self.user)]

    def reset(self) -> None:
        self.agent.reset_session(self.session)

    def close(self) -> None:
        self.agent.close()


class _RemoteConversation:
    """Chat with a running chatplane server through the SDK: the session is a thread, answers stream over SSE."""

    def __init__(self, url: str, api_key: str | None, session: str | None, agent: str | None) -> None:
        from chatplane.client import Client

        self.client = Client(url, api_key)
        self.agent_name = agent
        try:
            if session:
                self.open(session)
            else:
                self.new(agent)
        except Exception:
            self.client.close()
            raise

    def new(self, agent: str | None = None) -> None:
        self.agent_name = agent or self.agent_name
        thread = self.client.create_thread(agent=self.agent_name, title="chatplane chat")
        self.session, self.agent_name = thread.thread_id, thread.agent

    def open(self, session: str) -> None:
        thread = self.client.get_thread(session)
        self.session, self.agent_name = thread.thread_id, thread.agent

    def stream(self, message: str) -> Iterator[str]:
        for event in self.client.stream(self.session, message, multitask="enqueue"):
            if event.type == "token":
                yield str(event.data["text"])
            elif event.type == "run_failed":
                raise ChatplaneError(event.data["error"]["message"])

    def history(self) -> list[tuple[str, str]]:
        roles = {"user": "human", "assistant": "ai"}
        return [(roles.get(m.role, m.role), m.content) for m in self.client.messages(self.session, limit=500).messages]

    def sessions(self) -> list[tuple[str, str, str]]:
        return [(t.thread_id, t.agent, t.title or "") for t in self.client.list_threads(limit=20).threads]

    def reset(self) -> None:
        self.client.delete_thread(self.session)
        self.new()

    def close(self) -> None:
        self.client.close()


CHAT_HELP = (
    "Commands: /new, /agent NAME (chat, react, multi: a new session with it), /threads, /open ID, /history, "
    "/reset, /help, /quit. Ctrl-D quits too."
)


@app.command()
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
        str | None, typer.Option("--agent", "-a", help="Agent of a new session: chat, react or multi.")
    ] = None,
    model: ModelOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Chat in the terminal; answers stream as they are generated."""
    conversation: _Conversation
    if agent is not None and agent not in AGENT_NAMES:
        err_console.print(f"[red]Unknown agent {agent!r}: choose {', '.join(AGENT_NAMES)}.[/red]")
        raise typer.Exit(2)
    if url:
        try:
            conversation = _RemoteConversation(url, api_key, session, agent)
        except ChatplaneClientError as exc:
            err_console.print(f"[red]{_friendly(exc)}[/red]")
            raise typer.Exit(2) from None
        where = url
    else:
        settings = _settings(model=model, storage_url=storage, log_level="warning")
        logging.basicConfig(level=logging.WARNING)
        with console.status(f"Starting {settings.model} ..."):
            try:
                conversation = _LocalConversation(settings, user, session or f"cli-{secrets.token_hex(4)}", agent)
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


def _repl(conversation: _Conversation) -> None:
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
        try:
            for text in conversation.stream(line):
                console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
            console.print()
        except (ChatplaneError, ChatplaneClientError) as exc:
            console.print()
            err_console.print(f"[red]{_friendly(exc)}[/red]")
        except KeyboardInterrupt:
            console.print("\n[dim](interrupted)[/dim]")


def _command(conversation: _Conversation, line: str) -> bool:
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
            if len(parts) != 2 or parts[1] not in AGENT_NAMES:
                console.print(f"[dim]usage: /agent {'|'.join(AGENT_NAMES)}[/dim]")
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
            for role, text in conversation.history():
                who = "[green]you[/green]" if role == "human" else "[blue]agent[/blue]"
                console.print(f"{who} › ", end="")
                console.print(text, markup=False, highlight=False)
        elif name == "/reset":
            conversation.reset()
            console.print("[dim]session cleared[/dim]")
        else:
            console.print(f"[dim]{CHAT_HELP}[/dim]")
    except (ChatplaneError, ChatplaneClientError) as exc:
        err_console.print(f"[red]{_friendly(exc)}[/red]")
    return False


def _friendly(exc: Exception) -> str:
    """The message to show for an error: the server's safe message, never a traceback."""
    message = getattr(exc, "message", None)
    return str(message) if message else str(exc)


keys_app = typer.Typer(help="Manage API keys (stored hashed in the storage database).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _with_keys(storage: str | None, work: Any) -> Any:
    """Run ``work(ApiKeyStore)`` against the configured storage."""
    import asyncio

    from chatplane.keys import ApiKeyStore
    from chatplane.storage import open_storage

    settings = _settings(storage_url=storage)
    if settings.storage_url.startswith("memory://"):
        err_console.print("[red]Keys in memory:// storage would vanish at once; set CHATPLANE_STORAGE_URL.[/red]")
        raise typer.Exit(2)

    async def run() -> Any:
        async with open_storage(settings) as opened:
            return await work(ApiKeyStore(opened.db))

    try:
        return asyncio.run(run())
    except ChatplaneError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", "-u", help="The user the key acts as.")],
    name: Annotated[str | None, typer.Option("--name", help="A label to recognise the key by.")] = None,
    storage: StorageOpt = None,
) -> None:
    """Create a key and print it — once: only its hash is stored."""
    from chatplane.agent import check_id

    try:
        check_id("user", user)
    except ChatplaneError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    key, secret = _with_keys(storage, lambda store: store.create(user, name))
    console.print(f"Key [cyan]{key.key_id}[/cyan] for user [bold]{user}[/bold]. Keep it now; it is not shown again:")
    print(secret)


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's keys.")] = None,
    storage: StorageOpt = None,
) -> None:
    """List keys (ids, users, names, status) — never the secrets."""
    from datetime import UTC, datetime

    from rich.table import Table

    keys = _with_keys(storage, lambda store: store.list(user))
    table = Table("key id", "user", "name", "created", "status")
    for key in keys:
        created = datetime.fromtimestamp(key.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(key.key_id, key.user_id, key.name or "", created, "revoked" if key.revoked_at else "active")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `keys list`).")],
    storage: StorageOpt = None,
) -> None:
    """Revoke a key: it stops working on the next request."""
    if not _with_keys(storage, lambda store: store.revoke(key_id)):
        err_console.print(f"[red]No active key {key_id}.[/red]")
        raise typer.Exit(1)
    console.print(f"Revoked {key_id}.")


threads_app = typer.Typer(
    help="List, show and delete threads: a server's with --url, else those in local storage.", no_args_is_help=True
)
app.add_typer(threads_app, name="threads")
UrlOpt = Annotated[str | None, typer.Option("--url", help="A chatplane server; default: local storage.")]
KeyOpt = Annotated[str | None, typer.Option("--key", envvar="CHATPLANE_API_KEY", help="API key for --url.")]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="Whose threads, in local storage.")]


def _with_threads(storage: str | None, work: Any) -> Any:
    """Run ``work(storage, ThreadStore)`` against local storage."""
    import asyncio

    from chatplane.storage import open_storage
    from chatplane.threads import ThreadStore

    settings = _settings(storage_url=storage)

    async def run() -> Any:
        async with open_storage(settings) as opened:
            return await work(opened, ThreadStore(opened.db))

    try:
        return asyncio.run(run())
    except ChatplaneError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None


def _remote(url: str, key: str | None, work: Any) -> Any:
    from chatplane.client import Client

    try:
        with Client(url, key) as client:
            return work(client)
    except ChatplaneClientError as exc:
        err_console.print(f"[red]{_friendly(exc)}[/red]")
        raise typer.Exit(1) from None


@threads_app.command("list")
def threads_list(url: UrlOpt = None, key: KeyOpt = None, user: UserOpt = "cli", storage: StorageOpt = None) -> None:
    """Threads, newest first."""
    from datetime import UTC, datetime

    if url:
        rows = _remote(url, key, lambda c: [(t.thread_id, t.agent, t.title, t.updated_at) for t in c.iter_threads()])
    else:

        async def local(_: Any, store: Any) -> list[Any]:
            threads, _cursor = await store.list(user, limit=100)
            return [(t.session_id or t.thread_id, t.agent, t.title, t.updated_at) for t in threads]

        rows = _with_threads(storage, local)
    table = Table("thread", "agent", "title", "updated")
    for thread_id, agent, title, updated in rows:
        table.add_row(thread_id, agent, title or "", datetime.fromtimestamp(updated, UTC).strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@threads_app.command("show")
def threads_show(
    thread_id: Annotated[str, typer.Argument(help="Thread id (or session id in local storage).")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    user: UserOpt = "cli",
    storage: StorageOpt = None,
) -> None:
    """A thread's messages."""
    if url:
        messages = _remote(
            url, key, lambda c: [(m.role, m.name, m.content) for m in c.messages(thread_id, limit=500).messages]
        )
    else:

        async def local(opened: Any, store: Any) -> list[tuple[str, str | None, str]]:
            thread = await store.find(thread_id, user)
            if thread is None:
                raise ThreadNotFoundError()
            saved = await opened.checkpointer.aget_tuple({"configurable": {"thread_id": thread.thread_id}})
            values = saved.checkpoint["channel_values"] if saved else {}
            return [(m.type, m.name, m.text) for m in values.get("messages", [])]

        messages = _with_threads(storage, local)
    for role, name, content in messages:
        who = f"{role}" + (f" ({name})" if name else "")
        console.print(f"[bold]{who}[/bold] › ", end="")
        console.print(content, markup=False, highlight=False)


@threads_app.command("delete")
def threads_delete(
    thread_id: Annotated[str, typer.Argument(help="Thread id (or session id in local storage).")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    user: UserOpt = "cli",
    storage: StorageOpt = None,
) -> None:
    """Delete a thread with its messages and runs."""
    if url:
        _remote(url, key, lambda c: c.delete_thread(thread_id))
    else:

        async def local(opened: Any, store: Any) -> None:
            thread = await store.find(thread_id, user)
            if thread is None:
                raise ThreadNotFoundError()
            await store.purge(opened.checkpointer, thread.thread_id)

        _with_threads(storage, local)
    console.print(f"Deleted {thread_id}.")


@app.command()
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete threads idle for longer than this: 30d, 12h, 90m (default: CHATPLANE_RETENTION_DAYS; "
            "neither: only threads past their own TTL).",
        ),
    ] = None,
    storage: StorageOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; change nothing.")] = False,
) -> None:
    """Delete old threads (messages, runs) and the superseded checkpoints of the others."""
    import asyncio

    from chatplane.retention import parse_duration, prune_once
    from chatplane.storage import open_storage

    settings = _settings(storage_url=storage)
    try:
        older_than_s = parse_duration(older_than) if older_than else None
    except ValueError as exc:
        err_console.print(f"[red]--older-than: {exc}[/red]")
        raise typer.Exit(2) from None
    if older_than_s is None and settings.retention_days is not None:
        older_than_s = settings.retention_days * 86400

    async def run() -> Any:
        async with open_storage(settings) as opened:
            return await prune_once(opened, older_than_s, dry_run=dry_run)

    try:
        report = asyncio.run(run())
    except ChatplaneError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    if report is None:
        err_console.print("Another process is pruning this database now; try again later.")
        raise typer.Exit(1)
    console.print(("Dry run: " if dry_run else "") + str(report) + ".", soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
