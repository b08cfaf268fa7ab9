"""OpenAI-compatible endpoints: ``GET /v1/models`` (the agents), ``GET /v1/models/{id}`` and
``POST /v1/chat/completions``.

Point any OpenAI client or chat front-end at ``http://host:port/v1`` with a chatplane API key as its key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from chatplane.agent import ProductionAgent, raise_if_unsuccessful
from chatplane.assistant_schemas import MAX_PAGE
from chatplane.errors import AgentMismatchError, ChatplaneError, ModelNotFoundError
from chatplane.events import EventType, RunEvent
from chatplane.openai_compat import (
    MODEL_PREFIX,
    ChatCompletionRequest,
    CompletionIds,
    OpenAIErrorBody,
    agent_of,
    check_request,
    last_user_text,
    openai_error,
    to_langchain,
)
from chatplane.service.auth import User
from chatplane.service.deps import AgentDep, CurrentUser, IdempotencyKeyHeader, RunAllowedUser, SettingsDep

router = APIRouter(prefix="/v1", tags=["openai"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": OpenAIErrorBody, "description": "OpenAI-style error"}
    for code in (400, 401, 403, 404, 409, 413, 429, 502, 503, 504)
}

Events = AsyncIterator[tuple[EventType, dict[str, Any]]]


def _chat_graphs(agent: ProductionAgent) -> list[str]:
    """The graphs that keep messages: each is a model (``chatplane-chat`` …)."""
    return [served.graph_id for served in agent.services.catalog.all() if served.has_messages]


async def _own_assistants(agent: ProductionAgent, user: User) -> list[str]:
    """The caller's own assistants of graphs that keep messages: each is a model too (``chatplane-<id>``)."""
    catalog = agent.services.catalog
    mine = await agent.for_user(user.id).assistants.search(limit=MAX_PAGE)
    return [a.assistant_id for a in mine if not a.is_default and catalog.get(a.graph_id).has_messages]


async def _resolve(model: str, agent: ProductionAgent, user: User) -> str:
    """The graph or assistant ``model`` names (``chatplane-react``, ``react``, ``chatplane-<assistant id>``)."""
    kind = agent_of(model, _chat_graphs(agent))
    if kind is None:
        name = model.removeprefix(MODEL_PREFIX)
        kind = name if name in await _own_assistants(agent, user) else None
    if kind is None:
        raise ModelNotFoundError(f"No model {model!r}; GET /v1/models lists them.")
    return kind


def _model(name: str, owner: str = "chatplane") -> dict[str, Any]:
    return {"id": f"{MODEL_PREFIX}{name}", "object": "model", "created": 0, "owned_by": owner}


@router.get("/models", responses=_ERRORS)
async def list_models(user: CurrentUser, agent: AgentDep) -> dict[str, Any]:
    """The agents, as OpenAI models (``chatplane-chat``, ``chatplane-react``, ``chatplane-multi`` …), then your own
    assistants of them (``chatplane-<assistant id>``)."""
    data = [_model(name) for name in _chat_graphs(agent)]
    data += [_model(name, user.id) for name in await _own_assistants(agent, user)]
    return {"object": "list", "data": data}


@router.get("/models/{model}", responses=_ERRORS)
async def get_model(model: str, user: CurrentUser, agent: AgentDep) -> dict[str, Any]:
    """One agent (or assistant) as an OpenAI model (``chatplane-react``, or just ``react``); ``model_not_found``
    otherwise."""
    kind = await _resolve(model, agent, user)
    return _model(kind, "chatplane" if kind in _chat_graphs(agent) else user.id)


async def _thread_events(events: AsyncIterator[RunEvent]) -> Events:
    async for event in events:
        raise_if_unsuccessful(event)
        yield event.type, event.data


async def _events(
    body: ChatCompletionRequest,
    agent: ProductionAgent,
    user: User,
    thread_id: str | None,
    max_chars: int,
    idempotency_key: str | None = None,
) -> Events:
    kind = await _resolve(body.model, agent, user)
    mine = agent.for_user(user.id)
    if thread_id:  # stateful: the thread keeps the conversation; only the new message is sent
        thread = await mine.threads.get(thread_id)
        if thread.agent != kind:
            raise AgentMismatchError(f"That thread talks to {MODEL_PREFIX}{thread.agent}, not {body.model}.")
        text = last_user_text(body, max_chars)
        run = await mine.runs.send(
            thread_id, text, multitask="enqueue", stream_tokens=body.stream, idempotency_key=idempotency_key
        )
        return _thread_events(mine.runs.events(run))
    messages = to_langchain(body.messages, max_chars)
    return await mine.runs.stateless(kind, messages, stream_tokens=body.stream)


@router.post(
    "/chat/completions",
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}, "application/json": {}}}, **_ERRORS},
)
async def chat_completions(
    body: ChatCompletionRequest,
    agent: AgentDep,
    user: RunAllowedUser,
    settings: SettingsDep,
    x_chatplane_thread: Annotated[str | None, Header(description="Continue this chatplane thread.")] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Chat Completions, streaming or not. Stateless unless a thread is named (header ``X-Chatplane-Thread`` or
    ``metadata.chatplane_thread``). The agent's own tool calls stay inside; usage is the run's real token count.
    ``Idempotency-Key`` makes a stateful request safe to send again (a stateless one stores no message anyway)."""
    check_request(body, max_messages=settings.max_messages_per_request, max_output_tokens=settings.max_output_tokens)
    thread_id = x_chatplane_thread or (body.metadata or {}).get("chatplane_thread")
    thread = str(thread_id) if thread_id else None
    events = await _events(body, agent, user, thread, settings.max_message_chars, idempotency_key)
    ids = CompletionIds(body.model)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(_chunks(events, ids, include_usage), ping=settings.sse_ping_s)
    answer, usage = "", {}
    async for kind, data in events:
        if kind == "message":
            message = data["message"]
            if message["role"] == "assistant" and not message["tool_calls"] and message["content"]:
                answer = message["content"]
        elif kind == "run_completed":
            usage = data.get("usage", {})
    return JSONResponse(ids.completion(answer, usage))


async def _chunks(events: Events, ids: CompletionIds, include_usage: bool) -> AsyncIterator[ServerSentEvent]:
    def frame(payload: dict[str, Any]) -> ServerSentEvent:
        return ServerSentEvent(json.dumps(payload, ensure_ascii=False))

    yield frame(ids.chunk({"role": "assistant", "content": ""}))
    streamed: set[str | None] = set()
    try:
        async for kind, data in events:
            if kind == "token":
                streamed.add(data.get("message_id"))
                yield frame(ids.chunk({"content": data["text"]}))
            elif kind == "message":
                message = data["message"]
                if message["role"] == "assistant" and message["content"] and message["id"] not in streamed:
                    yield frame(ids.chunk({"content": message["content"]}))  # a model that did not stream
            elif kind == "run_completed":
                yield frame(ids.chunk({}, finish_reason="stop"))
                if include_usage:
                    yield frame(ids.usage_chunk(data.get("usage", {})))
    except ChatplaneError as exc:
        yield ServerSentEvent(json.dumps(openai_error(exc.status, exc.code, exc.message)), event="error")
        return
    yield ServerSentEvent("[DONE]")
