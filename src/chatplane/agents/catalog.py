"""What the rest of chatplane may ask about the graphs a server serves, whatever loaded them (``GraphCatalog``).

Assistants, runs and the agent listing check what a caller sends against it; ``chatplane.agents.registry`` (the
graphs the project file and the built-in agents name) implements it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""LangGraph's namespace for the id of a graph's default assistant (``uuid5(NAMESPACE_GRAPH, graph_id)``): the
same ids as LangGraph Platform, so clients that know a default assistant by its id find it here too."""


def default_assistant_id(graph_id: str) -> str:
    """The id of ``graph_id``'s default assistant."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


class GraphCatalog(Protocol):
    def graph_ids(self) -> Sequence[str]:
        """Every graph id, in the order they were registered (built-in agents first)."""
        ...

    def description(self, graph_id: str) -> str:
        """One line saying what the graph does ('' if its entry gave none)."""
        ...

    def check_assistant(self, graph_id: str, *, config: dict[str, Any], context: dict[str, Any]) -> None:
        """Raise ``InvalidInputError`` (naming the field) unless ``config`` and ``context`` suit ``graph_id``;
        ``InvalidInputError`` too for an unknown graph id."""
        ...
