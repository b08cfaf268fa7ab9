"""A graph's state, updates and custom stream data as JSON, the way LangGraph's own server sends them.

Messages and other pydantic models become their ``model_dump()`` (``{"type": "ai", "content": …}``), dataclasses
their fields, ``Interrupt`` ``{"value", "id"}``, ``Send`` / ``Command`` their parts; sets and tuples become lists,
bytes are decoded (UTF-8, replacing what is not). What JSON cannot hold at all is named by its type, never
``repr``'d: a graph's objects may carry secrets.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Mapping
from typing import Any

from langgraph.types import Command, Interrupt, Send
from pydantic import BaseModel

_MAX_DEPTH = 64


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if _depth > _MAX_DEPTH:
        return None
    depth = _depth + 1
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, depth) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, depth) for v in value]
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump(), depth)
    if isinstance(value, Interrupt):
        return {"value": to_jsonable(value.value, depth), "id": value.id}
    if isinstance(value, Send):
        return {"node": value.node, "arg": to_jsonable(value.arg, depth)}
    if isinstance(value, Command):
        parts = {"update": value.update, "resume": value.resume, "goto": value.goto, "graph": value.graph}
        return {k: to_jsonable(v, depth) for k, v in parts.items() if v not in (None, ())}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), depth) for f in dataclasses.fields(value)}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, depth)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return {"type": type(value).__name__}
