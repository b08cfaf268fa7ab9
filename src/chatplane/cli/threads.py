"""``chatplane threads``: list, show and delete threads — a server's through the SDK with ``--url``, else straight
in local storage as the user ``--user``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from chatplane.cli.common import StorageOpt, console, err_console, friendly, load_settings, run_on_storage
from chatplane.client.errors import ChatplaneClientError
from chatplane.errors import RunStateError, ThreadNotFoundError

if TYPE_CHECKING:
    from chatplane.client import Client
    from chatplane.storage import Storage
    from chatplane.storage.threads import ThreadStore

T = TypeVar("T")
Row = tuple[str, str, str | None, float]  # thread (or session) id, agent, title, updated at
Message = tuple[str, str | None, str]  # role, name, text

app = typer.Typer(
    help="List, show and delete threads: a server's with --url, else those in local storage.", no_args_is_help=True
)
UrlOpt = Annotated[str | None, typer.Option("--url", help="A chatplane server; default: local storage.")]
KeyOpt = Annotated[str | None, typer.Option("--key", envvar="CHATPLANE_API_KEY", help="API key for --url.")]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="Whose threads, in local storage.")]
ThreadArg = Annotated[str, typer.Argument(help="Thread id (or session id in local storage).")]


def _with_threads(storage: str | None, work: Callable[[Storage, ThreadStore], Awaitable[T]]) -> T:
    """Run ``work(storage, its threads)`` against local storage."""

    async def on_storage(opened: Storage) -> T:
        return await work(opened, opened.threads)

    return run_on_storage(load_settings(storage_url=storage), on_storage, exit_code=1)


def _remote(url: str, key: str | None, work: Callable[[Client], T]) -> T:
    """Run ``work(Client)`` against the server at ``url``; its errors are printed and exit 1."""
    from chatplane.client import Client

    try:
        with Client(url, key) as client:
            return work(client)
    except ChatplaneClientError as exc:
        err_console.print(f"[red]{friendly(exc)}[/red]")
        raise typer.Exit(1) from None


@app.command("list")
def list_threads(url: UrlOpt = None, key: KeyOpt = None, user: UserOpt = "cli", storage: StorageOpt = None) -> None:
    """Threads, newest first."""
    rows: list[Row]
    if url:
        rows = _remote(url, key, lambda c: [(t.thread_id, t.agent, t.title, t.updated_at) for t in c.iter_threads()])
    else:

        async def local(_: Storage, store: ThreadStore) -> list[Row]:
            threads, _cursor = await store.list(user, limit=100)
            return [(t.session_id or t.thread_id, t.agent, t.title, t.updated_at) for t in threads]

        rows = _with_threads(storage, local)
    table = Table("thread", "agent", "title", "updated")
    for thread_id, agent, title, updated in rows:
        table.add_row(thread_id, agent, title or "", datetime.fromtimestamp(updated, UTC).strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@app.command("show")
def show(
    thread_id: ThreadArg, url: UrlOpt = None, key: KeyOpt = None, user: UserOpt = "cli", storage: StorageOpt = None
) -> None:
    """A thread's messages."""
    messages: list[Message]
    if url:
        messages = _remote(
            url, key, lambda c: [(m.role, m.name, m.content) for m in c.messages(thread_id, limit=500).messages]
        )
    else:

        async def local(opened: Storage, store: ThreadStore) -> list[Message]:
            thread = await store.find(thread_id, user)
            if thread is None:
                raise ThreadNotFoundError()
            return [(m.type, m.name, m.text) for m in await opened.thread_messages(thread.thread_id)]

        messages = _with_threads(storage, local)
    for role, name, content in messages:
        who = f"{role}" + (f" ({name})" if name else "")
        console.print(f"[bold]{who}[/bold] › ", end="")
        console.print(content, markup=False, highlight=False)


@app.command("delete")
def delete(
    thread_id: ThreadArg, url: UrlOpt = None, key: KeyOpt = None, user: UserOpt = "cli", storage: StorageOpt = None
) -> None:
    """Delete a thread with its messages and runs."""
    if url:
        _remote(url, key, lambda c: c.delete_thread(thread_id))
    else:

        async def local(opened: Storage, store: ThreadStore) -> None:
            thread = await store.find(thread_id, user)
            if thread is None:
                raise ThreadNotFoundError()
            active = await opened.runs.active(thread.thread_id)
            if any(run.status == "running" for run in active):
                raise RunStateError("A run of this thread is running: cancel it, or delete through the server (--url).")
            for run in active:  # pending or waiting for approval: nobody executes them
                await opened.runs.cancel_inactive(run)
            await store.purge(opened.checkpointer, thread.thread_id)

        _with_threads(storage, local)
    console.print(f"Deleted {thread_id}.")
