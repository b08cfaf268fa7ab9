"""``chatplane memory``: list, search and delete what the assistants remember about a user (their long-term store
items) — a server's through the SDK with ``--url``, else straight in local storage as the user ``--user``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from chatplane.cli.common import StorageOpt, console, err_console, friendly, load_settings, run_on_storage
from chatplane.client.errors import ChatplaneClientError

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore

    from chatplane.client import Client
    from chatplane.storage import Storage

T = TypeVar("T")
Row = tuple[str, str, str, float | None]  # namespace, key, value (JSON), score

app = typer.Typer(help="What the assistants remember about you: list, search, delete.", no_args_is_help=True)
UrlOpt = Annotated[str | None, typer.Option("--url", help="A chatplane server; default: local storage.")]
KeyOpt = Annotated[str | None, typer.Option("--key", envvar="CHATPLANE_API_KEY", help="API key for --url.")]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="Whose memories, in local storage.")]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace (labels joined with '.'); default: the agents' memories.")
]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=100, help="At most this many.")]


def _labels(namespace: str) -> list[str]:
    return namespace.split(".") if namespace else []


def _remote(url: str, key: str | None, work: Callable[[Client], T]) -> T:
    from chatplane.client import Client

    try:
        with Client(url, key) as client:
            return work(client)
    except ChatplaneClientError as exc:
        err_console.print(f"[red]{friendly(exc)}[/red]")
        raise typer.Exit(1) from None


def _local(storage: str | None, user: str, work: Callable[[BaseStore], Awaitable[T]]) -> T:
    """``work(the user's store)`` on local storage (with the configured embeddings, for searches by meaning)."""
    from chatplane.llm.embeddings import open_embeddings
    from chatplane.storage.items import ItemStore
    from chatplane.storage.owner_store import OwnerStore

    settings = load_settings(storage_url=storage)

    async def on_storage(opened: Storage) -> T:
        async with open_embeddings(settings) as embeddings:
            return await work(OwnerStore(ItemStore(opened.db, embeddings=embeddings), user))

    return run_on_storage(settings, on_storage, exit_code=1)


def _rows(url: str | None, key: str | None, user: str, storage: str | None, namespace: str, query: str | None,
          limit: int) -> list[Row]:  # fmt: skip
    import json

    if url:
        found = _remote(url, key, lambda c: c.search_items(_labels(namespace), query=query, limit=limit))
        return [(".".join(i.namespace), i.key, json.dumps(i.value, ensure_ascii=False), i.score) for i in found]

    async def local(store: BaseStore) -> list[Row]:
        found = await store.asearch(tuple(_labels(namespace)), query=query, limit=limit)
        return [(".".join(i.namespace), i.key, json.dumps(i.value, ensure_ascii=False), i.score) for i in found]

    return _local(storage, user, local)


def _print(rows: list[Row], *, scored: bool) -> None:
    table = Table("namespace", "key", "value", *(("score",) if scored else ()))
    for namespace, key, value, score in rows:
        table.add_row(namespace, key, value, *((f"{score:.3f}" if score is not None else "",) if scored else ()))
    console.print(table)


@app.command("list")
def list_memories(
    url: UrlOpt = None,
    key: KeyOpt = None,
    user: UserOpt = "cli",
    storage: StorageOpt = None,
    namespace: NamespaceOpt = "memories",
    limit: LimitOpt = 100,
) -> None:
    """Memories, most recently updated first."""
    _print(_rows(url, key, user, storage, namespace, None, limit), scored=False)


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for (by meaning).")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    user: UserOpt = "cli",
    storage: StorageOpt = None,
    namespace: NamespaceOpt = "memories",
    limit: LimitOpt = 10,
) -> None:
    """Memories closest in meaning to QUERY, best first."""
    _print(_rows(url, key, user, storage, namespace, query, limit), scored=True)


@app.command("delete")
def delete(
    item_key: Annotated[str, typer.Argument(metavar="KEY", help="The memory's key (see list).")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    user: UserOpt = "cli",
    storage: StorageOpt = None,
    namespace: NamespaceOpt = "memories",
) -> None:
    """Forget one memory."""
    if url:
        _remote(url, key, lambda c: c.delete_item(_labels(namespace), item_key))
    else:

        async def local(store: BaseStore) -> None:
            await store.adelete(tuple(_labels(namespace)), item_key)

        _local(storage, user, local)
    console.print(f"Deleted {item_key}.")
