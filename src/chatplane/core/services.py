"""What the owner-scoped services share (``chatplane.core``), built once by ``ProductionAgent.start``."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.store.base import BaseStore

from chatplane.agents.registry import GraphRegistry
from chatplane.config import Settings
from chatplane.core.targets import RunTargets
from chatplane.errors import ChatplaneError, ConfigError, NoMessagesError
from chatplane.failures import as_chatplane_error
from chatplane.runs import RunManager
from chatplane.storage.engine import Storage
from chatplane.storage.owner_store import OwnerStore, StoreLimits
from chatplane.storage.transcript import merge_history


@dataclass
class Services:
    """What the owner-scoped services share. ``targets``: what a thread's runs execute (its assistant's graph)."""

    settings: Settings
    storage: Storage
    runs: RunManager
    targets: RunTargets
    store: BaseStore | None = None
    """The long-term store of every user (``chatplane.storage.items``); each sees theirs through ``store_for``."""
    store_limits: StoreLimits = field(default_factory=StoreLimits)

    def store_for(self, owner: str) -> OwnerStore:
        """``owner``'s view of the store (what their routes and graphs use)."""
        if self.store is None:
            raise ConfigError("This server has no store.")
        return OwnerStore(self.store, owner, self.store_limits)

    @property
    def catalog(self) -> GraphRegistry:
        """The graphs served (their ids, descriptions, schemas, and what their assistants may set)."""
        return self.targets.graphs

    async def state(self, thread_id: str, agent: str, owner: str) -> tuple[dict[str, object], object]:
        """The thread's latest state: its values and LangGraph's ``StateSnapshot``."""
        try:
            target = await self.targets.of(agent, owner)
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            snapshot = await target.graph.aget_state(config)
            return dict(snapshot.values or {}), snapshot
        except ChatplaneError:
            raise
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {thread_id}") from exc

    async def history(self, thread_id: str, agent: str, owner: str) -> list[AnyMessage]:
        """A thread's messages, oldest first: the transcript, then the working state's not archived yet."""
        try:
            target = await self.targets.of(agent, owner)
            if not target.served.has_messages:
                raise NoMessagesError()
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            state = await target.graph.aget_state(config)
            working = list(state.values.get("messages", [])) if state.values else []
            return merge_history(await self.storage.transcript.messages(thread_id), working)
        except ChatplaneError:
            raise
        except Exception as exc:
            raise as_chatplane_error(exc, f"thread {thread_id}") from exc

    async def delete_thread(self, thread_id: str) -> None:
        """Everything of a thread, whoever owns it: runs stopped, checkpoints, run records, the registry row."""
        await self.runs.cancel_thread(thread_id)
        await self.storage.threads.purge(self.storage.checkpointer, thread_id)
