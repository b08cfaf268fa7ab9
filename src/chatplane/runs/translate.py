"""A graph's run as chatplane run events: ``StreamTranslator.run`` streams it (modes ``updates``, and ``messages``
and ``custom`` for tokens; subgraphs for agents that nest graphs) and turns LangGraph's stream parts into events.

A model attempt that fails after streaming tokens (and is retried, or handed to a fallback model) says so on the
``custom`` mode (``ATTEMPT_FAILED``, from ``ModelAttemptMiddleware``): its tokens are retracted (a ``retract``
event) and forgotten as the run's partial answer, so neither a client nor a cancel keeps them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from chatplane.events import ATTEMPT_FAILED, EventType, StreamMode
from chatplane.messages import message_to_wire
from chatplane.runs.jsonable import to_jsonable

Emitted = list[tuple[EventType, dict[str, Any]]]


def _mode_data(mode: str, data: Any) -> Any:
    """A LangGraph stream part's data as JSON; ``messages`` parts as ``[message, metadata]``."""
    if mode == "messages" and isinstance(data, tuple) and len(data) == 2:
        chunk, metadata = data
        return [to_jsonable(chunk), to_jsonable({k: v for k, v in metadata.items() if not k.startswith("__")})]
    return to_jsonable(data)


def _attempt_failed(part: tuple[Any, ...]) -> bool:
    return part[1] == "custom" and bool(part[2] == ATTEMPT_FAILED)


_EVENT = object()
"""The namespace slot of a part that is a callback event (``_parts_with_events``), not a LangGraph stream part."""


async def _parts_with_events(
    graph: Any, graph_input: Any, config: RunnableConfig, **options: Any
) -> AsyncGenerator[Any, None]:
    """The graph's stream parts, as ``astream`` gives them, and between them LangChain's callback events as
    ``(_EVENT, "events", event)`` — the ``events`` stream mode, which LangGraph's ``astream`` does not have:
    ``astream_events`` (v2) runs the graph, its root's ``on_chain_stream`` events carry the parts (what langgraph-api
    does for that mode); events tagged ``langsmith:hidden`` are left out, as there."""
    root: str | None = None
    events = graph.astream_events(graph_input, config, version="v2", **options)
    async with contextlib.aclosing(events):
        async for event in events:
            if root is None:
                root = event["run_id"]  # the graph's own ``on_chain_start`` comes first
            if event["event"] == "on_chain_stream" and event["run_id"] == root:
                yield event["data"]["chunk"]
            elif "langsmith:hidden" not in (event.get("tags") or ()):
                yield (_EVENT, "events", event)


@dataclass
class PartialMessage:
    """An answer being generated: what was streamed so far, by whom, from which graph node."""

    message_id: str | None
    agent: str | None
    node: str | None
    namespace: tuple[str, ...]
    text: str = ""


class StreamTranslator:
    def __init__(self) -> None:
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        self.agent: str | None = None
        self.partial: PartialMessage | None = None
        self.interrupts: list[Any] = []
        self.answer: AIMessage | None = None
        self._seen: set[str] = set()
        self._passed: frozenset[str] = frozenset()

    async def run(
        self,
        graph: Any,
        graph_input: Any,
        config: RunnableConfig,
        *,
        tokens: bool,
        nested: bool,
        modes: Sequence[StreamMode] = (),
        subgraphs: bool = False,
        **options: Any,
    ) -> AsyncGenerator[tuple[EventType, dict[str, Any]], None]:
        """Run ``graph`` and yield its events. ``tokens``: stream each token as the model writes it (LangGraph's
        ``messages`` mode; without it, LangChain asks the model for the whole answer at once). ``nested``: the graph
        runs other graphs (the multi agent's specialists) whose steps stream too — LangGraph's ``subgraphs``, which
        costs a task per streamed part, so only for agents that need it. ``modes``: LangGraph stream modes the
        caller asked for, each part passed on as an event of that name (``{"namespace", "data"}``); ``subgraphs``:
        with the parts of subgraphs. ``options`` go to ``astream``.

        LangGraph's ``version="v1"`` parts (tuples) are read here: ``"v2"`` wraps each in a dict and maps outputs
        to the state schema, work nothing here uses."""
        self._passed = frozenset(modes)
        own = ["messages", "updates", "custom"] if tokens else ["updates"]
        wanted = [*own, *(m for m in modes if m not in own and m != "events")]
        with_ns = nested or subgraphs
        if "events" in modes:
            parts = _parts_with_events(graph, graph_input, config, stream_mode=wanted, subgraphs=with_ns, **options)
        else:
            parts = graph.astream(graph_input, config, stream_mode=wanted, subgraphs=with_ns, **options)
        async with contextlib.aclosing(parts):  # closed now, not when collected: see RunManager._execute
            async for part in parts:
                part = part if with_ns or part[0] is _EVENT else ((), *part)
                if part[0] is _EVENT:
                    yield "events", {"namespace": [], "data": to_jsonable(part[2])}
                    continue
                if part[1] in self._passed and not _attempt_failed(part):
                    yield part[1], {"namespace": list(part[0] or ()), "data": _mode_data(part[1], part[2])}
                if part[1] in own:
                    for event in self.feed(part):
                        yield event

    def feed(self, part: tuple[Any, ...]) -> Emitted:
        """One stream part, ``(namespace, mode, data)``."""
        namespace, kind, data = part
        namespace = tuple(namespace or ())
        if kind == "messages":
            chunk, metadata = data if isinstance(data, tuple) else (None, None)
            return self._token(chunk, metadata or {}, namespace)
        if _attempt_failed(part):
            return self._retract(namespace)
        if kind == "updates" and isinstance(data, dict):
            out: Emitted = []
            for node, update in data.items():
                if node == "__interrupt__":
                    self.interrupts.extend(update or ())
                    continue
                # A node that wrote a channel more than once (the model node, when a middleware added a
                # ``Command``) reports a list of updates.
                for one in update if isinstance(update, list) else (update,):
                    if isinstance(one, dict):
                        for message in one.get("messages") or ():
                            if isinstance(message, BaseMessage):
                                out += self._message(message)
            return out
        return []

    def _switch_agent(self, agent: str | None) -> Emitted:
        if not agent or agent == self.agent:
            return []
        previous, self.agent = self.agent, agent
        return [("handoff", {"from": previous, "to": agent})] if previous is not None else []

    def _retract(self, namespace: tuple[str, ...]) -> Emitted:
        """A model attempt in ``namespace`` failed: what it streamed is void (the retry streams anew)."""
        partial = self.partial
        if partial is None or partial.namespace != namespace:
            return []
        self.partial = None
        return [("retract", {"message_id": partial.message_id, "agent": partial.agent})] if partial.text else []

    def _token(self, chunk: Any, metadata: dict[str, Any], namespace: tuple[str, ...]) -> Emitted:
        if not isinstance(chunk, AIMessageChunk):
            return []
        agent = metadata.get("lc_agent_name") or metadata.get("langgraph_node")
        out = self._switch_agent(agent)
        if self.partial is None or self.partial.message_id != chunk.id:
            self.partial = PartialMessage(chunk.id, agent, metadata.get("langgraph_node"), namespace)
        text = chunk.text
        if text:
            self.partial.text += text
            out.append(("token", {"text": text, "message_id": chunk.id, "agent": agent}))
        return out

    def _message(self, message: BaseMessage) -> Emitted:
        if message.id is not None:
            if message.id in self._seen:
                return []
            self._seen.add(message.id)
        out: Emitted = []
        if isinstance(message, AIMessage):
            out += self._switch_agent(message.name)
            if self.partial is not None and self.partial.message_id == message.id:
                self.partial = None
            usage: dict[str, Any] = dict(message.usage_metadata or {})
            for key in self.usage:
                self.usage[key] += int(usage.get(key) or 0)
            out.append(("message", {"message": message_to_wire(message).model_dump()}))
            for call in message.tool_calls:
                data = {"id": call.get("id"), "name": call["name"], "args": call["args"], "agent": self.agent}
                out.append(("tool_call", data))
            if not message.tool_calls and message.text:
                self.answer = message
        elif isinstance(message, ToolMessage):
            out.append(
                (
                    "tool_result",
                    {
                        "tool_call_id": message.tool_call_id,
                        "name": message.name,
                        "content": message.text,
                        "status": message.status,
                    },
                )
            )
        return out
