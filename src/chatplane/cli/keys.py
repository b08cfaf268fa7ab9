"""``chatplane keys``: create, list and revoke API keys, straight in the storage database (no server needed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from chatplane.cli.common import StorageOpt, console, err_console, load_settings, run_on_storage
from chatplane.errors import ChatplaneError

if TYPE_CHECKING:
    from chatplane.storage import Storage
    from chatplane.storage.keys import ApiKeyStore

T = TypeVar("T")

app = typer.Typer(help="Manage API keys (stored hashed in the storage database).", no_args_is_help=True)


def _with_keys(storage: str | None, work: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    """Run ``work(ApiKeyStore)`` against the configured storage."""
    from chatplane.storage.keys import ApiKeyStore

    settings = load_settings(storage_url=storage)
    if settings.storage_url.startswith("memory://"):
        err_console.print("[red]Keys in memory:// storage would vanish at once; set CHATPLANE_STORAGE_URL.[/red]")
        raise typer.Exit(2)

    async def on_storage(opened: Storage) -> T:
        return await work(ApiKeyStore(opened.db))

    return run_on_storage(settings, on_storage, exit_code=2)


@app.command("create")
def create(
    user: Annotated[str, typer.Option("--user", "-u", help="The user the key acts as.")],
    name: Annotated[str | None, typer.Option("--name", help="A label to recognise the key by.")] = None,
    storage: StorageOpt = None,
) -> None:
    """Create a key and print it — once: only its hash is stored."""
    from chatplane.core.checks import check_id

    try:
        check_id("user", user)
    except ChatplaneError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    key, secret = _with_keys(storage, lambda store: store.create(user, name))
    console.print(f"Key [cyan]{key.key_id}[/cyan] for user [bold]{user}[/bold]. Keep it now; it is not shown again:")
    print(secret)


@app.command("list")
def list_keys(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's keys.")] = None,
    storage: StorageOpt = None,
) -> None:
    """List keys (ids, users, names, status) — never the secrets."""
    keys = _with_keys(storage, lambda store: store.list(user))
    table = Table("key id", "user", "name", "created", "status")
    for key in keys:
        created = datetime.fromtimestamp(key.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(key.key_id, key.user_id, key.name or "", created, "revoked" if key.revoked_at else "active")
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `keys list`).")],
    storage: StorageOpt = None,
) -> None:
    """Revoke a key: it stops working on the next request."""
    if not _with_keys(storage, lambda store: store.revoke(key_id)):
        err_console.print(f"[red]No active key {key_id}.[/red]")
        raise typer.Exit(1)
    console.print(f"Revoked {key_id}.")
