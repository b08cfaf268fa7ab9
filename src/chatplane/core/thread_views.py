"""A user's threads as the LangGraph API sees them (``ThreadViews``): created with an id of the caller's choosing,
each with its status, latest values and interrupts; searched by metadata, values and status.

A thread talks to one graph. One created without a graph (no ``graph_id`` in its metadata) talks to the server's
default agent until its first run: a run on a thread with no runs yet names its graph (``bind``), and from then on
the thread keeps it — chatplane's rule that a thread's graph is fixed, at the latest point LangGraph allows.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chatplane.core.checks import check_id
from chatplane.core.services import Services
from chatplane.core.thread_state import ThreadStates
from chatplane.core.thread_status import ThreadStatus, run_statuses, with_checkpoint
from chatplane.errors import InvalidInputError, ThreadExistsError
from chatplane.runs.jsonable import to_jsonable
from chatplane.storage.database import INTEGRITY_ERRORS
from chatplane.storage.thread_search import SortBy, ThreadSearch
from chatplane.storage.threads import Thread

_BATCH = 100
_MAX_SCAN = 10_000  # threads looked at for one search that filters on values or status


@dataclass
class ThreadView:
    thread: Thread
    status: ThreadStatus
    values: dict[str, Any]
    snapshot: Any


class ThreadViews:
    """``owner``'s threads: another user's thread is a 404 here, whatever it is."""

    def __init__(self, services: Services, owner: str) -> None:
        self._services = services
        self._store = services.storage.threads
        self._search = ThreadSearch(services.storage.db)
        self.states = ThreadStates(services, owner)
        self.owner = owner

    async def create(
        self,
        *,
        thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
        ttl_s: float | None = None,
        supersteps: Sequence[Sequence[tuple[Any, str]]] = (),
    ) -> Thread:
        """A new thread (``thread_id``: the caller's choice), talking to ``metadata["graph_id"]`` if given, else to
        the server's default agent. An id that is taken is a 409 — or, ``if_exists="do_nothing"``, the caller's
        own thread with that id as it is (another user's is a 409 all the same: never theirs). ``ttl_s``: deleted
        that long after its creation. ``supersteps``: the new thread's state written by them
        (``ThreadStates.bulk_update``; it needs a ``graph_id``); if they do not suit its graph, no thread is made."""
        settings = self._services.settings
        graph_id = (metadata or {}).get("graph_id")
        if supersteps and not graph_id:
            raise InvalidInputError("`supersteps` need `metadata.graph_id`: the graph whose state they write.")
        agent = await self._services.targets.thread_agent(str(graph_id or settings.default_agent), self.owner)
        if thread_id is not None:
            check_id("thread_id", thread_id)
            existing = await self._store.find(thread_id, self.owner)
            if existing is not None:
                return _existing(existing, if_exists)
        try:
            thread = await self._store.create(self.owner, agent, thread_id=thread_id, metadata=metadata, ttl_s=ttl_s)
        except INTEGRITY_ERRORS as exc:
            found = await self._store.find(thread_id, self.owner) if thread_id else None
            if found is None:
                raise ThreadExistsError() from exc
            return _existing(found, if_exists)
        if supersteps:
            try:
                await self.states.bulk_update(thread, supersteps)
            except BaseException:
                await self._services.delete_thread(thread.thread_id)
                raise
        return thread

    async def view(self, thread: Thread | str) -> ThreadView:
        if isinstance(thread, str):
            thread = await self._store.get(thread, self.owner)
        return (await self.views([thread]))[0]

    async def views(self, threads: builtins.list[Thread]) -> builtins.list[ThreadView]:
        """Each thread with its status, latest values and state."""
        statuses = await run_statuses(self._services.storage.db, [t.thread_id for t in threads])
        out = []
        for thread in threads:
            values, snapshot = await self.states.latest(thread)
            out.append(ThreadView(thread, with_checkpoint(statuses[thread.thread_id], snapshot), values, snapshot))
        return out

    async def search(
        self,
        *,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
        ids: builtins.list[str] | None = None,
        sort_by: SortBy = "created_at",
        descending: bool = True,
        limit: int = 10,
        offset: int = 0,
    ) -> builtins.list[ThreadView]:
        """The owner's threads matching every filter: ``metadata`` and ``values`` key by key (as JSON), ``status``,
        ``ids``; sorted, ``limit`` from ``offset``. Values and status are matched here, over the threads the
        metadata matches, a batch at a time (at most ``_MAX_SCAN`` looked at)."""
        if values is None and status is None:
            page = await self._search.page(
                self.owner,
                metadata=metadata,
                ids=ids,
                sort_by=sort_by,
                descending=descending,
                limit=limit,
                offset=offset,
            )
            return await self.views(page)
        found: builtins.list[ThreadView] = []
        scanned = 0
        while len(found) < offset + limit and scanned < _MAX_SCAN:
            batch = await self._search.page(
                self.owner,
                metadata=metadata,
                ids=ids,
                sort_by=sort_by,
                descending=descending,
                limit=_BATCH,
                offset=scanned,
            )
            scanned += len(batch)
            found += [v for v in await self.views(batch) if _matches(v, values, status)]
            if len(batch) < _BATCH:
                break
        return found[offset : offset + limit]

    async def count(
        self,
        *,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
    ) -> int:
        if values is None and status is None:
            return await self._search.count(self.owner, metadata=metadata)
        return len(await self.search(metadata=metadata, values=values, status=status, limit=_MAX_SCAN))


def _existing(thread: Thread, if_exists: str) -> Thread:
    if if_exists == "do_nothing":
        return thread
    raise ThreadExistsError()


def _matches(view: ThreadView, values: dict[str, Any] | None, status: ThreadStatus | None) -> bool:
    if status is not None and view.status != status:
        return False
    have = to_jsonable(view.values)
    return all(key in have and have[key] == to_jsonable(value) for key, value in (values or {}).items())
