"""Exceptions the SDK raises: one per kind of HTTP failure, each with the server's stable ``code``."""

from __future__ import annotations


class ChatplaneClientError(Exception):
    """Base of everything the SDK raises."""


class APIConnectionError(ChatplaneClientError):
    """The server could not be reached (or the connection dropped and could not be resumed)."""


class APIError(ChatplaneClientError):
    """The server answered with an error: ``status``, ``code`` (stable), ``message`` (safe to show)."""

    def __init__(self, status: int, code: str, message: str, run_id: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.run_id = status, code, message, run_id


class AuthenticationError(APIError):
    """401: missing, wrong or revoked credentials."""


class PermissionDeniedError(APIError):
    """403."""


class NotFoundError(APIError):
    """404: no such thread/run/session — for you."""


class ConflictError(APIError):
    """409: e.g. the thread is busy (``thread_busy``) or the run cannot do that now."""


class InvalidRequestError(APIError):
    """413 / 422: the request was refused as it is; fix it before retrying."""


class RateLimitError(APIError):
    """429: slow down; ``retry_after`` seconds if the server said."""

    def __init__(self, status: int, code: str, message: str, run_id: str | None = None, retry_after: float = 0.0):
        super().__init__(status, code, message, run_id)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the model, the database or chatplane failed; retrying later may work."""


def error_class(status: int) -> type[APIError]:
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status in (413, 422):
        return InvalidRequestError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    return APIError
