"""The chatplane Python SDK: ``Client`` (blocking) and ``AsyncClient`` (asyncio), over httpx.

    from chatplane.client import Client

    with Client("http://127.0.0.1:8000", api_key="cp_...") as client:
        thread = client.create_thread(agent="react")
        for event in client.stream(thread.thread_id, "What is 2 + 2?"):
            if event.type == "token":
                print(event.data["text"], end="", flush=True)

Errors are ``chatplane.client.errors`` exceptions carrying the server's stable ``code``. This package imports
nothing of the server (no LangChain, no FastAPI).
"""

from chatplane.client._async import AsyncClient
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
from chatplane.schemas import RunEvent

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "ChatplaneClientError",
    "Client",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RunEvent",
    "ServerError",
]
