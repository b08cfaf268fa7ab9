"""What chatplane's two savers share: taking part in the unit of work of the run open on a thread.

``PooledPostgresSaver`` and ``BatchingSqliteSaver`` put this class before the upstream saver they extend. For a
thread with an open turn (``OpenTurns``) a write is held for the run's outcome when the turn holds its writes, and
otherwise written at once without waiting for the disk (``Database.batch(flush_later=True)``); every read of that
thread's checkpoints writes what is held first, so it reads what the run wrote. Upstream's behaviour is unchanged
for a thread with no open turn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from chatplane.storage.database import Statement
from chatplane.storage.unit_of_work import OpenTurns, Turn


class TakesPartInTurns(BaseCheckpointSaver[str]):
    _turns: OpenTurns

    async def _batch(self, statements: list[Statement], *, flush_later: bool) -> None:
        """Write ``statements`` in one transaction (the saver's own way)."""
        raise NotImplementedError

    def _turn(self, config: RunnableConfig | None) -> Turn | None:
        return self._turns.on((config or {}).get("configurable", {}).get("thread_id"))

    async def _write(self, thread_id: object, statements: list[Statement]) -> None:
        """Hold ``statements`` for the open turn's outcome, or write them now (without waiting for the disk
        while a turn is open: its outcome's commit flushes them)."""
        turn = self._turns.on(thread_id)
        if turn is not None and turn.hold(statements):
            return
        await self._batch(statements, flush_later=turn is not None)

    async def _write_held(self, turn: Turn | None) -> None:
        """Write what ``turn`` holds now, before its thread's checkpoints are read or deleted."""
        if turn is not None:
            await turn.write_held(self._write_early)

    async def _write_early(self, statements: list[Statement]) -> None:
        await self._batch(statements, flush_later=True)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        await self._write_held(self._turn(config))
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        await self._write_held(self._turns.on(thread_id))
        await super().adelete_thread(thread_id)

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Mapping[str, Any]:
        await self._write_held(self._turn(config))
        return await super().aget_delta_channel_history(config=config, channels=channels)
