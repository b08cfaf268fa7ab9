"""Runs: one agent turn on a thread, executed in the background, observable as a stream of events."""

from chatplane.runs.manager import RunManager
from chatplane.runs.store import Run, RunStatus, RunStore

__all__ = ["Run", "RunManager", "RunStatus", "RunStore"]
