"""A run's final values, as kept for its waiters (``chatplane.runs.finals``): the graph's state keys only, and
nothing for a graph whose checkpoint does not hold a key whole."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.channels.delta import DeltaChannel
from langgraph.graph import StateGraph

from chatplane.runs.finals import FinalValues, RecentFinals, state_values


class _Plain(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


class _Delta(TypedDict):
    log: Annotated[list[str], DeltaChannel(lambda state, writes: [*(state or []), *(w for b in writes for w in b)])]


def _graph(schema: Any) -> Any:
    builder = StateGraph(schema)
    builder.add_node("step", lambda state: {})
    builder.set_entry_point("step")
    return builder.compile()


def test_only_the_state_keys_are_kept() -> None:
    channel_values = {"count": 2, "log": ["tick"], "branch:to:step": None, "__start__": {"count": 1}}
    assert state_values(channel_values, _graph(_Plain)) == {"count": 2, "log": ["tick"]}


def test_a_graph_with_a_delta_channel_or_no_checkpoint_keeps_nothing() -> None:
    assert state_values({"log": ["a"]}, _graph(_Delta)) is None
    assert state_values(None, _graph(_Plain)) is None


def test_the_oldest_are_forgotten_first() -> None:
    finals = RecentFinals(size=2)
    for run_id in ("a", "b", "c"):
        finals.keep(run_id, FinalValues({"n": run_id}, has_messages=False))
    assert finals.get("a") is None
    assert finals.get("c") == FinalValues({"n": "c"}, has_messages=False)
