"""``AsyncClient``'s methods for a thread's branches: edit a message, regenerate an answer, switch branch,
history, fork."""

from __future__ import annotations

from typing import Any

import httpx

from chatplane.branch_schemas import BranchOut, HistoryPage
from chatplane.client._base import (
    ClientBase,
)
from chatplane.schemas import (
    Multitask,
    RunOut,
    ThreadOut,
)


class AsyncBranchesMethods(ClientBase):
    """Mixed into ``AsyncClient``, which sends the requests."""

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    # --- branches: edit, regenerate, switch, history, fork (docs/branches.md) ---------------------------------------
    async def edit_message(
        self,
        thread_id: str,
        message_id: str,
        message: str,
        *,
        multitask: Multitask = "reject",
        background: bool = False,
    ) -> RunOut:
        """A new branch from just before the user message ``message_id``, with ``message`` in its place; waits for the
        answer (``background``: returns the accepted run at once). The old branch stays."""
        body = {"message": message, "multitask": multitask, "background": background}
        url = f"/v1/threads/{thread_id}/messages/{message_id}/edit"
        return self._parse(await self._request("POST", url, json=body), RunOut)

    async def regenerate(
        self, thread_id: str, message_id: str, *, multitask: Multitask = "reject", background: bool = False
    ) -> RunOut:
        """Another answer to the turn of ``message_id`` (an answer, or its user message), on a new branch."""
        body = {"multitask": multitask, "background": background}
        url = f"/v1/threads/{thread_id}/messages/{message_id}/regenerate"
        return self._parse(await self._request("POST", url, json=body), RunOut)

    async def branch(self, thread_id: str) -> BranchOut:
        """The current branch, oldest first; a message with other versions carries ``siblings`` (index, count)."""
        return self._parse(await self._request("GET", f"/v1/threads/{thread_id}/branch"), BranchOut)

    async def switch_branch(self, thread_id: str, message_id: str, *, multitask: Multitask = "reject") -> BranchOut:
        """Make the newest branch through ``message_id`` (on any branch) current; the branch as it is then."""
        body = {"message_id": message_id, "multitask": multitask}
        return self._parse(await self._request("POST", f"/v1/threads/{thread_id}/branch", json=body), BranchOut)

    async def thread_history(self, thread_id: str, *, limit: int = 20, cursor: str | None = None) -> HistoryPage:
        """The current branch's turns, newest first, a page at a time."""
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        url = f"/v1/threads/{thread_id}/history"
        return self._parse(await self._request("GET", url, params=params), HistoryPage)

    async def fork_thread(
        self, thread_id: str, *, message_id: str | None = None, title: str | None = None
    ) -> ThreadOut:
        """A new thread with this one's current branch up to ``message_id``'s turn (or all of it), by reference."""
        body = {k: v for k, v in {"message_id": message_id, "title": title}.items() if v is not None}
        return self._parse(await self._request("POST", f"/v1/threads/{thread_id}/fork", json=body), ThreadOut)
