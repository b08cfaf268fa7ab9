"""A user's threads: create, list, read, rename, delete; their messages and their runs."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AnyMessage

from chatplane.core.services import Services
from chatplane.errors import InvalidInputError
from chatplane.retention.prune import compact_threads
from chatplane.storage.runs import Run
from chatplane.storage.threads import Thread


class ThreadService:
    """``owner``'s threads: another user's thread is a 404 here, whatever it is."""

    def __init__(self, services: Services, owner: str) -> None:
        self._services = services
        self._store = services.storage.threads
        self.owner = owner

    async def create(
        self,
        *,
        agent: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl_days: float | None = None,
        model: str | None = None,
    ) -> Thread:
        """A new thread talking to ``agent`` (default: the server's), on ``model`` (default: the server's; others
        from ``CHATPLANE_MODEL_ALLOWLIST``), deleted ``ttl_days`` after its creation if given."""
        settings = self._services.settings
        kind = await self._services.targets.thread_agent(agent or settings.default_agent, self.owner)
        chosen = model if model != settings.model else None
        if chosen is not None and chosen not in settings.model_allowlist:
            raise InvalidInputError("That model cannot be chosen here (CHATPLANE_MODEL_ALLOWLIST).")
        ttl_s = ttl_days * 86400 if ttl_days is not None else None
        return await self._store.create(self.owner, kind, title=title, metadata=metadata, ttl_s=ttl_s, model=chosen)

    async def list(self, *, limit: int = 20, cursor: str | None = None) -> tuple[builtins.list[Thread], str | None]:
        """The owner's threads, newest first; a cursor for the next page when there is one."""
        return await self._store.list(self.owner, limit=limit, cursor=cursor)

    async def get(self, thread_id: str) -> Thread:
        return await self._store.get(thread_id, self.owner)

    async def find(self, thread_id: str) -> Thread | None:
        return await self._store.find(thread_id, self.owner)

    async def update(
        self, thread_id: str, *, title: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Thread:
        return await self._store.update(thread_id, self.owner, title=title, metadata=metadata)

    async def delete(self, thread_id: str) -> None:
        """The thread with its messages and runs (active runs are cancelled first)."""
        await self.get(thread_id)
        await self._services.delete_thread(thread_id)

    async def prune(self, thread_ids: Sequence[str], *, keep_latest: bool = False) -> int:
        """LangGraph's ``threads.prune``: the owner's threads among ``thread_ids`` deleted (with their runs, active
        ones cancelled first), or with ``keep_latest`` kept with only their latest checkpoints (those with an active
        run left as they are: ``chatplane.retention.compact_threads``). An id that is not one of the owner's is
        skipped, as a missing one. How many were pruned."""
        owned = [t for t in dict.fromkeys(thread_ids) if await self._store.find(t, self.owner) is not None]
        storage = self._services.storage
        if keep_latest:
            if storage.kind == "memory":
                raise InvalidInputError("`keep_latest` is not supported on memory:// storage (no checkpoint tables).")
            return await compact_threads(storage, owned)
        for thread_id in owned:
            await self._services.delete_thread(thread_id)
        return len(owned)

    async def messages(self, thread: Thread | str) -> builtins.list[AnyMessage]:
        """Every message of the thread, oldest first."""
        if isinstance(thread, str):
            thread = await self.get(thread)
        return await self._services.history(thread.thread_id, thread.agent, self.owner)

    async def state(self, thread: Thread | str) -> tuple[dict[str, Any], Any]:
        """The thread's latest state: its values, and LangGraph's ``StateSnapshot`` (next nodes, interrupts …)."""
        if isinstance(thread, str):
            thread = await self.get(thread)
        return await self._services.state(thread.thread_id, thread.agent, self.owner)

    async def runs(self, thread_id: str, *, limit: int = 50) -> builtins.list[Run]:
        """The thread's latest runs, newest first."""
        await self.get(thread_id)
        return await self._services.storage.runs.list_for_thread(thread_id, limit=limit)

    async def runs_in_order(self, thread_id: str, first: int, limit: int = 20) -> builtins.list[Run]:
        """The thread's runs in the order they were accepted, from the ``first``-th (from 1); none if it is not the
        owner's. A run's ordinal — its place here — stays the same however many runs come after it."""
        return await self._services.storage.runs.in_order(thread_id, self.owner, first, limit)

    async def run_ordinal(self, run: Run) -> int:
        """``run``'s place among its thread's runs, from 1 (``runs_in_order``)."""
        return await self._services.storage.runs.count_for_thread(run.thread_id, self.owner, up_to=run.created_at)

    async def run_count(self, thread_id: str) -> int:
        """How many runs the owner's thread has had (the newest one's ordinal)."""
        return await self._services.storage.runs.count_for_thread(thread_id, self.owner)
