"""Pydantic models of a thread's branches (``/v1/threads/{id}/…``), shared by the service and the client."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chatplane.schemas import Message, Multitask

_MULTITASK_DOC = (
    "If the thread is busy: `reject` (409), `enqueue` (wait for the active run, then branch), `interrupt` (cancel it "
    "first). A run waiting for a human is a 409 whatever the policy."
)


class MessageEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, description="The user message's new text: a new branch from just before it.")
    multitask: Multitask = Field("reject", description=_MULTITASK_DOC)
    background: bool = Field(False, description="Answer 202 at once instead of waiting for the new answer.")


class Regenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    multitask: Multitask = Field("reject", description=_MULTITASK_DOC)
    background: bool = Field(False, description="Answer 202 at once instead of waiting for the new answer.")


class BranchSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(
        min_length=1, max_length=200, description="A message on any branch: the newest branch through it is current."
    )
    multitask: Multitask = Field("reject", description=_MULTITASK_DOC)


class ForkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str | None = Field(
        None, max_length=200, description="Fork up to the end of this message's turn (default: the whole branch)."
    )
    title: str | None = Field(None, max_length=200, description="The new thread's title (default: the source's).")


class SiblingsOut(BaseModel):
    index: int = Field(description="This version's place among them, 0-based (show it as `index + 1 / count`).")
    count: int
    message_ids: list[str] = Field(description="The first message of each version, oldest first: switch to one.")


class BranchMessage(BaseModel):
    message: Message
    siblings: SiblingsOut | None = Field(None, description="Only on a message with other versions.")


class BranchOut(BaseModel):
    messages: list[BranchMessage] = Field(description="The current branch, oldest first.")


class TurnOut(BaseModel):
    index: int = Field(description="0: the thread's first turn.")
    messages: list[BranchMessage]


class HistoryPage(BaseModel):
    turns: list[TurnOut] = Field(description="The current branch's turns, newest first.")
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next (older) page.")
