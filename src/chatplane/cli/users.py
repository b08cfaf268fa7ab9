"""``chatplane users purge``: delete everything a user has stored (threads, runs, messages, checkpoints, assistants,
idempotency keys, usage, memories) — on a server with ``--url`` (as the key's user), else straight in local storage
(stop the server first, or use ``--url``: a run the server is executing would write its thread again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chatplane.cli.common import StorageOpt, console, err_console, friendly, load_settings, run_on_storage
from chatplane.client.errors import ChatplaneClientError

if TYPE_CHECKING:
    from chatplane.storage import Storage

app = typer.Typer(help="Users' data.", no_args_is_help=True)


@app.command("purge")
def purge(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Whose data, in local storage.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="A chatplane server: purge the key's user.")] = None,
    key: Annotated[str | None, typer.Option("--key", envvar="CHATPLANE_API_KEY", help="API key for --url.")] = None,
    storage: StorageOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete everything USER has stored. API keys stay (revoke them with `chatplane keys revoke`)."""
    if (user is None) == (url is None):
        err_console.print("[red]Give --user (local storage) or --url (a server), not both.[/red]")
        raise typer.Exit(2)
    if not yes:
        typer.confirm(f"Delete everything of {user or 'the key’s user'}?", abort=True)
    if url:
        from chatplane.client import Client

        try:
            with Client(url, key) as client:
                deleted = client.purge_my_data()
        except ChatplaneClientError as exc:
            err_console.print(f"[red]{friendly(exc)}[/red]")
            raise typer.Exit(1) from None
    else:
        from chatplane.storage.purge import purge_owner

        assert user is not None

        async def work(opened: Storage) -> dict[str, int]:
            return (await purge_owner(opened, user)).as_dict()

        deleted = run_on_storage(load_settings(storage_url=storage), work, exit_code=1)
    console.print("Deleted " + ", ".join(f"{count} {what}" for what, count in deleted.items()) + ".")
