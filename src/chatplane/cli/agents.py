"""``chatplane agents``: what a thread can talk to — a server's graphs and your assistants with ``--url``, else the
graphs this machine's settings (and ``--config`` project file) would serve."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from chatplane.cli.common import console, err_console, friendly, load_settings
from chatplane.client.errors import ChatplaneClientError
from chatplane.errors import ConfigError


def agents(
    url: Annotated[str | None, typer.Option("--url", help="A chatplane server; default: this machine's.")] = None,
    key: Annotated[str | None, typer.Option("--key", envvar="CHATPLANE_API_KEY", help="API key for --url.")] = None,
    config: Annotated[
        str | None, typer.Option("--config", help="Project file whose graphs to list (CHATPLANE_CONFIG_FILE).")
    ] = None,
) -> None:
    """Graphs (and, on a server, your assistants): the names `chatplane chat --agent` and threads take."""
    table = Table("name", "kind", "description", *(["messages"] if url else []))
    if url:
        from chatplane.client import Client

        try:
            with Client(url, key) as client:
                listing = client.agents()
                own = [a for a in client.list_assistants() if not a.default]
        except ChatplaneClientError as exc:
            err_console.print(f"[red]{friendly(exc)}[/red]")
            raise typer.Exit(1) from None
        for agent in listing.agents:
            table.add_row(agent.name, agent.kind, agent.description, "yes" if agent.messages else "no")
        for assistant in own:
            table.add_row(assistant.assistant_id, f"assistant of {assistant.graph_id}", assistant.name, "")
    else:
        from chatplane.agents.kind import AgentKind
        from chatplane.agents.project import load_project

        try:
            project = load_project(load_settings(config_file=config).config_file)
        except ConfigError as exc:
            err_console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from None
        for graph in project.graphs:
            kind = "agent" if isinstance(graph.target, AgentKind) else "graph"
            table.add_row(graph.graph_id, kind, graph.description)
    console.print(table)
