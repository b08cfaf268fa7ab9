"""A2A's routes: the agent cards and each assistant's JSON-RPC endpoint (a2a-sdk's ``JsonRpcDispatcher``).

==========================================  ====================================================================
``GET /.well-known/agent-card.json``        the server's card (the default agent; every graph a skill), public:
                                            how a client learns where to talk and how to authenticate
``GET /a2a/{assistant}/.well-known/…``      an assistant's card (a graph id, or one of your assistants' ids)
``POST /a2a/{assistant}``                   JSON-RPC: ``SendMessage``, ``SendStreamingMessage``, ``GetTask``,
                                            ``CancelTask``, ``SubscribeToTask`` (A2A 1.0), and ``message/send``,
                                            ``message/stream``, ``tasks/get``, ``tasks/cancel``,
                                            ``tasks/resubscribe`` (A2A 0.3)
==========================================  ====================================================================

Every route but the server's card authenticates as the others do (401 without a credential, the rate limit); an
assistant that is not the caller's is the same 404 as a missing one. The dispatcher is built by the lifespan
(``a2a_dispatcher``) and reached through ``app.state``.
"""

from __future__ import annotations

from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from chatplane.agent import ProductionAgent
from chatplane.errors import AssistantNotFoundError, ChatplaneError
from chatplane.service.a2a.cards import PREFIX, agent_card, endpoint_name, server_card
from chatplane.service.a2a.handler import Caller, ChatplaneRequestHandler
from chatplane.service.deps import AgentDep, CurrentUser, SettingsDep
from chatplane.service.ratelimit import RateLimits
from chatplane.service.routes.assistants import AssistantPath
from chatplane.storage.assistants import Assistant

router = APIRouter(tags=["a2a"], include_in_schema=False)


def a2a_dispatcher(agent: ProductionAgent, limits: RateLimits) -> JsonRpcDispatcher:
    """The JSON-RPC dispatcher of every assistant's endpoint (A2A 1.0 methods, and 0.3's on the same URL)."""
    return JsonRpcDispatcher(
        ChatplaneRequestHandler(agent, limits), context_builder=_ContextBuilder(), enable_v0_3_compat=True
    )


class _ContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, with the caller the route authenticated (``request.state.a2a_caller``)."""

    def build(self, request: Any) -> ServerCallContext:
        context = super().build(request)
        context.state["caller"] = request.state.a2a_caller
        return context


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _card_response(card_dict: dict[str, Any]) -> JSONResponse:
    return JSONResponse(card_dict, headers={"Cache-Control": "no-cache"})


async def _talking_assistant(agent: ProductionAgent, user_id: str, ref: str) -> Assistant:
    """The caller's assistant (or a graph's default) ``ref`` names, if its graph keeps messages; else the 404 of a
    missing assistant."""
    try:
        assistant = await agent.for_user(user_id).assistants.resolve(ref)
    except ChatplaneError as exc:
        raise AssistantNotFoundError() from exc
    catalog = agent.services.catalog
    if assistant.graph_id not in catalog or not catalog.get(assistant.graph_id).has_messages:
        raise AssistantNotFoundError()
    return assistant


@router.get(AGENT_CARD_WELL_KNOWN_PATH)
async def get_server_card(request: Request, agent: AgentDep, settings: SettingsDep) -> Response:
    """The server's agent card (no credential needed: it says how to authenticate)."""
    defaults = agent.for_user("").assistants.defaults()
    card = server_card(defaults, settings.default_agent, agent.services.catalog, _base_url(request))
    if card is None:
        raise AssistantNotFoundError("No agent here keeps a conversation.")
    return _card_response(agent_card_to_dict(card))


@router.get(PREFIX + "/{assistant_id}" + AGENT_CARD_WELL_KNOWN_PATH)
async def get_agent_card(assistant_id: AssistantPath, request: Request, agent: AgentDep, user: CurrentUser) -> Response:
    """An assistant's agent card."""
    assistant = await _talking_assistant(agent, user.id, assistant_id)
    return _card_response(agent_card_to_dict(agent_card(assistant, agent.services.catalog, _base_url(request))))


@router.post(PREFIX + "/{assistant_id}")
async def a2a_rpc(assistant_id: AssistantPath, request: Request, agent: AgentDep, user: CurrentUser) -> Response:
    """An assistant's A2A JSON-RPC endpoint."""
    assistant = await _talking_assistant(agent, user.id, assistant_id)
    request.state.a2a_caller = Caller(user, endpoint_name(assistant))
    dispatcher: JsonRpcDispatcher = request.app.state.a2a_rpc
    return await dispatcher.handle_requests(request)
