"""The ``chatplane`` command: ``serve`` the API, ``chat`` in a terminal."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console

from chatplane.config import Settings
from chatplane.errors import ChatplaneError

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
) -> None:
    """Start the HTTP API (and the web page) on the configured model and storage."""
    import uvicorn

    from chatplane.service.app import create_app

    settings = _settings(host=host, port=port, model=model, storage_url=storage)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(f"chatplane on http://{settings.host}:{settings.port}  model={settings.model}")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


class _Conversation(Protocol):
    session: str

    def stream(self, message: str) -> Iterator[str]: ...
    def history(self) -> list[tuple[str, str]]: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class _LocalConversation:
    """Chat with an agent running in this process (the sync API of ``ProductionAgent``)."""

    def __init__(self, settings: Settings, user: str, session: str) -> None:
        from chatplane.agent import ProductionAgent

        self.user, self.session = user, session
        self.agent = ProductionAgent(settings=settings)
        self.agent.__enter__()

    def stream(self, message: str) -> Iterator[str]:
        return self.agent.stream_chat(self.user, message, self.session)

    def history(self) -> list[tuple[str, str]]:
        return [(m.type, m.text) for m in self.agent.get_history(self.session)]

    def reset(self) -> None:
        self.agent.reset_session(self.session)

    def close(self) -> None:
        self.agent.close()


class _RemoteConversation:
    """Chat with a running chatplane server over HTTP (SSE for the answer)."""

    def __init__(self, url: str, user: str, session: str) -> None:
        import httpx

        self.user, self.session = user, session
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=httpx.Timeout(10.0, read=300.0))

    def _check(self, response: Any) -> None:
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", f"HTTP {response.status_code}"
            exc = ChatplaneError(message)
            exc.code = code
            raise exc

    def stream(self, message: str) -> Iterator[str]:
        from httpx_sse import connect_sse

        body = {"user_id": self.user, "message": message, "session_id": self.session}
        with connect_sse(self.http, "POST", "/chat/stream", json=body) as source:
            if source.response.status_code >= 400:
                source.response.read()
                self._check(source.response)
            for event in source.iter_sse():
                data = json.loads(event.data) if event.data else {}
                if event.event == "token":
                    yield data["text"]
                elif event.event == "error":
                    raise ChatplaneError(data["error"]["message"])

    def history(self) -> list[tuple[str, str]]:
        response = self.http.get(f"/history/{self.session}")
        if response.status_code == 404:
            return []
        self._check(response)
        texts = response.json()["messages"]
        return [("human" if i % 2 == 0 else "ai", t) for i, t in enumerate(texts)]

    def reset(self) -> None:
        response = self.http.post("/reset", params={"session_id": self.session})
        if response.status_code != 404:
            self._check(response)

    def close(self) -> None:
        self.http.close()


CHAT_HELP = "Commands: /new (new session), /history, /reset, /help, /quit. Ctrl-D quits too."


@app.command()
def chat(
    url: Annotated[
        str | None,
        typer.Option("--url", help="A chatplane server to talk to; default: run the agent in-process."),
    ] = None,
    user: Annotated[str, typer.Option("--user", "-u", help="Your user id.")] = "cli",
    session: Annotated[str | None, typer.Option("--session", "-s", help="Session to continue.")] = None,
    model: ModelOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Chat in the terminal; answers stream as they are generated."""
    session = session or f"cli-{secrets.token_hex(4)}"
    conversation: _Conversation
    if url:
        conversation = _RemoteConversation(url, user, session)
        where = url
    else:
        settings = _settings(model=model, storage_url=storage, log_level="warning")
        logging.basicConfig(level=logging.WARNING)
        with console.status(f"Starting {settings.model} ..."):
            try:
                conversation = _LocalConversation(settings, user, session)
            except ChatplaneError as exc:
                err_console.print(f"[red]{exc.message}[/red]")
                raise typer.Exit(2) from None
        where = settings.model
    console.print(f"[bold]chatplane[/bold] · {where} · session [cyan]{session}[/cyan]\n[dim]{CHAT_HELP}[/dim]")
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
        except ChatplaneError as exc:
            console.print()
            err_console.print(f"[red]{exc.message}[/red]")
        except KeyboardInterrupt:
            console.print("\n[dim](interrupted)[/dim]")


def _command(conversation: _Conversation, line: str) -> bool:
    """Run a /command; True means quit."""
    name = line.split()[0].lower()
    try:
        if name in ("/quit", "/exit", "/q"):
            return True
        if name == "/new":
            conversation.session = f"cli-{secrets.token_hex(4)}"
            console.print(f"[dim]new session {conversation.session}[/dim]")
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
    except ChatplaneError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
    return False


def main() -> None:
    app()


if __name__ == "__main__":
    main()
