"""Owner-scoped services: what every way in calls to reach threads, runs and assistants.

Routes, the WebSocket, the OpenAI-compatible endpoint, the CLI and ``ProductionAgent`` reach them through
``UserServices(services, owner)`` (``ProductionAgent.for_user``): every method is scoped to that owner — another
user's thread, run or assistant is indistinguishable from a missing one — and a message is submitted in one place
(``RunService.send``).

==============  ===============================================================================================
``services``    ``Services``: what they share (storage, runs, the agents' graphs, settings)
``threads``     ``ThreadService``: create, list, read, rename, delete a user's threads; their messages and runs
``runs``        ``RunService``: send a message, read, cancel, retry, resume and follow a user's runs
``assistants``  ``AssistantService``: the graphs' defaults and a user's assistants: create, resolve, search,
                update (a new version), delete, list versions, pin one
``thread_views`` ``ThreadViews``: threads as the LangGraph API sees them — created with a chosen id, with status,
                latest values and interrupts, searched by metadata, values and status; a thread's graph fixed at
                its first run (``bind``)
``thread_state`` ``ThreadStates``: a thread's LangGraph state — latest, at a checkpoint, history, update
``thread_status`` a thread's status (idle, busy, interrupted, error) from its runs and latest checkpoint
``branches``    ``Branches``: a thread as a tree of turns — edit a message, regenerate an answer, switch branch, fork
``memories``    ``MemoryService``: a user's long-term store items: put, get, delete, search, list namespaces
``checks``      ids and messages, checked before anything is stored
==============  ===============================================================================================
"""

from chatplane.core.assistants import AssistantService
from chatplane.core.branches import Branches
from chatplane.core.memories import MemoryService
from chatplane.core.runs import RunService
from chatplane.core.services import Services
from chatplane.core.thread_views import ThreadViews
from chatplane.core.threads import ThreadService
from chatplane.storage.purge import PurgeReport, purge_owner


class UserServices:
    """``threads``, ``runs``, ``assistants`` and ``thread_views`` (the LangGraph API's), scoped to ``owner``."""

    def __init__(self, services: Services, owner: str) -> None:
        self.owner = owner
        self.threads = ThreadService(services, owner)
        self.runs = RunService(services, owner)
        self.assistants = AssistantService(services, owner)
        self.thread_views = ThreadViews(services, owner)
        self.branches = Branches(services, owner, self.runs)
        self._services = services

    async def purge(self) -> PurgeReport:
        """Delete everything the owner has stored (``chatplane.storage.purge``); their runs are stopped first."""
        services = self._services
        return await purge_owner(services.storage, self.owner, delete_thread=services.delete_thread)

    @property
    def memories(self) -> MemoryService:
        """The owner's long-term store items."""
        return MemoryService(self._services, self.owner)


__all__ = [
    "AssistantService",
    "MemoryService",
    "RunService",
    "Services",
    "ThreadService",
    "ThreadViews",
    "UserServices",
]
