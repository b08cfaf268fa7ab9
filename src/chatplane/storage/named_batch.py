"""A ``Database.batch`` whose statements are added in named groups, and whose results come back by name.

Several requests' batches are assembled from optional parts (an idempotency claim, a transcript read, a checkpoint
prefetch). Picking their results by position meant offsets that moved whenever a part was present or not; by name,
adding a part cannot shift another's results.
"""

from __future__ import annotations

from chatplane.storage.database import Database, Result, Statement


class NamedBatch:
    def __init__(self) -> None:
        self._statements: list[Statement] = []
        self._spans: dict[str, tuple[int, int]] = {}

    def add(self, name: str, *statements: Statement) -> None:
        """Append ``statements`` as the group ``name`` (run in the order added)."""
        if name in self._spans:
            raise ValueError(f"a group {name!r} is in the batch already")
        start = len(self._statements)
        self._statements += statements
        self._spans[name] = (start, len(self._statements))

    async def run(self, db: Database) -> dict[str, list[Result]]:
        """Run every statement in one transaction and one trip (``Database.batch``); each group's results."""
        results = await db.batch(self._statements)
        return {name: results[start:end] for name, (start, end) in self._spans.items()}
