"""The final values of the runs that succeeded in this process, kept a while for whoever waits on them.

LangGraph's ``wait`` and ``join`` answer with the thread's values once the run ends. A run executed here has just
had them in hand — the last checkpoint its graph wrote (``Turn.last_values``) — so reading the checkpoint back from
the database and deserialising it again, every turn, is work for nothing. Kept only once the run's success is
committed, and only the graph's state keys; a run that ran in another process is not here, and its waiter reads
the thread's state as before.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

from langgraph.channels.delta import DeltaChannel


class FinalValues(NamedTuple):
    values: dict[str, Any]  # the graph's state keys, as the run's last checkpoint holds them (objects, not JSON)
    has_messages: bool  # a chatplane messages graph: earlier turns are in the thread's transcript


class RecentFinals:
    """The final values of the last ``size`` runs that succeeded here (least recently kept first out)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._kept: OrderedDict[str, FinalValues] = OrderedDict()

    def keep(self, run_id: str, final: FinalValues) -> None:
        self._kept[run_id] = final
        self._kept.move_to_end(run_id)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)

    def get(self, run_id: str) -> FinalValues | None:
        return self._kept.get(run_id)


def state_values(channel_values: dict[str, Any] | None, graph: Any) -> dict[str, Any] | None:
    """The state keys of ``graph`` among a checkpoint's ``channel_values`` (what ``aget_state`` reports as values;
    LangGraph's own channels — triggers, branches — left out), or None when the checkpoint does not hold them whole:
    a ``DeltaChannel`` keeps only what changed, and only a read of the thread's state puts its value together."""
    keys = getattr(graph, "stream_channels_asis", None)
    channels = getattr(graph, "channels", None)
    if channel_values is None or not keys or not isinstance(channels, dict):
        return None
    keys = [keys] if isinstance(keys, str) else keys
    if any(isinstance(channels.get(key), DeltaChannel) for key in keys):
        return None
    return {key: channel_values[key] for key in keys if key in channel_values}
