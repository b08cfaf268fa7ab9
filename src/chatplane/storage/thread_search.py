"""Searching a user's threads (``ThreadSearch``): by ids and metadata, sorted, a page at a time.

Metadata matches key by key, as JSON (``{"tag": 1}`` matches a thread whose metadata has ``tag`` equal to ``1``,
whatever else it has), the same comparison as assistants' (PostgreSQL's jsonb; SQLite's JSON functions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from chatplane.storage.assistants import _METADATA_EQUALS
from chatplane.storage.database import Database, dumps, in_clause
from chatplane.storage.threads import _COLUMNS, Thread

SortBy = Literal["thread_id", "created_at", "updated_at"]
SORTABLE: tuple[str, ...] = ("thread_id", "created_at", "updated_at")


class ThreadSearch:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def count(self, owner: str, *, metadata: dict[str, Any] | None = None) -> int:
        """How many of the owner's threads match every key of ``metadata``."""
        where, params = self._where(owner, metadata, None)
        row = await self.db.fetchone(f"SELECT count(*) AS n FROM chatplane_threads WHERE {where}", params)
        return int(row["n"]) if row else 0

    def _where(self, owner: str, metadata: dict[str, Any] | None, ids: Sequence[str] | None) -> tuple[str, list[Any]]:
        where, params = ["owner = %s"], [owner]
        if ids is not None:
            clause, values = in_clause(self.db.dialect, ids)
            where.append(f"thread_id {clause}")
            params += values
        for key, value in (metadata or {}).items():
            where.append(_METADATA_EQUALS[self.db.dialect])
            params += [str(key), dumps(value)]
        return " AND ".join(where), params

    async def page(
        self,
        owner: str,
        *,
        metadata: dict[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        sort_by: SortBy = "created_at",
        descending: bool = True,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Thread]:
        """The owner's threads matching ``ids`` (when given) and every key of ``metadata``, sorted by ``sort_by``
        (then by id), ``limit`` of them from ``offset``."""
        if sort_by not in SORTABLE:  # it names a column: only these
            raise ValueError(f"cannot sort threads by {sort_by!r}")
        where, params = self._where(owner, metadata, ids)
        order = "DESC" if descending else "ASC"
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chatplane_threads WHERE {where} "
            f"ORDER BY {sort_by} {order}, thread_id {order} LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [Thread.from_row(r) for r in rows]

    async def rebind(self, thread_id: str, owner: str, agent: str) -> bool:
        """Point the owner's thread at ``agent`` if no run was ever made on it (a thread's first run fixes its
        graph); whether it changed."""
        changed = await self.db.execute(
            "UPDATE chatplane_threads SET agent = %s WHERE thread_id = %s AND owner = %s AND agent <> %s "
            "AND NOT EXISTS (SELECT 1 FROM chatplane_runs WHERE thread_id = %s)",
            (agent, thread_id, owner, agent, thread_id),
        )
        return changed > 0
