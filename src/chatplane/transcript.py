"""A thread's settled messages, append-only, in their own table: long threads cost the same per turn as short ones.

LangGraph checkpointers re-serialise a changed channel whole, so a thread that kept every message in its checkpoint
would write its whole history again on every turn. chatplane keeps only the *current run's* messages in the
checkpoint (the working state: what a resume, a cancel or a human-in-the-loop pause needs) and moves everything
before it here, once, at the start of the next run (``chatplane.agents.context.TranscriptMiddleware``). So a turn
writes its own messages twice (once in its checkpoint, once here on the next turn) whatever the thread's length.

* The model's prompt is the newest archived messages that fit the context budget, then the working state
  (``ContextBudgetMiddleware``): one indexed read of at most the budget per run.
* A thread's history is this table, then whatever of the working state is not in it yet (``merge_history``).
* Moving is idempotent: rows are unique per ``(thread_id, message_id)``, and history skips working-state messages
  already archived, so a run that fails between the two steps loses and doubles nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AnyMessage, BaseMessage, message_to_dict, messages_from_dict
from langchain_core.messages.utils import count_tokens_approximately

from chatplane.db import Database

_PAGE = 200


def _encode(message: BaseMessage) -> str:
    return json.dumps(message_to_dict(message), separators=(",", ":"), ensure_ascii=False, default=str)


def _decode(rows: Sequence[dict[str, Any]]) -> list[AnyMessage]:
    return list(messages_from_dict([json.loads(row["data"]) for row in rows]))  # type: ignore[arg-type]


class Transcript:
    """The ``chatplane_messages`` table: each thread's archived messages in order (``seq``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, thread_id: str, messages: Sequence[BaseMessage]) -> int:
        """Archive ``messages`` after the thread's last one; those archived already are skipped. How many were new.

        Runs of a thread execute one at a time, so two appends to one thread never race; if they did, the second
        would fail on the ``(thread_id, seq)`` key rather than lose a message.
        """
        if not messages:
            return 0
        now = time.time()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT coalesce(max(seq), 0) AS seq FROM chatplane_messages WHERE thread_id = %s", (thread_id,)
            )
            seq = int(row["seq"]) if row else 0
            values, params = [], []
            for message in messages:
                seq += 1
                values.append("(%s, %s, %s, %s, %s, %s)")
                tokens = count_tokens_approximately([message])
                params += [thread_id, seq, str(message.id), tokens, _encode(message), now]
            return await tx.execute(
                "INSERT INTO chatplane_messages (thread_id, seq, message_id, tokens, data, created_at) VALUES "
                + ", ".join(values)
                + " ON CONFLICT (thread_id, message_id) DO NOTHING",
                params,
            )

    async def tail(self, thread_id: str, max_tokens: int) -> list[AnyMessage]:
        """The newest archived messages whose tokens add up to at least ``max_tokens`` (or all), oldest first."""
        rows: list[dict[str, Any]] = []
        total, before = 0, None
        while total < max_tokens:
            where, params = "thread_id = %s", [thread_id]
            if before is not None:
                where += " AND seq < %s"
                params.append(before)
            page = await self.db.fetchall(
                f"SELECT seq, tokens, data FROM chatplane_messages WHERE {where} ORDER BY seq DESC LIMIT %s",
                (*params, _PAGE),
            )
            for row in page:
                rows.append(row)
                total += int(row["tokens"])
                if total >= max_tokens:
                    break
            if len(page) < _PAGE:
                break
            before = page[-1]["seq"]
        rows.reverse()
        return _decode(rows)

    async def messages(self, thread_id: str) -> list[AnyMessage]:
        """Every archived message of the thread, oldest first."""
        rows = await self.db.fetchall(
            "SELECT data FROM chatplane_messages WHERE thread_id = %s ORDER BY seq", (thread_id,)
        )
        return _decode(rows)

    async def count(self, thread_id: str) -> int:
        row = await self.db.fetchone("SELECT count(*) AS n FROM chatplane_messages WHERE thread_id = %s", (thread_id,))
        return int(row["n"]) if row else 0


def merge_history(archived: Sequence[AnyMessage], working: Sequence[AnyMessage]) -> list[AnyMessage]:
    """A thread's whole history: the archive, then the working state's messages that are not archived yet."""
    known = {m.id for m in archived}
    return [*archived, *(m for m in working if m.id not in known)]
