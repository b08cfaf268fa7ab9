"""A thread's LangGraph state (``ThreadStates``): the latest, at a checkpoint, its history, and updating it — for
any graph, through the graph the thread's assistant runs.

A messages graph of chatplane's keeps only the current run's messages in its checkpoint and earlier turns in the
transcript (``chatplane.storage.transcript``): the latest state's ``messages`` is the whole conversation of the
current branch, the transcript's rows as stored then the working state's messages not archived yet, as JSON
(``latest``). A past checkpoint's values are what it holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from langgraph.types import Command, Send, StateUpdate

from chatplane.core.services import Services
from chatplane.errors import ChatplaneError, InvalidInputError, ThreadBusyError, ThreadNotFoundError
from chatplane.failures import as_chatplane_error
from chatplane.runs.jsonable import to_jsonable
from chatplane.storage.branches import copy_branches
from chatplane.storage.threads import Thread

_CHECKPOINT_KEYS = ("checkpoint_id", "checkpoint_ns", "checkpoint_map", "thread_id")


def checkpoint_config(thread_id: str, checkpoint: Mapping[str, Any] | None = None) -> RunnableConfig:
    """The LangGraph config of ``thread_id`` at ``checkpoint`` (a LangGraph ``Checkpoint``; none: the latest)."""
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    for key, value in (checkpoint or {}).items():
        if key not in _CHECKPOINT_KEYS:
            raise InvalidInputError(f"`checkpoint.{key}` is not a checkpoint field.")
        if key == "thread_id" and value not in (None, thread_id):
            raise InvalidInputError("`checkpoint.thread_id` names another thread.")
        if key != "thread_id" and value is not None:
            configurable[key] = value
    return {"configurable": configurable}


def as_command(command: Mapping[str, Any]) -> Command[Any]:
    """A LangGraph API ``Command`` body (``update``, ``goto``: a node, a ``Send`` as ``{"node", "input"}``, or a
    list of them; ``resume``) as LangGraph's ``Command``, as langgraph-api maps it."""
    goto = command.get("goto")
    gotos = goto if isinstance(goto, list) else [goto] if goto is not None else []
    if not all(isinstance(g, str) or (isinstance(g, dict) and isinstance(g.get("node"), str)) for g in gotos):
        raise InvalidInputError('`command.goto` must name nodes, or be sends: {"node", "input"}.')
    update = command.get("update")
    if isinstance(update, list) and all(
        isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str) for pair in update
    ):
        update = [tuple(pair) for pair in update]
    sends = [g if isinstance(g, str) else Send(g["node"], g.get("input")) for g in gotos]
    return Command(update=update, goto=sends, resume=command.get("resume"))


class ThreadStates:
    """``owner``'s threads' LangGraph state (the thread itself is checked by the caller: pass one of theirs)."""

    def __init__(self, services: Services, owner: str) -> None:
        self._services = services
        self.owner = owner

    async def _graph(self, thread: Thread) -> tuple[Any, bool]:
        target = await self._services.targets.of(thread.agent, self.owner, model=thread.model)
        return target.graph, target.served.has_messages

    async def latest(self, thread: Thread, *, subgraphs: bool = False) -> tuple[dict[str, Any], Any]:
        """The latest values, as JSON (``to_jsonable``), and LangGraph's ``StateSnapshot``. A messages graph's
        ``messages`` are its whole conversation: the transcript's (read as stored, never built into messages:
        every LangGraph ``wait`` answers with them), then the working state's not archived yet."""
        try:
            graph, has_messages = await self._graph(thread)
            snapshot = await graph.aget_state(checkpoint_config(thread.thread_id), subgraphs=subgraphs)
            return await self.as_json(thread.thread_id, snapshot.values or {}, has_messages), snapshot
        except ChatplaneError:
            raise
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {thread.thread_id}") from exc

    async def as_json(self, thread_id: str, values: Mapping[str, Any], has_messages: bool) -> dict[str, Any]:
        """``values`` of the thread's (its latest, or a run's final ones) as JSON; with ``has_messages`` (a chatplane
        messages graph), ``messages`` is the whole conversation: the transcript's, then those of ``values`` not
        archived yet."""
        values = dict(values)
        working = list(values.pop("messages", None) or [])
        out: dict[str, Any] = to_jsonable(values)
        if has_messages:
            try:
                archived = await self._services.storage.transcript.as_json(thread_id)
            except Exception as exc:
                raise as_chatplane_error(exc, f"thread {thread_id}") from exc
            if archived or working:
                known = {m.get("id") for m in archived}
                out["messages"] = [*archived, *(to_jsonable(m) for m in working if m.id not in known)]
        elif working:
            out["messages"] = to_jsonable(working)
        return out

    async def at(self, thread: Thread, checkpoint: Mapping[str, Any], *, subgraphs: bool = False) -> Any:
        """The ``StateSnapshot`` at ``checkpoint`` (404 if the thread has no such checkpoint)."""
        graph, _ = await self._graph(thread)
        config = checkpoint_config(thread.thread_id, checkpoint)
        if await self._services.storage.checkpointer.aget_tuple(config) is None:
            raise ThreadNotFoundError("The thread has no such checkpoint.")
        return await graph.aget_state(config, subgraphs=subgraphs)

    async def history(
        self,
        thread: Thread,
        *,
        limit: int = 10,
        before: Mapping[str, Any] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Any]:
        """The thread's ``StateSnapshot``s, newest first: ``limit`` of them, from ``checkpoint`` (or the latest),
        older than ``before``, whose metadata has each key of ``metadata``."""
        graph, _ = await self._graph(thread)
        config = checkpoint_config(thread.thread_id, checkpoint)
        before_config = checkpoint_config(thread.thread_id, before) if before else None
        return [
            snapshot
            async for snapshot in graph.aget_state_history(
                config, filter=metadata or None, before=before_config, limit=limit
            )
        ]

    async def update(
        self,
        thread: Thread,
        values: dict[str, Any] | list[Any] | None,
        *,
        as_node: str | None = None,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> RunnableConfig:
        """LangGraph's ``update_state``: ``values`` written as if ``as_node`` had returned them, on the latest
        checkpoint or on ``checkpoint`` (a fork). Refused while a run is active on the thread (409)."""
        config = checkpoint_config(thread.thread_id, checkpoint)

        async def write(graph: Any) -> RunnableConfig:
            if as_node is not None and as_node not in getattr(graph, "nodes", {}):
                raise InvalidInputError(f"`as_node`: the graph has no node {as_node!r}.")
            return await graph.aupdate_state(config, values, as_node=as_node)  # type: ignore[no-any-return]

        return await self._write(thread, write)

    async def bulk_update(self, thread: Thread, supersteps: Sequence[Sequence[tuple[Any, str]]]) -> RunnableConfig:
        """LangGraph's ``bulk_update_state`` (a thread created with ``supersteps``): the supersteps in order, each
        a checkpoint; each of its updates ``(values or a Command, as_node)`` written as if that node returned it
        (``__input__``: as the graph's input; ``__copy__``: the latest checkpoint again). 409 while a run is
        active on the thread."""
        steps = [[StateUpdate(values, as_node) for values, as_node in step] for step in supersteps]

        async def write(graph: Any) -> RunnableConfig:
            return await graph.abulk_update_state(checkpoint_config(thread.thread_id), steps)  # type: ignore[no-any-return]

        return await self._write(thread, write)

    async def _write(self, thread: Thread, write: Callable[[Any], Awaitable[RunnableConfig]]) -> RunnableConfig:
        """``write`` to the thread's graph's state, unless a run is active on it (409); an update that does not
        suit the graph is a 422."""
        if await self._services.storage.runs.active(thread.thread_id):
            raise ThreadBusyError("The thread has an active run: wait for it, or cancel it, before updating its state.")
        graph, _ = await self._graph(thread)
        try:
            config = await write(graph)
        except ChatplaneError:
            raise
        except (ValueError, KeyError, TypeError, InvalidUpdateError) as exc:  # an ambiguous update, a list of values …
            raise InvalidInputError(f"The update does not suit the graph ({type(exc).__name__}).") from exc
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {thread.thread_id}") from exc
        await self._services.storage.threads.touch(thread.thread_id)
        return config

    async def copy(self, thread: Thread) -> Thread:
        """A new thread of the owner's with everything of ``thread``'s: its graph, title, metadata and model, every
        checkpoint (history, subgraphs' and pending writes included) and its transcript. Refused while a run is
        active on it (409): a copy is of a state that holds still."""
        storage = self._services.storage
        if await storage.runs.active(thread.thread_id):
            raise ThreadBusyError("The thread has an active run: wait for it, or cancel it, before copying it.")
        new = await storage.threads.create(
            self.owner, thread.agent, title=thread.title, metadata=thread.metadata, model=thread.model
        )
        saver = storage.checkpointer
        saved = [t async for t in saver.alist({"configurable": {"thread_id": thread.thread_id}})]
        for item in reversed(saved):  # oldest first: each after its parent
            configurable = item.config["configurable"]
            target: dict[str, Any] = {
                "thread_id": new.thread_id,
                "checkpoint_ns": configurable.get("checkpoint_ns", ""),
            }
            if item.parent_config:
                target["checkpoint_id"] = item.parent_config["configurable"]["checkpoint_id"]
            stored = await saver.aput(
                {"configurable": target}, item.checkpoint, item.metadata, item.checkpoint["channel_versions"]
            )
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in item.pending_writes or ():
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                await saver.aput_writes(stored, writes, task_id)
        await storage.db.execute(
            "INSERT INTO chatplane_messages (thread_id, seq, message_id, tokens, data, created_at, parent_seq) "
            "SELECT %s, seq, message_id, tokens, data, created_at, parent_seq FROM chatplane_messages "
            "WHERE thread_id = %s",
            (new.thread_id, thread.thread_id),
        )
        await copy_branches(storage.db, thread.thread_id, new.thread_id)  # its branches, the current one current
        return new
