"""Which chatplane source tree a benchmark runs: this repository's, or another checkout (``--src DIR``).

Comparing before and after a change means running the same harness against two trees in one session: check out the
old commit with ``git worktree add --detach /tmp/old <commit>`` and pass ``--src /tmp/old``. The server then runs
with ``PYTHONPATH=DIR/src`` (``targets.source_env``); ``resolve`` checks that ``import chatplane`` really loads that
tree before anything is measured, and labels it with its commit.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import REPO_ROOT, clean_env
from benchmarks.targets import source_env


@dataclass(frozen=True)
class Source:
    path: Path
    label: str  # ``DIR @ commit`` (``+dirty`` when src/ has uncommitted changes)


def _git(path: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def resolve(path: str | Path | None) -> Source:
    """The tree at ``path`` (default: this repository), after checking that its ``src/chatplane`` is what loads."""
    root = Path(path).resolve() if path else REPO_ROOT
    if not (root / "src" / "chatplane" / "__init__.py").is_file():
        raise SystemExit(f"{root} has no src/chatplane/__init__.py: not a chatplane source tree")
    probe = subprocess.run(
        [sys.executable, "-c", "import chatplane; print(chatplane.__file__)"],
        env=clean_env(source_env(root)),
        capture_output=True,
        text=True,
        check=False,
    )
    loaded = Path(probe.stdout.strip() or "?").resolve()
    if probe.returncode or loaded != root / "src" / "chatplane" / "__init__.py":
        raise SystemExit(f"with --src {root}, `import chatplane` loads {loaded}: {probe.stderr.strip()[-300:]}")
    commit = _git(root, "rev-parse", "--short", "HEAD") or "?"
    dirty = "+dirty" if _git(root, "status", "--porcelain", "--", "src") else ""
    return Source(root, f"{root} @ {commit}{dirty}")
