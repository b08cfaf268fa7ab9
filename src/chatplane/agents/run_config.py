"""What a caller may put in a run's (or an assistant's) LangGraph ``config``, checked before anything is stored.

A caller sets ``configurable`` (the graph's own keys), ``tags``, ``metadata`` and a ``recursion_limit`` up to the
server's. The keys that say where a run reads and writes — its thread, checkpoints, run, graph, assistant and
user — are the server's: a caller that sets one gets a 422 naming it, never a run in another thread's state.
"""

from __future__ import annotations

import json
from typing import Any

from chatplane.errors import InvalidInputError

RESERVED_CONFIGURABLE = frozenset(
    {"thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map", "run_id", "user_id", "graph_id", "assistant_id"}
)
"""``configurable`` keys the server sets for every run (and LangGraph's own, ``__``- or ``langgraph_``-prefixed)."""

_TOP_LEVEL = ("configurable", "tags", "metadata", "recursion_limit")
_MAX_TAGS = 32
_MAX_BYTES = 64 * 1024


def reserved(key: str) -> bool:
    return key in RESERVED_CONFIGURABLE or key.startswith(("__", "langgraph_", "checkpoint_"))


def check_config(config: Any, *, max_recursion: int, field: str = "config") -> dict[str, Any]:
    """``config`` if a caller may send it (a copy, its parts checked), else ``InvalidInputError`` naming the field."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InvalidInputError(f"`{field}` must be an object.")
    for key in config:
        if key not in _TOP_LEVEL:
            raise InvalidInputError(f"`{field}.{key}` is not supported; a config takes {', '.join(_TOP_LEVEL)}.")
    if len(json.dumps(config, default=str)) > _MAX_BYTES:
        raise InvalidInputError(f"`{field}` is larger than 64 KB.")
    checked: dict[str, Any] = {}
    configurable = config.get("configurable")
    if configurable is not None:
        if not isinstance(configurable, dict):
            raise InvalidInputError(f"`{field}.configurable` must be an object.")
        for key in configurable:
            if reserved(str(key)):
                raise InvalidInputError(f"`{field}.configurable.{key}` is set by the server and cannot be sent.")
        checked["configurable"] = dict(configurable)
    tags = config.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or len(tags) > _MAX_TAGS or not all(isinstance(t, str) for t in tags):
            raise InvalidInputError(f"`{field}.tags` must be a list of at most {_MAX_TAGS} strings.")
        checked["tags"] = list(tags)
    metadata = config.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidInputError(f"`{field}.metadata` must be an object.")
        checked["metadata"] = dict(metadata)
    limit = config.get("recursion_limit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_recursion:
            raise InvalidInputError(f"`{field}.recursion_limit` must be a whole number from 1 to {max_recursion}.")
        checked["recursion_limit"] = limit
    return checked


def merge_configs(*configs: dict[str, Any]) -> dict[str, Any]:
    """Checked configs merged left to right: ``configurable`` and ``metadata`` key by key, ``tags`` joined, the
    last ``recursion_limit`` given."""
    merged: dict[str, Any] = {}
    for config in configs:
        for key in ("configurable", "metadata"):
            if key in config:
                merged[key] = {**merged.get(key, {}), **config[key]}
        if "tags" in config:
            merged["tags"] = [*merged.get("tags", []), *(t for t in config["tags"] if t not in merged.get("tags", []))]
        if "recursion_limit" in config:
            merged["recursion_limit"] = config["recursion_limit"]
    return merged
