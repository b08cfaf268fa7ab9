"""A mock OpenAI-compatible model server: fixed latency, token pacing, fault injection, request statistics.

Run it::

    python -m benchmarks.mock_openai --port 0 --ttft 0.2 --tokens 20 --token-interval 0.01
    # prints: MOCK_OPENAI_LISTENING http://127.0.0.1:PORT

or in-process (tests)::

    with MockOpenAIServer(ttft=0, token_interval=0) as mock:
        client = AsyncOpenAI(base_url=mock.base_url, api_key="x")
        mock.configure(fault="500", fail_first=2)   # the next 2 requests get a 500, later ones an answer
        mock.stats()["prompt_messages"]

Routes: ``POST /v1/chat/completions`` (JSON or ``stream: true`` SSE), ``POST /v1/embeddings``, ``GET /v1/models``,
``GET /health``, ``GET /_stats``, ``POST /_stats/reset``, ``GET|POST /_control``.

Behaviour comes from a ``MockConfig``: the command-line flags set the defaults, ``POST /_control`` changes them
for every later request (``{"reset": true}`` restores the flags), and ``X-Mock-<Field>`` headers override them for
one request (``X-Mock-TTFT: 0.05``, ``X-Mock-Fault: 429``, ``X-Mock-Tool-Call: {"name": ..., "arguments": {...}}``).

It is a raw ASGI app on uvicorn (uvloop + httptools when installed) because it shares the CPU with the system it
measures: a request costs one JSON parse and a few small writes, and waiting is ``asyncio.sleep``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn

from benchmarks.mock_app import FAULTS, REPLIES, MockConfig, MockOpenAI, Stats

__all__ = ["FAULTS", "REPLIES", "MockConfig", "MockOpenAI", "MockOpenAIServer", "Stats", "config_argv", "main"]

LISTENING = "MOCK_OPENAI_LISTENING"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(4096)
    except OSError:
        sock.close()
        raise
    return sock


def _uvicorn_config(app: MockOpenAI, log_level: str, *, configure_logging: bool) -> uvicorn.Config:
    extra: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=1,
        backlog=4096,
        **extra,
    )


def config_argv(config: MockConfig) -> list[str]:
    """Command-line flags that reproduce ``config``."""
    argv = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is not None:
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            argv += [f"--{field.name.replace('_', '-')}", text]
    return argv


class MockOpenAIServer:
    """The mock on a free port, in a background thread (default) or a subprocess (``own_process=True``: its own
    CPU and GIL, for benchmarks). ``url`` is the server, ``base_url`` what an OpenAI client wants (``url + /v1``)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, own_process: bool = False, **config: Any) -> None:
        self.config = MockConfig().updated(config)
        self.host, self.port = host, port
        self.url = ""
        self._use_subprocess = own_process
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.app: MockOpenAI | None = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else os.getpid()

    def start(self, timeout: float = 30.0) -> MockOpenAIServer:
        if self._use_subprocess:
            self._start_subprocess(timeout)
        else:
            self._start_thread(timeout)
        return self

    def _start_thread(self, timeout: float) -> None:
        self.app = MockOpenAI(self.config)
        self._sock = _listening_socket(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self._server = uvicorn.Server(_uvicorn_config(self.app, "warning", configure_logging=False))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="mock-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the mock OpenAI server did not start")
            time.sleep(0.01)

    def _start_subprocess(self, timeout: float) -> None:
        self._log = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT), os.getenv("PYTHONPATH")]))}
        argv = [sys.executable, "-m", "benchmarks.mock_openai", "--host", self.host, "--port", str(self.port)]
        self._proc = subprocess.Popen(
            argv + config_argv(self.config), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=_REPO_ROOT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if line.startswith(LISTENING):
                    self.url = line.split()[1]
                    self.port = int(self.url.rsplit(":", 1)[1])
                    return
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"the mock OpenAI server did not start:\n{log}")

    def log(self) -> str:
        """What a subprocess mock printed."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MockOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control (sync and async twins) -----------------------------------------------------------------------------
    def stats(self, prompts: bool = True) -> dict[str, Any]:
        return self._call("GET", "/_stats" + ("" if prompts else "?prompts=0"))

    def reset_stats(self) -> dict[str, Any]:
        return self._call("POST", "/_stats/reset")

    def configure(self, reset: bool = False, **changes: Any) -> dict[str, Any]:
        """Change how every later request is answered (``reset=True`` first restores the start-up config)."""
        return self._call("POST", "/_control", {"reset": reset, **changes})

    async def astats(self, prompts: bool = True) -> dict[str, Any]:
        return await self._acall("GET", "/_stats" + ("" if prompts else "?prompts=0"))

    async def areset_stats(self) -> dict[str, Any]:
        return await self._acall("POST", "/_stats/reset")

    async def aconfigure(self, reset: bool = False, **changes: Any) -> dict[str, Any]:
        return await self._acall("POST", "/_control", {"reset": reset, **changes})

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = httpx.request(method, self.url + path, json=body, timeout=30)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def _acall(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.request(method, self.url + path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mock_openai", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed as MOCK_OPENAI_LISTENING URL)")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    defaults = MockConfig()
    for field in dataclasses.fields(MockConfig):
        flag = f"--{field.name.replace('_', '-')}"
        default = getattr(defaults, field.name)
        parser.add_argument(flag, default=default, help=f"(default: {default})")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    names = [f.name for f in dataclasses.fields(MockConfig)]
    try:
        config = MockConfig().updated({name: getattr(args, name) for name in names})
    except ValueError as exc:
        raise SystemExit(f"mock_openai: {exc}") from None
    sock = _listening_socket(args.host, args.port)
    server = uvicorn.Server(_uvicorn_config(MockOpenAI(config), args.log_level, configure_logging=True))
    print(f"{LISTENING} http://{args.host}:{sock.getsockname()[1]}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":
    main()
