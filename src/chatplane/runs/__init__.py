"""Runs: one agent turn on a thread, executed in the background, observable as a stream of events."""

from chatplane.runs.manager import RunManager
from chatplane.storage.runs import Run, RunStatus

__all__ = ["Run", "RunManager", "RunStatus"]
