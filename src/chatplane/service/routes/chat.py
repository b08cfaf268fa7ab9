"""The seed's endpoints: ``POST /chat``, ``POST /reset``, ``GET /history/{session_id}`` (+ ``POST /chat/stream``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from chatplane.core.checks import check_message, default_session_id
from chatplane.errors import ChatplaneError, ForbiddenError
from chatplane.events import Retraction
from chatplane.schemas import ID_PATTERN, ChatRequest, ChatResponse, ErrorBody, HistoryResponse, ResetResponse
from chatplane.service.auth import User, session_thread_id
from chatplane.service.deps import AgentDep, CurrentUser, IdempotencyKeyHeader, RunAllowedUser, SettingsDep

router = APIRouter(tags=["chat"])

SessionPath = Annotated[str, Path(pattern=ID_PATTERN, description="The session's id.")]
SessionQuery = Annotated[str, Query(pattern=ID_PATTERN, description="The session's id.")]

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 413, 422, 429, 502, 503, 504)
}


def check_user_id(user_id: str, user: User) -> None:
    """The seed's ``user_id`` field must name the authenticated user (any id on a local development server)."""
    if user.via != "local" and user_id != user.id:
        raise ForbiddenError("user_id must be your own user id (the one your credentials belong to).")


@router.post("/chat", response_model=ChatResponse, responses=_ERRORS, summary="Send a message, get the answer")
async def chat(
    body: ChatRequest, agent: AgentDep, user: RunAllowedUser, idempotency_key: IdempotencyKeyHeader = None
) -> ChatResponse:
    check_user_id(body.user_id, user)
    session_id = body.session_id or default_session_id(body.user_id)
    answer = await agent.achat(
        body.user_id,
        body.message,
        session_id,
        thread_id=session_thread_id(user, session_id),
        owner=user.id,
        agent=body.agent,
        idempotency_key=idempotency_key,
    )
    return ChatResponse(response=answer, session_id=session_id)


@router.post(
    "/chat/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
    summary="Send a message, stream the answer (SSE)",
)
async def chat_stream(
    body: ChatRequest,
    agent: AgentDep,
    user: RunAllowedUser,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> EventSourceResponse:
    """Server-sent events: ``token`` ``{"text"}`` as the answer is generated, then ``done`` ``{"response",
    "session_id"}``, or ``error`` ``{"error": {"code", "message"}}`` if the model fails midway. ``retract``
    ``{"dropped": n}``: a model attempt failed and is tried again — drop the last n characters received; the
    retry's text follows. ``done`` holds the answer without them."""
    check_user_id(body.user_id, user)
    check_message(body.message, settings.max_message_chars)  # refuse bad input with a 422 before streaming
    session_id = body.session_id or default_session_id(body.user_id)
    thread_id = session_thread_id(user, session_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        parts: list[str] = []
        try:
            async for text in agent.astream_chat(
                body.user_id,
                body.message,
                session_id,
                thread_id=thread_id,
                owner=user.id,
                agent=body.agent,
                idempotency_key=idempotency_key,
            ):
                if isinstance(text, Retraction):
                    kept = "".join(parts)
                    parts[:] = [kept[: len(kept) - text.dropped]]
                    yield ServerSentEvent(json.dumps({"dropped": text.dropped}), event="retract")
                    continue
                parts.append(text)
                yield ServerSentEvent(json.dumps({"text": text}), event="token")
        except ChatplaneError as exc:
            error = {"error": {"code": exc.code, "message": exc.message}}
            yield ServerSentEvent(json.dumps(error), event="error")
            return
        yield ServerSentEvent(json.dumps({"response": "".join(parts), "session_id": session_id}), event="done")

    return EventSourceResponse(events(), ping=15)


@router.post("/reset", response_model=ResetResponse, responses=_ERRORS, summary="Delete a session")
async def reset(session_id: SessionQuery, agent: AgentDep, user: CurrentUser) -> ResetResponse:
    await agent.areset_session(
        session_id, thread_id=session_thread_id(user, session_id), owner=user.id, missing_ok=False
    )
    return ResetResponse(message="Session reset")


@router.get("/history/{session_id}", response_model=HistoryResponse, responses=_ERRORS, summary="A session's messages")
async def history(session_id: SessionPath, agent: AgentDep, user: CurrentUser) -> HistoryResponse:
    messages = await agent.aget_history(
        session_id, thread_id=session_thread_id(user, session_id), owner=user.id, missing_ok=False
    )
    return HistoryResponse(session_id=session_id, messages=[m.text for m in messages])
