"""The events one thread-protocol WebSocket carries (``protocol_ws``): its subscriptions, served by one reader of
the thread's events (``protocol_stream.thread_events``) in seq order, each event sent once if any subscription
wants it.

The JS client sends a ``subscription.subscribe`` per projection it reads (values, messages, its lifecycle watcher
…) and fans the events out itself, by their channels and ``event_id``: one ordered stream per socket is what it
reads, not a stream per subscription (interleaved, a run's end could reach one projection before another's last
event). Each subscription starts where a stream with its ``since`` starts (without: at the thread's newest run). A
subscription added after the reader went past its start gets those events again: the reader goes back to it and
re-reads, sending only what the new subscription wants, then goes on with every subscription's — events the client
has seen are dropped by their ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

from chatplane.core import UserServices
from chatplane.errors import ChatplaneError
from chatplane.failures import as_chatplane_error
from chatplane.service.langgraph.protocol_events import Event
from chatplane.service.langgraph.protocol_stream import SubscribeBody, start_after, thread_events

MAX_SUBSCRIPTIONS = 32


class Sender(Protocol):
    async def send(self, frame: dict[str, object]) -> bool:
        """``False`` if the socket is gone."""
        ...

    async def fail(self, error: ChatplaneError) -> None: ...


@dataclass
class _Subscription:
    body: SubscribeBody
    added_at: int
    """The furthest seq read when it was added: the events up to it are sent again for it."""
    after: int | None = None
    """The seq it starts after (``None`` until the reader has worked it out)."""
    served: bool = False
    """A reader started since it was added (it went back to its start, if it had to)."""
    caught_up: bool = False
    """Such a reader has gone past ``added_at``: no reader needs to go back for it again."""


class SocketEvents:
    """One socket's subscriptions and the reader that serves them (see the module)."""

    def __init__(self, sender: Sender, mine: UserServices, thread_id: str) -> None:
        self._sender = sender
        self._mine = mine
        self._thread_id = thread_id
        self._subscriptions: dict[str, _Subscription] = {}
        self._count = 0
        self._position: int | None = None
        """The seq the reader last went through (``None``: it has not read yet)."""
        self._furthest = -1
        """The furthest seq any reader went through: events after it were never sent."""
        self._reader: asyncio.Task[None] | None = None
        self._restart = False

    @property
    def active(self) -> bool:
        return bool(self._subscriptions)

    def subscribe(self, body: SubscribeBody) -> str | None:
        """Add a subscription (served once ``start`` is called): its id, or ``None`` if the socket has its fill."""
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
            return None
        self._count += 1
        subscription_id = f"sub-{self._count}"
        self._subscriptions[subscription_id] = _Subscription(body, self._furthest, body.since)
        self._restart = True
        return subscription_id

    def unsubscribe(self, subscription_id: str) -> bool:
        if self._subscriptions.pop(subscription_id, None) is None:
            return False
        if not self._subscriptions:
            self._stop()
        return True

    def start(self) -> None:
        """(Re)start the reader for the subscriptions added since the last call (after their answers are sent)."""
        if self._restart:
            self._restart = False
            self._stop()
            self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        reader = self._stop()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    def _stop(self) -> asyncio.Task[None] | None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
        return reader

    async def _read(self) -> None:
        """Every event from the earliest start still to serve, each sent if a subscription wants it; if the
        events cannot be read (the database gone), ``Sender.fail`` — rather than a socket left open and silent."""
        try:
            for subscription in list(self._subscriptions.values()):
                if subscription.after is None:
                    subscription.after = await start_after(self._mine, self._thread_id, subscription.body.since)
            behind = [s.after for s in self._subscriptions.values() if s.after is not None and not s.caught_up]
            for subscription in self._subscriptions.values():
                subscription.served = True
            if self._position is not None:
                behind.append(self._position)
            if not behind:
                return
            async for event in thread_events(self._mine, self._thread_id, min(behind)):
                if self._wanted(event) and not await self._sender.send(event):
                    return  # the socket is gone
                self._went_past(event["seq"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._sender.fail(as_chatplane_error(exc, f"thread {self._thread_id} (protocol stream)"))

    def _went_past(self, seq: int) -> None:
        self._position = seq
        self._furthest = max(self._furthest, seq)
        for subscription in self._subscriptions.values():
            if subscription.served and seq > subscription.added_at:
                subscription.caught_up = True

    def _wanted(self, event: Event) -> bool:
        """A subscription wants it, and has not had it: it is new, or older than the subscription."""
        seq = event["seq"]
        for subscription in self._subscriptions.values():
            after = subscription.after
            if after is None or seq <= after or not subscription.body.matches(event):
                continue
            if seq > self._furthest or seq <= subscription.added_at:
                return True
        return False
