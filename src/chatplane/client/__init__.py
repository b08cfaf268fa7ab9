"""The chatplane Python SDK: ``Client`` (blocking) and ``AsyncClient`` (asyncio), over httpx.

    from chatplane.client import Client

    with Client("http://127.0.0.1:8000", api_key="cp_...") as client:
        thread = client.create_thread(agent="react")
        for event in client.stream(thread.thread_id, "What is 2 + 2?"):
            if event.type == "token":
                print(event.data["text"], end="", flush=True)

A ``retract`` event ``{"message_id"}`` says that the model attempt which streamed that message's tokens failed and
is tried again: a client that shows the text drops what it got under that ``message_id`` (the retry's tokens follow
under another). The SDK hands events over as they come and keeps no text of its own.

A run of any graph takes ``input=``, ``context=``, ``config=``, ``command=``, ``stream_mode=`` and
``stream_subgraphs=`` besides (or instead of) the message (``RunOptions``); ``resume(run_id, value=...)`` answers a
graph's ``interrupt(...)``, ``thread_state`` reads its state, and ``create_assistant`` & co. configure graphs.

Errors are ``chatplane.client.errors`` exceptions carrying the server's stable ``code``. This package imports
nothing of the server (no LangChain, no FastAPI).
"""

from chatplane.assistant_schemas import AssistantOut
from chatplane.client._async import AsyncClient
from chatplane.client._base import RunOptions
from chatplane.client._sync import Client
from chatplane.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ChatplaneClientError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from chatplane.schedule_schemas import ScheduleOut, WebhookDelivery
from chatplane.schemas import AgentList, RunCommand, RunEvent, RunOut, ThreadState
from chatplane.webhooks.signing import verify as verify_webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "AgentList",
    "AssistantOut",
    "AsyncClient",
    "AuthenticationError",
    "ChatplaneClientError",
    "Client",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RunCommand",
    "RunEvent",
    "RunOptions",
    "RunOut",
    "ScheduleOut",
    "ServerError",
    "ThreadState",
    "WebhookDelivery",
    "verify_webhook",
]
