"""A run's record as chatplane keeps it (``Run``), and the words for its status and double-texting strategy."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from chatplane.storage.database import Row, loads

RunStatus = Literal["pending", "running", "waiting", "succeeded", "failed", "cancelled"]
Multitask = Literal["reject", "enqueue", "interrupt", "rollback"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class Run:
    run_id: str
    thread_id: str
    owner: str
    agent: str
    status: RunStatus
    multitask: Multitask
    input: dict[str, Any]
    error_code: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    model: str | None = None
    not_before: float | None = None
    """A delayed run (LangGraph's ``after_seconds``): it stays ``pending`` until this time."""
    # Read by ``RunStore.expired`` only: times taken over after its worker was lost, and the worker holding it
    # (None once handed back at a graceful shutdown).
    recoveries: int = 0
    worker: str | None = None
    resumed_after: int = 0
    """Not stored: on the run a resume returns, the id of its last event before it went on (where a caller that
    follows the resumed run starts, rather than replaying the pause)."""

    @classmethod
    def new(
        cls, thread_id: str, owner: str, agent: str, run_input: dict[str, Any], multitask: Multitask, **fields: Any
    ) -> Run:
        """A run not stored yet: a fresh id, ``pending``, created now."""
        return cls(
            str(uuid.uuid4()),
            thread_id,
            owner,
            agent,
            "pending",
            multitask,
            run_input,
            created_at=time.time(),
            **fields,
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def due(self, now: float) -> bool:
        """Whether the run may start at ``now`` (it is not delayed past it)."""
        return self.not_before is None or self.not_before <= now

    @classmethod
    def from_row(cls, row: Row) -> Run:
        return cls(
            run_id=row["run_id"],
            thread_id=row["thread_id"],
            owner=row["owner"],
            agent=row["agent"],
            status=row["status"],
            multitask=row["multitask"],
            input=loads(row["input"]),
            error_code=row["error_code"],
            usage=loads(row["usage"]),
            created_at=float(row["created_at"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            model=row.get("model"),
            not_before=row.get("not_before"),
            recoveries=int(row.get("recoveries") or 0),
            worker=row.get("worker"),
        )
