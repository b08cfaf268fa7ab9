"""``DELETE /v1/users/me/data``: everything you have stored here, deleted in one call (``chatplane.storage.purge``)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from chatplane.schemas import ErrorBody
from chatplane.service.deps import AgentDep, CurrentUser

router = APIRouter(prefix="/v1/users", tags=["users"])
_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (401, 429, 503)}


class PurgeResult(BaseModel):
    user: str
    deleted: dict[str, int] = Field(
        description="How many of each were deleted: threads (with their messages, checkpoints and runs), runs "
        "(stateless ones), assistants, idempotency_keys, items (long-term memories)."
    )


@router.delete("/me/data", response_model=PurgeResult, responses=_ERRORS)
async def purge_my_data(agent: AgentDep, user: CurrentUser) -> PurgeResult:
    """Delete every thread (messages, checkpoints, runs, usage), assistant, idempotency key and memory of yours.
    Your API keys stay."""
    report = await agent.for_user(user.id).purge()
    return PurgeResult(user=user.id, deleted=report.as_dict())
