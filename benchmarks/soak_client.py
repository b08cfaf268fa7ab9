"""The soak's users: each sends one message after another to its own thread, waits for the answer, and sends a
message again with the same ``Idempotency-Key`` after a 503, a timeout or a dropped connection — the client
behaviour chatplane documents (docs/api.md, *Idempotent retries*). Everything it saw is recorded for the checks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.load import _client

RETRY_STATUSES = frozenset({0, 408, 409, 429, 500, 502, 503, 504})
"""Sent again with the same key: 0 is a connection error or a client timeout. 409 ``thread_busy`` can only mean
that the message before is still settling (a run the server has not finished recording)."""


@dataclass
class Attempt:
    started: float
    ended: float
    status: int  # HTTP status; 0: connection error or client timeout
    error: str = ""


@dataclass
class Message:
    user: int
    seq: int
    key: str
    first_sent: float
    attempts: list[Attempt] = field(default_factory=list)
    accepted_at: float | None = None  # the 200's arrival
    run_id: str | None = None
    run_status: str | None = None  # the run's status in the 200
    answer: str | None = None  # the 200's output content (the mock echoes the message)
    gave_up: str = ""  # why the client stopped sending it (no 200 before the drain deadline, a 4xx)

    @property
    def text(self) -> str:
        return message_text(self.user, self.seq)

    @property
    def latency(self) -> float | None:
        return None if self.accepted_at is None else self.accepted_at - self.first_sent


def message_text(user: int, seq: int) -> str:
    return f"soak u{user:04d} m{seq:06d}: please answer briefly."


@dataclass
class Users:
    """What the users did: their threads (by user) and every message they sent, in order per user."""

    url: str
    timeout_s: float
    stop_at: float  # no new message after this (monotonic)
    give_up_at: float  # a message not answered by then is given up
    retry_for_s: float  # a message still failing this long after it was first sent is given up
    threads: dict[int, str] = field(default_factory=dict)
    messages: dict[int, list[Message]] = field(default_factory=dict)

    def all_messages(self) -> list[Message]:
        return [m for ms in self.messages.values() for m in ms]


async def create_threads(url: str, users: int) -> dict[int, str]:
    """One thread per user (sent again until it works: the server may still be warming up)."""
    threads: dict[int, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for user in range(users):
            for _ in range(20):
                try:
                    async with session.post(f"{url}/v1/threads", json={"title": f"soak {user}"}) as response:
                        if response.status == 201:
                            threads[user] = (await response.json())["thread_id"]
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError(f"could not create thread {user}")
    return threads


async def _attempt(session: aiohttp.ClientSession, users: Users, message: Message) -> dict[str, Any] | None:
    """One request of ``message``: its 200 body, or None (recorded as an attempt either way)."""
    url = f"{users.url}/v1/threads/{users.threads[message.user]}/runs"
    started = time.monotonic()
    try:
        async with session.post(
            url,
            json={"message": message.text},
            headers={"Idempotency-Key": message.key},
            timeout=aiohttp.ClientTimeout(total=users.timeout_s),
        ) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        message.attempts.append(Attempt(started, time.monotonic(), 0, type(exc).__name__))
        return None
    ended = time.monotonic()
    if status != 200:
        message.attempts.append(Attempt(started, ended, status, body[:200].decode(errors="replace")))
        return None
    message.attempts.append(Attempt(started, ended, 200))
    parsed: dict[str, Any] = json.loads(body)
    return parsed


async def send(session: aiohttp.ClientSession, users: Users, message: Message) -> None:
    """Send ``message`` until it is answered 200, refused for good (a 4xx we do not retry), or given up."""
    backoff = 0.2
    while True:
        body = await _attempt(session, users, message)
        if body is not None:
            message.accepted_at = message.attempts[-1].ended
            message.run_id, message.run_status = body.get("run_id"), body.get("status")
            output = body.get("output") or {}
            message.answer = output.get("content") if isinstance(output, dict) else None
            return
        last = message.attempts[-1]
        if last.status not in RETRY_STATUSES:
            message.gave_up = f"HTTP {last.status}: {last.error[:80]}"
            return
        now = time.monotonic()
        if now + backoff > users.give_up_at:
            message.gave_up = f"no answer before the drain deadline (last: {_last_error(last)})"
            return
        if now - message.first_sent > users.retry_for_s:
            # A run that failed is replayed as failed to the same key: sending it again would never end.
            message.gave_up = f"no answer within {users.retry_for_s:.0f} s (last: {_last_error(last)})"
            return
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 2.0)


def _last_error(attempt: Attempt) -> str:
    return f"{attempt.status or attempt.error} {attempt.error[:60] if attempt.status else ''}".strip()


async def user_loop(users: Users, user: int) -> None:
    """One user: a message, its answer, the next message — until ``stop_at``; the last one is seen through."""
    messages = users.messages.setdefault(user, [])
    async with _client() as session:
        seq = 0
        while time.monotonic() < users.stop_at:
            seq += 1
            message = Message(user, seq, str(uuid.uuid4()), time.monotonic())
            messages.append(message)
            await send(session, users, message)
            if message.gave_up:
                await asyncio.sleep(1.0)  # do not spin on refusals
