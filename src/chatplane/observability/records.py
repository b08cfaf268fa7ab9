"""What observability reads of the things it observes: a finished run, a retention round.

Protocols, not the classes themselves: ``chatplane.runs.Run`` and ``chatplane.retention.PruneReport`` satisfy them,
and observability depends on neither, so the layers it observes may import it (``failures.py`` counts storage faults
through ``signals``) without an import cycle. Read-only properties, so a dataclass field of a narrower type (a run's
status is a ``Literal``) still matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class RunRecord(Protocol):
    """A run as its start and finish hooks see it."""

    @property
    def run_id(self) -> str: ...
    @property
    def thread_id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def usage(self) -> Mapping[str, int]: ...


class PruneCounts(Protocol):
    """What one retention round deleted."""

    @property
    def threads(self) -> int: ...
    @property
    def runs(self) -> int: ...
    @property
    def checkpoints(self) -> int: ...
