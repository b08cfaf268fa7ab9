"""A run's ``input`` and ``context``, checked against the graph's own schemas before anything is stored.

A graph's input schema is LangGraph's (``get_input_schema``: a pydantic model of its input channels); its context
schema is what it was compiled with (``context_schema``: a pydantic model, dataclass or TypedDict). A message list
may be given as LangChain accepts it anywhere (``{"role": "user", "content": "hi"}``, ``["user", "hi"]``, a message
dict): it is converted before the check. The error names the first field that does not fit; it never quotes the
value.
"""

from __future__ import annotations

import weakref
from typing import Any, get_type_hints

from langchain_core.messages import convert_to_messages
from pydantic import BaseModel, TypeAdapter, ValidationError

from chatplane.errors import InvalidInputError


def _where(field: str, error: ValidationError) -> str:
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    return f"`{field}.{loc}`: {first['msg']}." if loc else f"`{field}`: {first['msg']}."


def message_channels(graph: Any) -> set[str]:
    """The state keys that hold a message list (by name: ``messages``, LangGraph's ``MessagesState`` key)."""
    return {"messages"} & set(getattr(graph, "channels", {}) or {})


_FIELDS: weakref.WeakKeyDictionary[Any, tuple[type[BaseModel] | None, dict[str, Any]]] = weakref.WeakKeyDictionary()
"""Each live graph's input fields: working them out (LangGraph's schema, type hints) took ~0.4 ms of every run."""


def _input_fields(graph: Any) -> tuple[type[BaseModel] | None, dict[str, Any]]:
    """``_read_input_fields``, once per graph object (graphs are built once and kept; a graph that cannot be weakly
    referenced is read each time)."""
    try:
        return _FIELDS[graph]
    except KeyError:
        fields = _FIELDS[graph] = _read_input_fields(graph)
        return fields
    except TypeError:
        return _read_input_fields(graph)


def _read_input_fields(graph: Any) -> tuple[type[BaseModel] | None, dict[str, Any]]:
    """The graph's input schema as pydantic sees it, with its keys — or None and each input key's type hint, for
    a state LangGraph wraps whole (a dataclass, a ``typing_extensions.TypedDict``: a ``root`` field, which would
    take only a complete state) or one pydantic cannot take (a ``typing.TypedDict`` on Python 3.11)."""
    try:
        schema: type[BaseModel] = graph.get_input_schema()
        if set(schema.model_fields) != {"root"}:
            return schema, dict(schema.model_fields)
        input_schema = schema.model_fields["root"].annotation
        keys = list(_hints(input_schema))
    except Exception:
        builder = getattr(graph, "builder", None)
        input_schema = getattr(builder, "input_schema", None)
        keys = list(getattr(builder, "schemas", {}).get(input_schema, {}))
    hints = _hints(input_schema)
    return None, {key: hints.get(key, Any) for key in keys}


def _hints(cls: Any) -> dict[str, Any]:
    try:
        return get_type_hints(cls) if cls is not None else {}
    except Exception:
        return {}


def _check_field(hint: Any, value: Any) -> None:
    """``value`` against one key's type hint; a type pydantic cannot take is not checked (the graph still runs)."""
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(hint)
    except Exception:
        return
    adapter.validate_python(value)


def check_input(graph: Any, value: Any, *, field: str = "input") -> dict[str, Any]:
    """``value`` if it is an input of ``graph``, else ``InvalidInputError`` naming the field."""
    if not isinstance(value, dict):
        raise InvalidInputError(f"`{field}` must be an object of the graph's input keys.")
    schema, known = _input_fields(graph)
    for key in value:
        if key not in known:
            takes = ", ".join(sorted(known)) or "nothing"
            raise InvalidInputError(f"`{field}.{key}` is not an input of this graph (it takes: {takes}).")
    data = dict(value)
    for key in message_channels(graph) & set(data):
        try:
            data[key] = convert_to_messages(data[key] if isinstance(data[key], list) else [data[key]])
        except (ValueError, TypeError, NotImplementedError, KeyError):
            raise InvalidInputError(f"`{field}.{key}` must be a list of messages.") from None
    try:
        if schema is not None:
            schema.model_validate(data)
        else:
            for key, item in data.items():
                if key not in message_channels(graph):
                    try:
                        _check_field(known[key], item)
                    except ValidationError as exc:
                        raise InvalidInputError(_where(f"{field}.{key}", exc)) from None
    except ValidationError as exc:
        raise InvalidInputError(_where(field, exc)) from None
    return value


def check_context(graph: Any, value: Any, *, field: str = "context") -> dict[str, Any] | None:
    """``value`` if ``graph``'s context schema takes it, else ``InvalidInputError`` naming the field."""
    schema = getattr(graph, "context_schema", None)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(f"`{field}` must be an object.")
    if schema is None:
        if value:
            raise InvalidInputError(f"`{field}`: this graph takes no context.")
        return value
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            schema.model_validate(value)
        else:
            TypeAdapter(schema).validate_python(value)
    except ValidationError as exc:
        raise InvalidInputError(_where(field, exc)) from None
    except TypeError:  # a dataclass given unknown keyword arguments
        raise InvalidInputError(f"`{field}` does not fit this graph's context schema.") from None
    return value


def jsonschema_of(graph: Any, which: str) -> dict[str, Any] | None:
    """One of the graph's JSON schemas (``input``, ``output``, ``state``, ``context``); None if it has none. A
    state pydantic cannot take whole gets an input schema of the keys whose types it can write."""
    getters = {
        "context": "get_context_jsonschema",
        "state": "get_state_jsonschema",
        "input": "get_input_jsonschema",
        "output": "get_output_jsonschema",
    }
    getter = getattr(graph, getters[which], None)
    try:
        schema: dict[str, Any] | None = getter() if getter is not None else None
        return schema
    except Exception:  # a schema pydantic cannot express whole: the graph still runs
        if which != "input":
            return None
    properties: dict[str, Any] = {}
    for key, hint in _input_fields(graph)[1].items():
        try:
            properties[key] = TypeAdapter(hint).json_schema()
        except Exception:
            properties[key] = {}
    return {"type": "object", "properties": properties}
