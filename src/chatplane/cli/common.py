"""What several commands share: the two consoles, the ``--model`` and ``--storage`` options, settings from the
command line, an error's text for the terminal, and running one coroutine on the configured storage.

Heavy modules (the agent, the storage drivers, uvicorn) are imported inside the commands that need them, so
``chatplane --help`` and ``chatplane chat --url`` start fast."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from chatplane.config import Settings
from chatplane.errors import ChatplaneError

if TYPE_CHECKING:
    from chatplane.storage import Storage

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model id, e.g. local:qwen2.5-coder-1.5b, local:/path/to/model.gguf, openai:gpt-4o, fake:echo.",
    ),
]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Storage URL: sqlite:///path.db, postgresql://..., memory://")
]


def load_settings(**overrides: Any) -> Settings:
    """The environment's settings with the command line's choices (those not None) on top; exit 2 if invalid."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:  # pydantic's ValidationError; its text names the setting, never a secret value
        err_console.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from None


def friendly(exc: Exception) -> str:
    """The message to show for an error: the server's safe message, never a traceback."""
    message = getattr(exc, "message", None)
    return str(message) if message else str(exc)


def run_on_storage(settings: Settings, work: Callable[[Storage], Awaitable[T]], *, exit_code: int) -> T:
    """Open the configured storage, await ``work(storage)`` and close it; a chatplane error (a missing thread, a
    database that refuses) is printed and exits with ``exit_code``, without a traceback."""
    import asyncio

    from chatplane.storage import open_storage

    async def run() -> T:
        async with open_storage(settings) as opened:
            return await work(opened)

    try:
        return asyncio.run(run())
    except ChatplaneError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(exit_code) from None
