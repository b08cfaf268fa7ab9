"""Branches: ``/v1/threads/{id}`` — edit a message, regenerate an answer, the current branch and its history,
switch branch, fork. (``chatplane.core.branches`` does the work; docs/branches.md describes the model.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from chatplane.agent import raise_if_unsuccessful
from chatplane.branch_schemas import (
    BranchMessage,
    BranchOut,
    BranchSwitch,
    ForkCreate,
    HistoryPage,
    MessageEdit,
    Regenerate,
    SiblingsOut,
    TurnOut,
)
from chatplane.core import UserServices
from chatplane.core import branches as core
from chatplane.messages import message_to_wire
from chatplane.runs import Run
from chatplane.schemas import Message, RunOut, ThreadOut
from chatplane.service.deps import AgentDep, CurrentUser, RunAllowedUser
from chatplane.service.routes.threads import _ERRORS, run_out, thread_out

router = APIRouter(prefix="/v1/threads", tags=["branches"])


def _message(item: core.BranchMessage) -> BranchMessage:
    siblings = SiblingsOut(**vars(item.siblings)) if item.siblings is not None else None
    return BranchMessage(message=message_to_wire(item.message), siblings=siblings)


async def _answer(mine: UserServices, run: Run, background: bool, response: Response) -> RunOut:
    if background:
        response.status_code = status.HTTP_202_ACCEPTED
        return run_out(run)
    last, answer = await mine.runs.outcome(run)
    if last is not None and last.type == "run_failed":
        raise_if_unsuccessful(last)
    return run_out(await mine.runs.get(run.run_id), Message(**answer) if answer else None)


@router.post(
    "/{thread_id}/messages/{message_id}/edit",
    response_model=RunOut,
    responses={202: {"model": RunOut, "description": "Accepted (background: true)"}, **_ERRORS},
)
async def edit_message(
    thread_id: str, message_id: str, body: MessageEdit, agent: AgentDep, user: RunAllowedUser, response: Response
) -> RunOut:
    """A new branch from just before the user message ``message_id``, with the new text, and its answer; the old
    branch stays (switch back with ``POST /v1/threads/{id}/branch``)."""
    mine = agent.for_user(user.id)
    run = await mine.branches.edit(
        thread_id, message_id, body.message, multitask=body.multitask, stream_tokens=body.background
    )
    return await _answer(mine, run, body.background, response)


@router.post(
    "/{thread_id}/messages/{message_id}/regenerate",
    response_model=RunOut,
    responses={202: {"model": RunOut, "description": "Accepted (background: true)"}, **_ERRORS},
)
async def regenerate(
    thread_id: str, message_id: str, body: Regenerate, agent: AgentDep, user: RunAllowedUser, response: Response
) -> RunOut:
    """Another answer to the turn of ``message_id`` (an answer or its user message), on a new branch."""
    mine = agent.for_user(user.id)
    run = await mine.branches.regenerate(thread_id, message_id, multitask=body.multitask, stream_tokens=body.background)
    return await _answer(mine, run, body.background, response)


@router.get("/{thread_id}/branch", response_model=BranchOut, responses=_ERRORS)
async def current_branch(thread_id: str, agent: AgentDep, user: CurrentUser) -> BranchOut:
    """The current branch, oldest first; a message with other versions says which it is of how many."""
    items = await agent.for_user(user.id).branches.current(thread_id)
    return BranchOut(messages=[_message(item) for item in items])


@router.post("/{thread_id}/branch", response_model=BranchOut, responses=_ERRORS)
async def switch_branch(thread_id: str, body: BranchSwitch, agent: AgentDep, user: CurrentUser) -> BranchOut:
    """Make the newest branch through ``message_id`` current: the next run sees it as its context."""
    mine = agent.for_user(user.id).branches
    await mine.switch(thread_id, body.message_id, multitask=body.multitask)
    return BranchOut(messages=[_message(item) for item in await mine.current(thread_id)])


@router.get("/{thread_id}/history", response_model=HistoryPage, responses=_ERRORS)
async def history(
    thread_id: str,
    agent: AgentDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,9}$")] = None,
) -> HistoryPage:
    """The current branch's turns, newest first, ``limit`` at a time."""
    turns = list(reversed(await agent.for_user(user.id).branches.turns(thread_id)))
    start = int(cursor or 0)
    page = turns[start : start + limit]
    next_cursor = str(start + limit) if start + limit < len(turns) else None
    out = [TurnOut(index=t.index, messages=[_message(m) for m in t.messages]) for t in page]
    return HistoryPage(turns=out, next_cursor=next_cursor)


@router.post("/{thread_id}/fork", response_model=ThreadOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def fork(thread_id: str, body: ForkCreate, agent: AgentDep, user: CurrentUser) -> ThreadOut:
    """A new thread whose history is this one's current branch up to ``message_id``'s turn (or all of it): it refers
    to the stored messages, it copies none."""
    new = await agent.for_user(user.id).branches.fork(thread_id, body.message_id, title=body.title)
    return thread_out(new)
