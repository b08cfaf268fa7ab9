"""``chatplane prune``: retention run once, by hand or from a cron job, on the configured storage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chatplane.cli.common import StorageOpt, console, err_console, load_settings, run_on_storage

if TYPE_CHECKING:
    from chatplane.retention import PruneReport
    from chatplane.storage import Storage


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
    from chatplane.retention import parse_duration, prune_once

    settings = load_settings(storage_url=storage)
    try:
        older_than_s = parse_duration(older_than) if older_than else None
    except ValueError as exc:
        err_console.print(f"[red]--older-than: {exc}[/red]")
        raise typer.Exit(2) from None
    if older_than_s is None and settings.retention_days is not None:
        older_than_s = settings.retention_days * 86400

    async def work(opened: Storage) -> PruneReport | None:
        return await prune_once(opened, older_than_s, dry_run=dry_run)

    report = run_on_storage(settings, work, exit_code=2)
    if report is None:
        err_console.print("Another process is pruning this database now; try again later.")
        raise typer.Exit(1)
    console.print(("Dry run: " if dry_run else "") + str(report) + ".", soft_wrap=True)
