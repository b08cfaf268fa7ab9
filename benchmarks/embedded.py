"""The embedded model's speed: tokens/s through chatplane vs straight from llama.cpp.

Both paths run the same GGUF file with the same llama.cpp parameters (the direct server is chatplane's own
``EmbeddedLlamaServer`` built from default ``Settings``), the same system prompt and question, ``temperature`` 0 and
the same output cap, one request at a time, each on a fresh conversation. Counted: stream chunks with text (one
token each in llama.cpp's stream; chatplane forwards each as one ``token`` event).

* **direct** — ``POST /v1/chat/completions`` with ``stream: true`` on the llama.cpp server, in this process.
* **chatplane** — ``POST /chat/stream`` on ``chatplane serve`` with ``CHATPLANE_MODEL=local:smollm2-135m`` and
  ``memory://`` storage, in a subprocess.

The two alternate request by request, so a busy machine slows both alike.

``python -m benchmarks.embedded --requests 5 --max-tokens 128`` prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.load import percentile
from benchmarks.procs import ServerProcess, clean_env, free_port
from benchmarks.targets import CHATPLANE_NO_QUOTAS

QUESTION = "Write a short story about a robot who learns to paint."


@dataclass
class StreamRun:
    path: str
    ttfts: list[float] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, started: float, first: float | None, chunks: int) -> None:
        end = time.perf_counter()
        if first is None or chunks == 0:
            self.errors.append("no tokens")
            return
        self.ttfts.append(first - started)
        self.totals.append(end - started)
        self.chunks.append(chunks)

    def summary(self) -> dict[str, Any]:
        decode = sorted(
            (c - 1) / (t - f) for c, t, f in zip(self.chunks, self.totals, self.ttfts, strict=True) if t > f
        )
        end_to_end = sorted(c / t for c, t in zip(self.chunks, self.totals, strict=True))
        return {
            "path": self.path,
            "requests": len(self.totals),
            "errors": len(self.errors),
            "tokens_p50": percentile(sorted(self.chunks), 50),
            "ttft_p50": percentile(sorted(self.ttfts), 50),
            "total_p50": percentile(sorted(self.totals), 50),
            "decode_tps_p50": percentile(decode, 50),
            "e2e_tps_p50": percentile(end_to_end, 50),
        }


async def _direct_turn(base_url: str, body: dict[str, Any], run: StreamRun | None) -> None:
    """One streamed answer straight from llama.cpp (``run`` None: a warm-up, not counted)."""
    started, first, chunks = time.perf_counter(), None, 0
    # A new connection each time: llama.cpp's server sometimes closes a kept-alive connection right after a
    # streamed answer, and the next request on it fails before it is sent.
    async with httpx.AsyncClient(timeout=300) as client:
        async with client.stream("POST", f"{base_url}/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line.removeprefix("data: ")).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    first = first or time.perf_counter()
                    chunks += 1
    if run is not None:
        run.add(started, first, chunks)


async def _chatplane_turn(url: str, run: StreamRun | None) -> None:
    """One streamed answer through chatplane, on a new session (so the prompt is the same every time)."""
    body = {"user_id": "bench", "session_id": f"embedded-{uuid.uuid4().hex[:8]}", "message": QUESTION}
    started, first, chunks, event = time.perf_counter(), None, 0, ""
    async with httpx.AsyncClient(timeout=300) as client:
        async with client.stream("POST", f"{url}/chat/stream", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event == "token":
                    first = first or time.perf_counter()
                    chunks += 1
    if run is not None:
        run.add(started, first, chunks)


def _chatplane_server(settings: Any, max_tokens: int, workdir: Path) -> ServerProcess:
    """``chatplane serve`` on the embedded model, with exactly the llama.cpp parameters of the direct server."""
    port = free_port()
    env = {
        **CHATPLANE_NO_QUOTAS,
        "CHATPLANE_MODEL": "local:smollm2-135m",
        "CHATPLANE_STORAGE_URL": "memory://",
        "CHATPLANE_MAX_OUTPUT_TOKENS": str(max_tokens),
        "CHATPLANE_SYSTEM_PROMPT": settings.system_prompt,
        "CHATPLANE_LOCAL_CONTEXT_TOKENS": str(settings.local_context_tokens),
        "CHATPLANE_LOCAL_PARALLEL": str(settings.local_parallel),
        "CHATPLANE_LOCAL_CACHE_RAM_MIB": str(settings.local_cache_ram_mib),
        "CHATPLANE_LOCAL_THREADS": str(settings.local_threads),
        "CHATPLANE_HOST": "127.0.0.1",
        "CHATPLANE_PORT": str(port),
        "CHATPLANE_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "chatplane", "serve"]
    return ServerProcess(
        argv, clean_env(env), port=port, cwd=workdir, health_path="/healthz", log_path=workdir / "embedded.log"
    )


async def run_embedded(requests: int = 5, max_tokens: int = 128, workdir: Path | None = None) -> list[dict[str, Any]]:
    """Both paths' summaries (direct, then chatplane). Both servers are up at once and the requests alternate, one
    at a time, so both paths see the same machine: on a shared 2-core box, llama.cpp's speed swings with the load."""
    from chatplane.config import Settings
    from chatplane.llm.local import EmbeddedLlamaServer, find_model_file

    settings = Settings(_env_file=None)
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "system", "content": settings.system_prompt}, {"role": "user", "content": QUESTION}],
        "temperature": settings.temperature,
        "max_completion_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    direct, served = StreamRun("llama.cpp direct"), StreamRun("chatplane /chat/stream")
    with tempfile.TemporaryDirectory() as tmp:
        llama = EmbeddedLlamaServer(find_model_file("smollm2-135m", settings), settings)
        chatplane = _chatplane_server(settings, max_tokens, workdir or Path(tmp))
        await llama.start()
        try:
            await chatplane.start()
            paths = (
                (direct, functools.partial(_direct_turn, llama.base_url, body)),
                (served, functools.partial(_chatplane_turn, chatplane.url)),
            )
            for i in range(requests + 1):  # the first round warms both up and is not counted
                for run, turn in paths:
                    try:
                        await turn(run if i else None)
                    except httpx.HTTPError as exc:
                        run.errors.append(type(exc).__name__)
        finally:
            chatplane.stop()
            await llama.stop()
    return [direct.summary(), served.summary()]


def main(argv: list[str] | None = None) -> None:
    from benchmarks.report import embedded_table

    parser = argparse.ArgumentParser(prog="python -m benchmarks.embedded", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args(argv)
    print(embedded_table(asyncio.run(run_embedded(args.requests, args.max_tokens))))


if __name__ == "__main__":
    main()
