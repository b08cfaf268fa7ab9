"""Assistants users keep: named, versioned configurations of a graph (``AssistantStore``).

An assistant has a row holding its current version — the latest, unless an older one was pinned (``set_version``)
— and a row per version in ``chatplane_assistant_versions``. Versions are never changed: an update adds the next
one and makes it current. Ids are per owner (the key is ``(owner, assistant_id)``), so an id a client chooses can
neither be squatted by another user nor tell them someone has it: another user's assistant is indistinguishable
from a missing one. The graphs' default assistants are not stored; ``chatplane.core.assistants`` makes them up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from chatplane.errors import AssistantExistsError, AssistantLimitError, AssistantNotFoundError
from chatplane.storage.database import INTEGRITY_ERRORS, Database, Row, dumps, loads

IfExists = Literal["raise", "do_nothing"]

_FIELDS = "graph_id, name, description, config, context, metadata"
_COLUMNS = f"owner, assistant_id, {_FIELDS}, version, created_at, updated_at"
_VERSION_COLUMNS = (
    "v.owner, v.assistant_id, v.graph_id, v.name, v.description, v.config, v.context, v.metadata, v.version, "
    "a.created_at, v.created_at AS updated_at"
)
_VERSIONS_OF = (
    f"SELECT {_VERSION_COLUMNS} FROM chatplane_assistant_versions v JOIN chatplane_assistants a "
    "ON a.owner = v.owner AND a.assistant_id = v.assistant_id WHERE v.owner = %s AND v.assistant_id = %s"
)


@dataclass(frozen=True)
class Assistant:
    assistant_id: str
    graph_id: str
    owner: str | None
    """Who keeps it; None: a graph's default assistant, which everyone sees (made up, not stored)."""
    name: str
    description: str | None
    config: dict[str, Any]
    """LangGraph config for the graph's runs: ``configurable``, ``tags``, ``metadata``, ``recursion_limit``."""
    context: dict[str, Any]
    """The graph's context (for the built-in agents: model, system prompt, tools …)."""
    metadata: dict[str, Any]
    version: int
    created_at: float
    """When the assistant was created."""
    updated_at: float
    """When this version became current (read from the history: when this version was made)."""

    @property
    def is_default(self) -> bool:
        return self.owner is None

    @classmethod
    def from_row(cls, row: Row) -> Assistant:
        return cls(
            assistant_id=row["assistant_id"],
            graph_id=row["graph_id"],
            owner=row["owner"],
            name=row["name"],
            description=row["description"],
            config=loads(row["config"]),
            context=loads(row["context"]),
            metadata=loads(row["metadata"]),
            version=int(row["version"]),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )


Check = Callable[[Assistant], None]
"""Raises unless a version about to be stored (or pinned) suits its graph; called inside the transaction."""


class AssistantStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        owner: str,
        graph_id: str,
        *,
        assistant_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        if_exists: IfExists = "raise",
        max_per_owner: int | None = None,
    ) -> Assistant:
        """Version 1 of a new assistant (its id chosen here unless given). An id the owner has already:
        ``AssistantExistsError``, or with ``if_exists="do_nothing"`` that assistant as it is. An owner with
        ``max_per_owner`` assistants already: ``AssistantLimitError`` (a soft cap: on PostgreSQL, creates racing
        at it may each pass)."""
        now = time.time()
        new = Assistant(
            assistant_id or str(uuid.uuid4()),
            graph_id,
            owner,
            name or graph_id,
            description,
            config or {},
            context or {},
            metadata or {},
            1,
            now,
            now,
        )
        try:
            async with self.db.transaction() as tx:
                existing = await self._read(tx, new.assistant_id, owner) if assistant_id else None
                if existing is not None:
                    return _existing(Assistant.from_row(existing), if_exists)
                if max_per_owner is not None and await _count(tx, owner) >= max_per_owner:
                    raise AssistantLimitError(
                        f"You have {max_per_owner} assistants, as many as a user may keep; delete one first."
                    )
                await tx.execute(
                    f"INSERT INTO chatplane_assistants ({_COLUMNS}, latest_version) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (*_values(new), new.version, new.created_at, new.updated_at, new.version),
                )
                await _insert_version(tx, new)
        except INTEGRITY_ERRORS:
            # The owner created that id at the same moment in another request: answer as if it came first.
            found = await self.find(new.assistant_id, owner)
            if found is None:
                raise
            return _existing(found, if_exists)
        return new

    async def find(self, assistant_id: str, owner: str) -> Assistant | None:
        """The owner's assistant at its current version (None if they have none by that id)."""
        row = await self._read(self.db, assistant_id, owner)
        return Assistant.from_row(row) if row else None

    async def get(self, assistant_id: str, owner: str) -> Assistant:
        found = await self.find(assistant_id, owner)
        if found is None:
            raise AssistantNotFoundError()
        return found

    async def get_version(self, assistant_id: str, owner: str, version: int) -> Assistant:
        """The owner's assistant as it was at ``version`` (``AssistantNotFoundError`` if it or that version is not
        there)."""
        row = await self.db.fetchone(f"{_VERSIONS_OF} AND v.version = %s", (owner, assistant_id, version))
        if row is None:
            raise AssistantNotFoundError("No such assistant, or no such version of it.")
        return Assistant.from_row(row)

    async def versions(self, assistant_id: str, owner: str, *, limit: int = 10, offset: int = 0) -> list[Assistant]:
        """The assistant's versions, newest first."""
        rows = await self.db.fetchall(
            f"{_VERSIONS_OF} ORDER BY v.version DESC LIMIT %s OFFSET %s", (owner, assistant_id, limit, offset)
        )
        if not rows:
            await self.get(assistant_id, owner)  # no such assistant: a 404, not an empty page
        return [Assistant.from_row(r) for r in rows]

    async def search(
        self,
        owner: str,
        *,
        graph_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Assistant]:
        """The owner's assistants, newest first: of ``graph_id``, each key of ``metadata`` equal (as JSON) in
        theirs, ``name`` a part of theirs (ignoring case), as asked."""
        where, params = self._filters(owner, graph_id, metadata, name)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chatplane_assistants WHERE {where} "
            "ORDER BY created_at DESC, assistant_id DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [Assistant.from_row(r) for r in rows]

    async def count(self, owner: str) -> int:
        return await _count(self.db, owner)

    async def update(
        self,
        assistant_id: str,
        owner: str,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        check: Check | None = None,
    ) -> Assistant:
        """A new version — the latest's number plus one — made of the current one with the fields given (``metadata``
        merged key by key, the others replaced), and made current. ``check`` sees it before it is stored."""
        async with self.db.transaction() as tx:
            row = await self._read(tx, assistant_id, owner, lock=True)
            if row is None:
                raise AssistantNotFoundError()
            current = Assistant.from_row(row)
            new = replace(
                current,
                graph_id=graph_id if graph_id is not None else current.graph_id,
                name=name if name is not None else current.name,
                description=description if description is not None else current.description,
                config=config if config is not None else current.config,
                context=context if context is not None else current.context,
                metadata={**current.metadata, **metadata} if metadata is not None else current.metadata,
                version=int(row["latest_version"]) + 1,
                updated_at=time.time(),
            )
            if check is not None:
                check(new)
            await _insert_version(tx, new)
            await _make_current(tx, new, latest=True)
        return new

    async def set_version(
        self, assistant_id: str, owner: str, version: int, *, check: Check | None = None
    ) -> Assistant:
        """Pin ``version`` (one the assistant has) as its current one; later updates still number from the
        latest. LangGraph's ``set_latest``."""
        async with self.db.transaction() as tx:
            if await self._read(tx, assistant_id, owner, lock=True) is None:
                raise AssistantNotFoundError()
            row = await tx.fetchone(f"{_VERSIONS_OF} AND v.version = %s", (owner, assistant_id, version))
            if row is None:
                raise AssistantNotFoundError("This assistant has no such version.")
            pinned = replace(Assistant.from_row(row), updated_at=time.time())
            if check is not None:
                check(pinned)
            await _make_current(tx, pinned, latest=False)
        return pinned

    async def delete(self, assistant_id: str, owner: str) -> None:
        """The assistant with all its versions (``AssistantNotFoundError`` if the owner has none by that id)."""
        async with self.db.transaction() as tx:
            deleted = await tx.execute(
                "DELETE FROM chatplane_assistants WHERE owner = %s AND assistant_id = %s", (owner, assistant_id)
            )
            if not deleted:
                raise AssistantNotFoundError()
            await tx.execute(
                "DELETE FROM chatplane_assistant_versions WHERE owner = %s AND assistant_id = %s", (owner, assistant_id)
            )

    async def _read(self, db: Database, assistant_id: str, owner: str, *, lock: bool = False) -> Row | None:
        """The current row (with ``latest_version``); ``lock``: held until the transaction ends (PostgreSQL; on
        SQLite the transaction's write lock already serialises writers)."""
        suffix = " FOR UPDATE" if lock and db.dialect == "postgres" else ""
        return await db.fetchone(
            f"SELECT {_COLUMNS}, latest_version FROM chatplane_assistants WHERE owner = %s AND assistant_id = %s"
            + suffix,
            (owner, assistant_id),
        )

    def _filters(
        self, owner: str, graph_id: str | None, metadata: dict[str, Any] | None, name: str | None
    ) -> tuple[str, list[Any]]:
        where, params = ["owner = %s"], [owner]
        if graph_id is not None:
            where.append("graph_id = %s")
            params.append(graph_id)
        if name:
            position = "strpos" if self.db.dialect == "postgres" else "instr"
            where.append(f"{position}(lower(name), lower(%s)) > 0")
            params.append(name)
        for key, value in (metadata or {}).items():
            where.append(_METADATA_EQUALS[self.db.dialect])
            params += [str(key), dumps(value)]
        return " AND ".join(where), params


# A key of the metadata equal to a JSON value. SQLite: its JSON text (json_each gives a scalar as an SQL value) is
# compared with the value's, minified; PostgreSQL compares jsonb.
_METADATA_EQUALS = {
    "postgres": "CAST(metadata AS jsonb) -> CAST(%s AS TEXT) = CAST(%s AS jsonb)",
    "sqlite": "EXISTS (SELECT 1 FROM json_each(metadata) j WHERE j.key = %s AND (CASE j.type WHEN 'true' THEN 'true' "
    "WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' ELSE json_quote(j.value) END) = json(%s))",
}


def _existing(found: Assistant, if_exists: IfExists) -> Assistant:
    if if_exists == "do_nothing":
        return found
    raise AssistantExistsError()


def _values(assistant: Assistant) -> tuple[Any, ...]:
    """owner, assistant_id, then ``_FIELDS``."""
    a = assistant
    return (
        a.owner,
        a.assistant_id,
        a.graph_id,
        a.name,
        a.description,
        dumps(a.config),
        dumps(a.context),
        dumps(a.metadata),
    )


async def _count(db: Database, owner: str) -> int:
    row = await db.fetchone("SELECT count(*) AS n FROM chatplane_assistants WHERE owner = %s", (owner,))
    return int(row["n"]) if row else 0


async def _insert_version(tx: Database, assistant: Assistant) -> None:
    await tx.execute(
        f"INSERT INTO chatplane_assistant_versions (owner, assistant_id, {_FIELDS}, version, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (*_values(assistant), assistant.version, assistant.updated_at),
    )


async def _make_current(tx: Database, assistant: Assistant, *, latest: bool) -> None:
    """Write ``assistant`` (a version of it) into its current row; ``latest``: it is also the newest version."""
    a = assistant
    newest = ", latest_version = %s" if latest else ""
    await tx.execute(
        "UPDATE chatplane_assistants SET graph_id = %s, name = %s, description = %s, config = %s, context = %s, "
        f"metadata = %s, version = %s, updated_at = %s{newest} WHERE owner = %s AND assistant_id = %s",
        (*_values(a)[2:], a.version, a.updated_at, *([a.version] if latest else []), a.owner, a.assistant_id),
    )
