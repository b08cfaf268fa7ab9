"""A run's events → the thread protocol's ``Event``s (``langchain_protocol``), each with its ``seq`` on the thread.

==================  ===========================================================================================
chatplane event     protocol events (``params: {namespace, timestamp, data}``)
==================  ===========================================================================================
``run_started``     ``lifecycle`` ``started`` (``graph_name``: the assistant)
``run_resumed``     ``lifecycle`` ``running``
``values``          ``values`` (the state)
``updates``         ``updates`` ``{node, values}``, one per node
``messages``        ``messages``: ``message-start`` … ``message-finish`` (``protocol_messages``)
``custom``          ``custom`` ``{payload}``
``tool_call``       ``tools`` ``tool-started``; ``tool_result``: ``tool-finished`` or ``tool-error``
``interrupt``       ``input.requested`` ``{interrupt_id, payload, value}`` per request, then ``lifecycle``
                    ``interrupted``
``run_completed``   ``lifecycle`` ``completed``; ``run_failed``: ``failed`` (with ``error``); ``run_cancelled``:
                    ``failed`` (``error: "cancelled"``)
==================  ===========================================================================================

``seq``: ``ordinal · 2³² + event id · 64 + k`` — the run's place among the thread's runs (oldest first, from 1), the
chatplane event's id within the run, the place of the protocol event among those it gives. It grows along the
thread, across runs and across a resumed run's pauses, and is the same on every connection: a client that resumes
``since`` a seq gets every event after it exactly once. ``event_id`` is the seq as a string.
"""

from __future__ import annotations

import time
from typing import Any

from chatplane.events import RunEvent
from chatplane.runs.events import OUTSIDE_THE_LOG
from chatplane.service.langgraph.protocol_messages import MessageTranslator

Event = dict[str, Any]
RUN_BITS = 32
_PER_EVENT = 64
_LAST_ID = (1 << RUN_BITS) // _PER_EVENT - 1
"""The id an event read from the run's record is placed at (``OUTSIDE_THE_LOG``): after every other of the run."""


def seq_of(ordinal: int, event_id: int, k: int) -> int:
    return (ordinal << RUN_BITS) + min(event_id, _LAST_ID) * _PER_EVENT + min(k, _PER_EVENT - 1)


def split_seq(seq: int) -> tuple[int, int]:
    """``seq`` → (the run's ordinal, the chatplane event id it was made of)."""
    return seq >> RUN_BITS, (seq & ((1 << RUN_BITS) - 1)) // _PER_EVENT


class ProtocolTranslator:
    """One run's events → protocol events. ``ordinal``: the run's place on its thread (from 1)."""

    def __init__(self, run_id: str, ordinal: int, graph_name: str) -> None:
        self.run_id = run_id
        self.ordinal = ordinal
        self.graph_name = graph_name
        self.messages = MessageTranslator(run_id)

    def events(self, event: RunEvent) -> list[Event]:
        event_id = _LAST_ID if event.id == OUTSIDE_THE_LOG else event.id
        out: list[Event] = []
        for k, (method, namespace, data) in enumerate(self._named(event)):
            seq = seq_of(self.ordinal, event_id, k)
            params = {"namespace": namespace, "timestamp": int(time.time() * 1000), "data": data}
            out.append({"type": "event", "event_id": str(seq), "seq": seq, "method": method, "params": params})
        return out

    def _named(self, event: RunEvent) -> list[tuple[str, list[str], Any]]:
        data = event.data
        namespace = [str(n) for n in data.get("namespace") or ()]
        kind = event.type
        if kind == "run_started":
            return [_lifecycle("started", graph_name=self.graph_name)]
        if kind == "run_resumed":
            return [_lifecycle("running", graph_name=self.graph_name)]
        if kind in ("values", "custom"):
            payload = data.get("data")
            return [(kind, namespace, payload if kind == "values" else {"payload": payload})]
        if kind == "updates":
            updates = data.get("data")
            if not isinstance(updates, dict):
                return []
            return [
                ("updates", namespace, {"node": n, "values": v}) for n, v in updates.items() if n != "__interrupt__"
            ]
        if kind == "messages":
            return [("messages", ns, d) for ns, d in self.messages.part(namespace, data.get("data"))]
        if kind == "retract":
            failed = self.messages.fail(str(data.get("message_id") or ""), "the model attempt failed; it is retried")
            return [("messages", ns, d) for ns, d in failed]
        if kind in ("tool_call", "tool_result"):
            return [("tools", [], _tool(kind, data))]
        return self._end(kind, data)

    def _end(self, kind: str, data: dict[str, Any]) -> list[tuple[str, list[str], Any]]:
        """A pause or the run's end: what messages are open end first."""
        if kind not in ("interrupt", "run_completed", "run_failed", "run_cancelled"):
            return []
        out: list[tuple[str, list[str], Any]] = [("messages", ns, d) for ns, d in self.messages.finish_all()]
        if kind == "interrupt":
            asked_ids: set[str] = set()
            for request in data.get("requests") or ():
                if str(request.get("id")) in asked_ids:
                    continue  # an interrupt in a subgraph is reported by the subgraph and by its parent
                asked_ids.add(str(request.get("id")))
                value = request.get("value")
                asked = {"interrupt_id": str(request.get("id")), "payload": value, "value": value}
                out.append(("input.requested", [], asked))
            return [*out, _lifecycle("interrupted")]
        if kind == "run_completed":
            return [*out, _lifecycle("completed")]
        if kind == "run_failed":
            error = data.get("error") or {}
            return [*out, _lifecycle("failed", error=str(error.get("message") or error.get("code") or "failed"))]
        return [*out, _lifecycle("failed", error="cancelled")]


def _lifecycle(status: str, **extra: str) -> tuple[str, list[str], Any]:
    return "lifecycle", [], {"event": status, **extra}


def _tool(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    if kind == "tool_call":
        return {
            "event": "tool-started",
            "tool_call_id": str(data.get("id")),
            "tool_name": data.get("name") or "",
            "input": data.get("args"),
        }
    call_id = str(data.get("tool_call_id"))
    if data.get("status") == "error":
        return {"event": "tool-error", "tool_call_id": call_id, "message": str(data.get("content") or "")}
    return {"event": "tool-finished", "tool_call_id": call_id, "output": data.get("content")}
