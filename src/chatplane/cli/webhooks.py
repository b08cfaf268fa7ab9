"""``chatplane webhooks secret``: the key a server signs your webhooks with (``--rotate``: a new one), through the
SDK."""

from __future__ import annotations

from typing import Annotated

import typer

from chatplane.cli.common import console, err_console, friendly
from chatplane.client.errors import ChatplaneClientError

app = typer.Typer(help="Your webhooks' signing secret on a server.", no_args_is_help=True)


@app.command("secret")
def secret(
    url: Annotated[str, typer.Option("--url", help="The chatplane server.")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option("--key", envvar="CHATPLANE_API_KEY", help="Your API key.")] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="Make a new secret; deliveries from now on use it.")] = False,
) -> None:
    """Print the secret (``whsec_…``) that signs your webhooks; check deliveries with it (docs/security.md)."""
    from chatplane.client import Client

    try:
        with Client(url, key) as client:
            console.print(client.webhook_secret(rotate=rotate), soft_wrap=True, highlight=False)
    except ChatplaneClientError as exc:
        err_console.print(f"[red]{friendly(exc)}[/red]")
        raise typer.Exit(1) from None
