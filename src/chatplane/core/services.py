"""What the owner-scoped services share (``chatplane.core``), built once by ``ProductionAgent.start``."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig

from chatplane.agents.catalog import GraphCatalog
from chatplane.config import Settings
from chatplane.failures import as_chatplane_error
from chatplane.runs import RunManager
from chatplane.storage.engine import Storage
from chatplane.storage.transcript import merge_history


@dataclass
class Services:
    """What the owner-scoped services share. ``graph_of``: an agent's graph (with the checkpointer);
    ``stateless_graph_of``: the same without one; ``agents``: the agent kinds a thread may talk to."""

    settings: Settings
    storage: Storage
    runs: RunManager
    agents: Collection[str]
    graph_of: Callable[[str], Any]
    stateless_graph_of: Callable[[str], Any]
    catalog: GraphCatalog
    """The graphs served (their ids, descriptions, and what their assistants may set)."""

    async def history(self, thread_id: str, agent: str) -> list[AnyMessage]:
        """A thread's messages, oldest first: the transcript, then the working state's not archived yet."""
        try:
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            state = await self.graph_of(agent).aget_state(config)
            working = list(state.values.get("messages", [])) if state.values else []
            return merge_history(await self.storage.transcript.messages(thread_id), working)
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {thread_id}") from exc

    async def delete_thread(self, thread_id: str) -> None:
        """Everything of a thread, whoever owns it: runs stopped, checkpoints, run records, the registry row."""
        await self.runs.cancel_thread(thread_id)
        await self.storage.threads.purge(self.storage.checkpointer, thread_id)
