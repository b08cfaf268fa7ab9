"""A throwaway PostgreSQL cluster of our own (initdb + pg_ctl from the installed server), to stop, restart and crash
at will without touching the shared server: the fault tests and the soak (``benchmarks/soak.py``) use it.
``initdb`` refuses to run as root, so it runs as ``postgres``."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL server binary {name} not found")
    return found[-1]


class ThrowawayCluster:
    def __init__(self, port: int, *, settings: str = "") -> None:
        """``settings``: extra server options (``-c max_connections=200``), on top of a private socket directory,
        loopback only and ``fsync=off`` (a crash here kills the server's processes, never the machine's cache)."""
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="chatplane-pg-"))
        self.data = self.root / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off {settings}".strip()

    def _as_postgres(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def _pg_ctl(self, *args: str) -> None:
        # -l: the server's output goes to the log, never to our pipe (which would keep `run` waiting for it).
        self._as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), *args)

    def init(self) -> None:
        os.chmod(self.root, 0o777)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._as_postgres(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        self._pg_ctl("-o", self.options, "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def crash(self) -> None:
        """``pg_ctl -m immediate restart``: every backend dies without a checkpoint, then the server starts again
        and recovers from its WAL (returns once it accepts connections)."""
        self._pg_ctl("-o", self.options, "-m", "immediate", "-w", "restart")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
