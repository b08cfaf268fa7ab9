"""Operational signals from layers that know nothing of the app: storage faults, rate-limit rejections.

``failures.py`` and ``service/ratelimit.py`` call ``storage_error`` / ``rate_limited``; a running app's metrics
subscribe to them. With no subscriber a signal costs one function call. Subscribers must not raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Signal = Literal["storage_error", "rate_limited"]
Subscriber = Callable[[Signal, str], None]

_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> Callable[[], None]:
    """Receive every signal from now on; returns the function that unsubscribes."""
    _subscribers.append(subscriber)

    def unsubscribe() -> None:
        if subscriber in _subscribers:
            _subscribers.remove(subscriber)

    return unsubscribe


def _emit(signal: Signal, label: str) -> None:
    for subscriber in tuple(_subscribers):
        subscriber(signal, label)


def storage_error(error_type: str) -> None:
    """The database failed (unreachable, busy …); ``error_type`` is the exception's class name."""
    _emit("storage_error", error_type)


def rate_limited(limit: Literal["requests", "tokens", "runs"]) -> None:
    """A request was refused with 429 by one of the per-user limits."""
    _emit("rate_limited", limit)
