"""chatplane's objects as the LangGraph API's wire dicts, field for field as ``langgraph_sdk.schema`` types them
(``Assistant``, ``AssistantVersion``, ``Thread``, ``ThreadState``, ``Checkpoint``, ``Interrupt``).

Timestamps are ISO 8601 strings in UTC, as LangGraph Platform sends them; values go through ``to_jsonable`` (a
message is its ``model_dump()``), so what a graph keeps reaches the client as LangGraph's own server would send it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from chatplane.runs.jsonable import to_jsonable
from chatplane.storage.assistants import Assistant
from chatplane.storage.threads import Thread


def iso(timestamp: float) -> str:
    """A chatplane timestamp (seconds since the epoch) as LangGraph sends one."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def assistant_dict(assistant: Assistant) -> dict[str, Any]:
    """``Assistant``: the current version of an assistant (a graph's default has version 1, created at 0)."""
    return {
        "assistant_id": assistant.assistant_id,
        "graph_id": assistant.graph_id,
        "config": assistant.config,
        "context": assistant.context,
        "created_at": iso(assistant.created_at),
        "updated_at": iso(assistant.updated_at),
        "metadata": assistant.metadata,
        "version": assistant.version,
        "name": assistant.name,
        "description": assistant.description,
    }


def version_dict(assistant: Assistant) -> dict[str, Any]:
    """``AssistantVersion``: one version, ``created_at`` when that version was made."""
    out = assistant_dict(assistant)
    out["created_at"] = out.pop("updated_at")
    return out


def select(item: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    """Only ``fields`` of ``item`` (LangGraph's ``select``); all of it when none are named."""
    return {k: v for k, v in item.items() if k in fields} if fields else item


def interrupt_dict(interrupt: Any) -> dict[str, Any]:
    """``Interrupt``: ``{"value", "id"}``."""
    return {"value": to_jsonable(getattr(interrupt, "value", None)), "id": getattr(interrupt, "id", None)}


def checkpoint_dict(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``Checkpoint`` of a LangGraph config; None unless it names a checkpoint (LangGraph's own rule)."""
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    return {
        "thread_id": configurable["thread_id"],
        "checkpoint_ns": configurable.get("checkpoint_ns") or "",
        "checkpoint_id": configurable["checkpoint_id"],
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def state_dict(snapshot: Any, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``ThreadState`` of LangGraph's ``StateSnapshot`` (``values``: the snapshot's, or these — a messages graph's
    whole conversation); a subgraph's state, asked for with ``subgraphs``, nests in its task."""
    config = snapshot.config or {}
    parent = snapshot.parent_config
    return {
        "values": to_jsonable(dict(snapshot.values or {}) if values is None else values),
        "next": list(snapshot.next or ()),
        "tasks": [_task_dict(task) for task in snapshot.tasks or ()],
        "metadata": to_jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint_dict(config),
        "parent_checkpoint": checkpoint_dict(parent),
        "interrupts": [interrupt_dict(i) for i in snapshot.interrupts or ()],
        "checkpoint_id": (config.get("configurable") or {}).get("checkpoint_id"),  # LangGraph's deprecated fields
        "parent_checkpoint_id": (parent or {}).get("configurable", {}).get("checkpoint_id") if parent else None,
    }


def _task_dict(task: Any) -> dict[str, Any]:
    nested = task.state
    # A subgraph's StateSnapshot (asked for with ``subgraphs``), or else its config: a dict, which has ``values`` too.
    is_snapshot = nested is not None and not isinstance(nested, Mapping)
    return {
        "id": task.id,
        "name": task.name,
        "path": to_jsonable(task.path),
        "error": None if task.error is None else type(task.error).__name__,  # never an exception's text
        "interrupts": [interrupt_dict(i) for i in task.interrupts or ()],
        "checkpoint": to_jsonable(nested["configurable"]) if nested is not None and not is_snapshot else None,
        "state": state_dict(nested) if is_snapshot else None,
        "result": to_jsonable(getattr(task, "result", None)),
    }


def thread_interrupts(snapshot: Any) -> dict[str, list[dict[str, Any]]]:
    """The thread's ``interrupts`` as LangGraph reports them: ``{task_id: [Interrupt]}``, tasks that wait only."""
    return {task.id: [interrupt_dict(i) for i in task.interrupts] for task in snapshot.tasks or () if task.interrupts}


def thread_dict(thread: Thread, status: str, values: Any, interrupts: dict[str, Any]) -> dict[str, Any]:
    """``Thread``: its registry row, with the status, latest values and interrupts the caller worked out."""
    return {
        "thread_id": thread.thread_id,
        "created_at": iso(thread.created_at),
        "updated_at": iso(thread.updated_at),
        "metadata": thread.metadata,
        "status": status,
        "values": to_jsonable(values),
        "interrupts": interrupts,
    }


class ValuesResponse(JSONResponse):
    """A thread's values (``wait``, ``join``), already JSON-ready (``to_jsonable``): encoded once, by orjson — not
    checked and converted by FastAPI, then encoded by the standard library, on every turn of the LangGraph API."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # what orjson cannot hold (an integer past 64 bits): the standard library's way
            return super().render(content)
