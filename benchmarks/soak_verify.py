"""The soak's verdict: every thread's history against what its user sent and was told, and the runs table.

* **accepted** — messages answered 200 (each once, however many times it was sent);
* **lost** — accepted, yet not in the thread's history;
* **duplicated** — a message in the history more than once (each extra copy counts);
* **reordered** — a message in the history after one the user sent later;
* **orphaned** — runs still ``pending`` or ``running`` after the users stopped and a settle period;
* **unanswered** — an accepted message with no answer after it in the history (the mock echoes each message);
* **split** — a run recorded ``failed`` whose answer is in the history anyway (issue #29, item 1);
* **unconfirmed** — messages the client gave up on: in the history or not, both are correct.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psycopg

from benchmarks.soak_client import Message, Users

_TAG = re.compile(r"soak u(\d{4}) m(\d{6})")


@dataclass
class Verdict:
    accepted: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    orphaned: int = 0
    unanswered: int = 0
    split: int = 0
    unconfirmed: int = 0
    unconfirmed_in_history: int = 0
    ok_not_succeeded: int = 0  # a 200 whose run was not `succeeded`, or whose answer is not the message's echo
    runs_by_status: dict[str, int] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.evidence) < 40:
            self.evidence.append(what)


async def history(session: aiohttp.ClientSession, url: str, thread_id: str) -> list[dict[str, Any]]:
    """Every message of the thread, oldest first (page by page)."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        async with session.get(f"{url}/v1/threads/{thread_id}/messages", params=params) as response:
            response.raise_for_status()
            page = await response.json()
        out += page["messages"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def _seq(message: dict[str, Any]) -> int | None:
    content = message.get("content")
    found = _TAG.search(content) if isinstance(content, str) else None
    return int(found.group(2)) if found else None


def check_thread(verdict: Verdict, user: int, sent: list[Message], stored: list[dict[str, Any]]) -> None:
    """Compare one user's messages with its thread's history."""
    user_seqs = [s for m in stored if m.get("role") == "user" and (s := _seq(m)) is not None]
    counts = Counter(user_seqs)
    verdict.duplicated += sum(n - 1 for n in counts.values() if n > 1)
    for seq, n in counts.items():
        if n > 1:
            verdict.note(f"user {user}: m{seq} stored {n} times")
    highest = 0
    for seq in user_seqs:
        if seq < highest:
            verdict.reordered += 1
            verdict.note(f"user {user}: m{seq} stored after m{highest}")
        highest = max(highest, seq)
    answered = _answered(stored)
    for message in sent:
        if message.accepted_at is None:
            verdict.unconfirmed += 1
            verdict.unconfirmed_in_history += message.seq in counts
            continue
        verdict.accepted += 1
        if message.run_status != "succeeded" or message.answer != message.text:
            verdict.ok_not_succeeded += 1
            verdict.note(f"user {user}: m{message.seq} 200 with run {message.run_id} {message.run_status}")
        if message.seq not in counts:
            verdict.lost += 1
            verdict.note(f"user {user}: m{message.seq} answered 200 (run {message.run_id}) but not in the history")
        elif message.seq not in answered:
            verdict.unanswered += 1
            verdict.note(f"user {user}: m{message.seq} accepted, no answer after it in the history")


def _answered(stored: list[dict[str, Any]]) -> set[int]:
    """The user messages followed (before the next user message) by an assistant message that echoes them."""
    answered: set[int] = set()
    last: tuple[int, str] | None = None
    for message in stored:
        if message.get("role") == "user":
            seq = _seq(message)
            last = (seq, message["content"]) if seq is not None else None
        elif message.get("role") == "assistant" and last is not None and message.get("content") == last[1]:
            answered.add(last[0])
    return answered


async def check_runs(verdict: Verdict, database_url: str, answered: dict[str, set[int]]) -> None:
    """Orphaned runs, runs by status, and failed runs whose answer is stored (``answered``: by thread id)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await (await conn.execute("SELECT run_id, thread_id, status, input FROM chatplane_runs")).fetchall()
    verdict.runs_by_status = dict(Counter(str(r[2]) for r in rows))
    for run_id, thread_id, status, run_input in rows:
        if status in ("pending", "running"):
            verdict.orphaned += 1
            verdict.note(f"run {run_id} still {status} (thread {thread_id})")
        found = _TAG.search(str(run_input))
        if status == "failed" and found and int(found.group(2)) in answered.get(str(thread_id), set()):
            verdict.split += 1
            verdict.note(f"run {run_id} failed, yet m{int(found.group(2))}'s answer is in thread {thread_id}")


async def verify(users: Users, database_url: str) -> Verdict:
    """Read every thread's history and the runs table; compare with what the users sent and were told."""
    verdict = Verdict()
    answered: dict[str, set[int]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        for user, thread_id in sorted(users.threads.items()):
            stored = await history(session, users.url, thread_id)
            check_thread(verdict, user, users.messages.get(user, []), stored)
            answered[thread_id] = _answered(stored)
    await check_runs(verdict, database_url, answered)
    return verdict
