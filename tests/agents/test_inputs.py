"""A run's input checked against a graph's state, whatever kind of class the state is."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from chatplane.agents.inputs import check_input, jsonschema_of
from chatplane.errors import InvalidInputError


@dataclass
class DataState:
    count: int = 0


class TypedState(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


class ModelState(BaseModel):
    count: int = 0


def _graph(state: Any) -> Any:
    return StateGraph(state).add_node("n", lambda s: {}).add_edge(START, "n").compile()


@pytest.mark.parametrize("state", [DataState, TypedState, ModelState])
def test_each_kind_of_state_takes_a_partial_input_and_names_a_bad_field(state: Any) -> None:
    graph = _graph(state)
    assert check_input(graph, {"count": 3}) == {"count": 3}
    assert "count" in (jsonschema_of(graph, "input") or {})["properties"]
    with pytest.raises(InvalidInputError, match=r"`input\.count`"):
        check_input(graph, {"count": "many"})
    with pytest.raises(InvalidInputError, match=r"`input\.nope` is not an input"):
        check_input(graph, {"nope": 1})


def test_messages_are_taken_as_langchain_takes_them() -> None:
    graph = _graph(MessagesState)
    check_input(graph, {"messages": [{"role": "user", "content": "hi"}, ["ai", "hello"]]})
    with pytest.raises(InvalidInputError, match=r"`input\.messages` must be a list of messages"):
        check_input(graph, {"messages": [{"role": "nobody"}]})
