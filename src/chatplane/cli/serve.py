"""``chatplane serve``: the HTTP API (and the web page) under uvicorn, in one process or several."""

from __future__ import annotations

from typing import Annotated

import typer

from chatplane.cli.common import ModelOpt, StorageOpt, console, err_console, load_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (CHATPLANE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CHATPLANE_PORT).")] = None,
    model: ModelOpt = None,
    storage: StorageOpt = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes; more than one needs PostgreSQL storage and Redis.")
    ] = 1,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Project file (chatplane.json or langgraph.json) of graphs to serve (CHATPLANE_CONFIG_FILE).",
        ),
    ] = None,
) -> None:
    """Start the HTTP API (and the web page) on the configured model and storage, serving the built-in agents and
    the project file's graphs."""
    import os

    import uvicorn

    from chatplane.agents.project import load_project
    from chatplane.errors import ConfigError
    from chatplane.observability.logging import configure_logging
    from chatplane.service.app import create_app
    from chatplane.service.serving import WORKER_HTTP_PROTOCOL, http_protocol

    overrides = {"host": host, "port": port, "model": model, "storage_url": storage, "config_file": config}
    settings = load_settings(**overrides)
    configure_logging(settings)
    try:
        load_project(settings.config_file)  # a bad entry stops here, named, before anything starts
    except ConfigError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
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
        http=http_protocol(settings) if workers == 1 else WORKER_HTTP_PROTOCOL,  # header deadlines, bounded connections
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )
