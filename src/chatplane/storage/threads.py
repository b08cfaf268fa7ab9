"""The thread registry: who owns each conversation, which agent it talks to, its title and metadata.

The conversation itself lives in the LangGraph checkpointer under the same ``thread_id``. Every read and write here
is scoped by owner: another user's thread is indistinguishable from a missing one.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from chatplane.errors import AgentMismatchError, InvalidInputError, ThreadNotFoundError
from chatplane.storage import branches
from chatplane.storage.database import INTEGRITY_ERRORS, Database, Dialect, Row, Statement, dumps, loads

_COLUMNS = "thread_id, owner, agent, session_id, title, metadata, created_at, updated_at, expires_at, model"


@dataclass
class Thread:
    thread_id: str
    owner: str
    agent: str
    session_id: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float | None = None
    """When retention deletes the thread (``ttl_days`` at creation); None: only after inactivity, if configured."""
    model: str | None = None
    """The model chosen for this thread from the allowlist; None: the server's model."""

    @classmethod
    def from_row(cls, row: Row) -> Thread:
        return cls(
            thread_id=row["thread_id"],
            owner=row["owner"],
            agent=row["agent"],
            session_id=row["session_id"],
            title=row["title"],
            metadata=loads(row["metadata"]),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
            expires_at=float(row["expires_at"]) if row.get("expires_at") is not None else None,
            model=row.get("model"),
        )


def _encode_cursor(thread: Thread) -> str:
    return base64.urlsafe_b64encode(f"{thread.created_at!r}|{thread.thread_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, _, thread_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return float(created), thread_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("cursor is not valid; use the next_cursor of a previous page.") from exc


class ThreadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        owner: str,
        agent: str,
        *,
        thread_id: str | None = None,
        session_id: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl_s: float | None = None,
        model: str | None = None,
    ) -> Thread:
        now = time.time()
        expires_at = now + ttl_s if ttl_s is not None else None
        thread = Thread(
            thread_id or str(uuid.uuid4()), owner, agent, session_id, title, metadata or {}, now, now, expires_at, model
        )
        await self.db.execute(
            f"INSERT INTO chatplane_threads ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (thread.thread_id, owner, agent, session_id, title, dumps(thread.metadata), now, now, expires_at, model),
        )
        return thread

    async def find(self, thread_id: str, owner: str) -> Thread | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM chatplane_threads WHERE thread_id = %s AND owner = %s", (thread_id, owner)
        )
        return Thread.from_row(row) if row else None

    async def get(self, thread_id: str, owner: str) -> Thread:
        thread = await self.find(thread_id, owner)
        if thread is None:
            raise ThreadNotFoundError()
        return thread

    async def ensure(
        self, thread_id: str, owner: str, agent: str | None, default_agent: str, session_id: str | None = None
    ) -> Thread:
        """The thread, created on first use (the seed's sessions); asking it for another agent is a 409."""
        thread = await self.find(thread_id, owner)
        if thread is None:
            try:
                thread = await self.create(owner, agent or default_agent, thread_id=thread_id, session_id=session_id)
            except INTEGRITY_ERRORS:
                # Created concurrently by another request: read the winner's row. Another owner's thread with
                # this id is the same 404 as a missing one.
                thread = await self.find(thread_id, owner)
                if thread is None:
                    raise ThreadNotFoundError() from None
        return check_thread(thread, owner, agent)

    async def list(self, owner: str, *, limit: int = 20, cursor: str | None = None) -> tuple[list[Thread], str | None]:
        """The owner's threads, newest first; a cursor for the next page when there is one."""
        params: list[Any] = [owner]
        where = "owner = %s"
        if cursor:
            created, thread_id = _decode_cursor(cursor)
            where += " AND (created_at < %s OR (created_at = %s AND thread_id < %s))"
            params += [created, created, thread_id]
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chatplane_threads WHERE {where} ORDER BY created_at DESC, thread_id DESC LIMIT %s",
            (*params, limit + 1),
        )
        threads = [Thread.from_row(r) for r in rows[:limit]]
        next_cursor = _encode_cursor(threads[-1]) if len(rows) > limit else None
        return threads, next_cursor

    async def update(
        self, thread_id: str, owner: str, *, title: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Thread:
        thread = await self.get(thread_id, owner)
        if title is not None:
            thread.title = title
        if metadata is not None:
            thread.metadata = {**thread.metadata, **metadata}
        thread.updated_at = time.time()
        await self.db.execute(
            "UPDATE chatplane_threads SET title = %s, metadata = %s, updated_at = %s "
            "WHERE thread_id = %s AND owner = %s",
            (thread.title, dumps(thread.metadata), thread.updated_at, thread_id, owner),
        )
        return thread

    async def touch(self, thread_id: str) -> None:
        await self.db.execute(*self.touch_statement(thread_id))

    @staticmethod
    def touch_statement(thread_id: str) -> Statement:
        """Mark the thread active now. (It writes the thread's row, so it waits for whoever holds its lock.)"""
        return "UPDATE chatplane_threads SET updated_at = %s WHERE thread_id = %s", (time.time(), thread_id)

    @staticmethod
    def lock_statement(thread_id: str, dialect: Dialect) -> Statement:
        """The thread's row, whoever owns it, locked until the transaction ends: decisions about one thread's runs
        are serialised across processes this way (on SQLite, a transaction's write lock already does that)."""
        lock = " FOR UPDATE" if dialect == "postgres" else ""
        return f"SELECT {_COLUMNS} FROM chatplane_threads WHERE thread_id = %s{lock}", (thread_id,)

    @staticmethod
    async def lock(tx: Database, thread_id: str) -> Thread | None:
        """In transaction ``tx``: the thread, whoever owns it, locked as ``lock_statement`` says (None if gone)."""
        row = await tx.fetchone(*ThreadStore.lock_statement(thread_id, tx.dialect))
        return Thread.from_row(row) if row else None

    async def purge(self, checkpointer: Any, thread_id: str) -> None:
        """Everything stored for a thread, whoever owns it: checkpoints, transcript, run records, the registry row.
        (Stop its runs first; ``ProductionAgent.delete_thread`` does.)"""
        await checkpointer.adelete_thread(thread_id)
        await self.db.execute("DELETE FROM chatplane_runs WHERE thread_id = %s", (thread_id,))
        await self.db.execute("DELETE FROM chatplane_threads WHERE thread_id = %s", (thread_id,))
        await branches.release(self.db, thread_id)  # its transcript, unless a fork of it still reads it

    async def delete(self, thread_id: str, owner: str) -> bool:
        return (
            await self.db.execute(
                "DELETE FROM chatplane_threads WHERE thread_id = %s AND owner = %s", (thread_id, owner)
            )
            > 0
        )


def check_thread(thread: Thread | None, owner: str, agent: str | None) -> Thread:
    """``thread`` if it is ``owner``'s and (``agent`` given) talks to that agent: else ``ThreadNotFoundError``
    (another owner's thread is not there for them) or ``AgentMismatchError``."""
    if thread is None or thread.owner != owner:
        raise ThreadNotFoundError()
    if agent is not None and agent != thread.agent:
        raise AgentMismatchError(
            f"This session talks to the {thread.agent!r} agent; start a new session to use {agent!r}."
        )
    return thread
