"""Servers under test as subprocesses, and what we read from them: CPU time, peak RSS, bytes written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without chatplane/OpenAI/seed settings, plus ``extra``; the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATPLANE_", "OPENAI_", "SEED_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


class ServerProcess:
    """An HTTP server in a subprocess, ready once ``health_path`` answers 200; its output goes to ``log_path``."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        port: int,
        cwd: Path,
        health_path: str,
        log_path: Path,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.url = f"http://127.0.0.1:{port}"
        self.cwd = cwd
        self.health_path = health_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("not started")
        return self.proc.pid

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    async def start(self, within_s: float = 120.0) -> None:
        """Spawn the process and wait until it answers its health path (or fail, with its log)."""
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.argv} exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + self.health_path)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.argv} did not answer {self.health_path} in {within_s}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class ProcessProbe:
    """Counters of one process and its children — a server's worker processes (``--workers N``) count as the server.

    Linux gives exact peak RSS and bytes written; elsewhere they are sampled/absent.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._proc = psutil.Process(pid)
        self._sampled_peak = 0

    def _family(self) -> list[psutil.Process]:
        try:
            return [self._proc, *self._proc.children(recursive=True)]
        except psutil.Error:
            return [self._proc]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._family():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def write_bytes(self) -> int | None:
        """Bytes this process caused to be written to storage (``/proc/PID/io``), or None where unknown."""
        try:
            return int(self._proc.io_counters().write_bytes)
        except (AttributeError, psutil.Error):
            return None

    def reset_peak_rss(self) -> None:
        """Restart the peak-RSS high-water mark (Linux: ``echo 5 > /proc/PID/clear_refs``; best effort)."""
        self._sampled_peak = 0
        for proc in self._family():
            with contextlib.suppress(OSError):
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")

    def peak_rss(self) -> int:
        """Peak resident memory in bytes, summed over the family: VmHWM on Linux, else the largest ``rss()`` seen."""
        total = 0
        try:
            for proc in self._family():
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            total = 0
        return total or max(self._sampled_peak, self.rss())

    def rss(self) -> int:
        rss = int(self._proc.memory_info().rss)
        self._sampled_peak = max(self._sampled_peak, rss)
        return rss
