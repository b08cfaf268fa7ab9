"""Every error chatplane raises on purpose, in one tree.

    ChatplaneError                      code, safe message, HTTP status
    ├── ConfigError                     bad settings; raised at start-up, never per request
    ├── InvalidInputError (422)         a request the caller can fix
    ├── AuthenticationError (401)       no, wrong or revoked credentials
    ├── ForbiddenError (403)            authenticated, but not allowed to do that
    ├── RateLimitedError (429)          too many requests / tokens; ``retry_after`` seconds
    ├── SessionNotFoundError (404)      no such session for this caller
    ├── ThreadNotFoundError (404)       no such thread for this caller (another user's looks the same)
    ├── RunNotFoundError (404)          no such run for this caller
    ├── MessageNotFoundError (404)      the caller's thread has no such message (on any of its branches)
    ├── AssistantNotFoundError (404)    no such assistant (or version) for this caller (another user's looks the same)
    ├── ScheduleNotFoundError (404)     no such schedule for this caller (another user's looks the same)
    ├── WebhookNotFoundError (404)      the caller's run named no webhook
    ├── ItemNotFoundError (404)         no such store item for this caller (another user's looks the same)
    ├── ModelNotFoundError (404)        the OpenAI-compatible endpoint was asked for a model that is no agent
    ├── ThreadBusyError (409)           the thread already has an active run (double-texting policy `reject`)
    ├── AgentMismatchError (409)        the thread was created for another agent
    ├── IdempotencyConflictError (422)  an Idempotency-Key sent again with another request
    ├── NoMessagesError (409)           the thread's graph keeps no ``messages`` (read its state instead)
    ├── RunStateError (409)             the run is not in a state that allows this (e.g. resume a finished run)
    ├── AssistantExistsError (409)      the caller already has an assistant with that id (``if_exists: raise``)
    ├── ThreadExistsError (409)         a thread with that id exists (the LangGraph API's ``if_exists: raise``)
    ├── AssistantReadOnlyError (409)    a graph's default assistant cannot be changed (it comes from the project)
    ├── AssistantLimitError (422)       the caller has as many assistants as a user may keep
    ├── RunLimitError (422)             the run needed more model/tool calls or steps than allowed
    ├── ScheduleLimitError (422)        the caller has as many schedules as a user may keep
    ├── DependencyError                 something we depend on failed; the caller may retry
    │   ├── ModelError (502)            the model provider failed or refused
    │   ├── ModelTimeoutError (504)     the model took longer than `model_timeout_s`
    │   ├── WorkerLostError (503)       the process running the run died (and recovery is set to `fail`)
    │   └── StorageUnavailableError (503) the database is unreachable
    └── InternalError (500)             a bug; details are logged, not returned

The ``message`` of every error is written for the client and never contains the text of an underlying exception:
provider errors can carry request ids, prompt fragments or key prefixes. The service maps this tree to HTTP in one
exception handler (``chatplane.service.errors``).
"""

from __future__ import annotations

import traceback


class ChatplaneError(Exception):
    """Base of all chatplane errors: a stable ``code``, a client-safe ``message`` and an HTTP ``status``."""

    code = "error"
    status = 500
    default_message = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        self.run_id: str | None = None  # the run it happened in, when there is one
        super().__init__(self.message)


class ConfigError(ChatplaneError):
    code = "config_error"
    default_message = "chatplane is misconfigured."


class InvalidInputError(ChatplaneError):
    code = "invalid_request"
    status = 422
    default_message = "The request is not valid."


class AuthenticationError(ChatplaneError):
    code = "unauthorized"
    status = 401
    default_message = "Authentication required: send `Authorization: Bearer <API key>`."


class ForbiddenError(ChatplaneError):
    code = "forbidden"
    status = 403
    default_message = "You are not allowed to do that."


class RateLimitedError(ChatplaneError):
    code = "rate_limited"
    status = 429
    default_message = "Too many requests; slow down."

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SessionNotFoundError(ChatplaneError):
    code = "session_not_found"
    status = 404
    default_message = "No such session."


class ThreadNotFoundError(ChatplaneError):
    code = "thread_not_found"
    status = 404
    default_message = "No such thread."


class RunNotFoundError(ChatplaneError):
    code = "run_not_found"
    status = 404
    default_message = "No such run."


class MessageNotFoundError(ChatplaneError):
    code = "message_not_found"
    status = 404
    default_message = "The thread has no such message."


class AssistantNotFoundError(ChatplaneError):
    code = "assistant_not_found"
    status = 404
    default_message = "No such assistant."


class ItemNotFoundError(ChatplaneError):
    code = "item_not_found"
    status = 404
    default_message = "No such item."


class ModelNotFoundError(ChatplaneError):
    code = "model_not_found"
    status = 404
    default_message = "No such model; GET /v1/models lists them."


class ThreadBusyError(ChatplaneError):
    code = "thread_busy"
    status = 409
    default_message = "The thread is busy with another run; send with multitask=enqueue or interrupt, or wait."


class AgentMismatchError(ChatplaneError):
    code = "agent_mismatch"
    status = 409
    default_message = "This thread belongs to another agent; start a new thread to use a different one."


class IdempotencyConflictError(ChatplaneError):
    code = "idempotency_key_reused"
    status = 422
    default_message = "That Idempotency-Key was used for another request; use a new key for a new request."


class NoMessagesError(ChatplaneError):
    code = "no_messages"
    status = 409
    default_message = (
        "This thread's graph keeps no messages: read its state instead (GET /v1/threads/{thread_id}/state)."
    )


class RunStateError(ChatplaneError):
    code = "run_state_conflict"
    status = 409
    default_message = "The run cannot do that in its current state."


class AssistantExistsError(ChatplaneError):
    code = "assistant_exists"
    status = 409
    default_message = "You already have an assistant with that id; send `if_exists: do_nothing` to get it instead."


class ThreadExistsError(ChatplaneError):
    code = "thread_exists"
    status = 409
    default_message = "A thread with that id exists."


class AssistantReadOnlyError(ChatplaneError):
    code = "assistant_read_only"
    status = 409
    default_message = (
        "A graph's default assistant comes from the project file and cannot be changed, pinned or deleted; "
        "create an assistant of your own for the graph instead."
    )


class AssistantLimitError(ChatplaneError):
    code = "assistant_limit_reached"
    status = 422
    default_message = "You have as many assistants as a user may keep; delete one first."


class ScheduleNotFoundError(ChatplaneError):
    code = "schedule_not_found"
    status = 404
    default_message = "No such schedule."


class WebhookNotFoundError(ChatplaneError):
    code = "webhook_not_found"
    status = 404
    default_message = "That run names no webhook."


class ScheduleLimitError(ChatplaneError):
    code = "schedule_limit_reached"
    status = 422
    default_message = "You have as many schedules as a user may keep; delete one first."


class RunLimitError(ChatplaneError):
    code = "run_limit_exceeded"
    status = 422
    default_message = "The agent needed more steps than allowed for one message; try a simpler request."


class DependencyError(ChatplaneError):
    """A dependency failed; the request may succeed if retried later."""


class ModelError(DependencyError):
    code = "model_error"
    status = 502
    default_message = "The language model failed to answer. Your message was kept; try again."


class ModelTimeoutError(DependencyError):
    code = "model_timeout"
    status = 504
    default_message = "The language model did not answer in time. Your message was kept; try again."


class EmbeddingsError(DependencyError):
    code = "embeddings_error"
    status = 502
    default_message = "The embedding model failed; nothing was stored or searched. Try again."


class EmbeddingsUnavailableError(DependencyError):
    code = "embeddings_unavailable"
    status = 503
    default_message = "The embeddings endpoint is unavailable; nothing was stored or searched. Try again shortly."


class EmbeddingsTimeoutError(DependencyError):
    code = "embeddings_timeout"
    status = 504
    default_message = "The embeddings endpoint did not answer in time; nothing was stored or searched. Try again."


class WorkerLostError(DependencyError):
    code = "worker_lost"
    status = 503
    default_message = "The server running this message stopped; your message was kept. Retry the run."


class StorageUnavailableError(DependencyError):
    code = "storage_unavailable"
    status = 503
    default_message = "Storage is unavailable. Try again shortly."


class InternalError(ChatplaneError):
    code = "internal_error"
    status = 500
    default_message = "Internal error."


def error_from_code(code: str, message: str | None = None) -> ChatplaneError:
    """Rebuild the error a run recorded (by its code), e.g. to raise it again in a caller that waited for the run."""
    pending: list[type[ChatplaneError]] = [ChatplaneError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls(message)
        pending.extend(cls.__subclasses__())
    return InternalError(message)


def describe_exception(exc: BaseException) -> str:
    """A log-safe description of ``exc``: its type, HTTP status if any, and where it was raised — no message text.

    Exception messages from providers and drivers may quote secrets or user content, so logs get this instead.
    """
    parts = [type(exc).__qualname__]
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        parts.append(f"status={status}")
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        parts.append(f"at {_short_path(last.filename)}:{last.lineno}")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        parts.append(f"(from {type(cause).__qualname__})")
    return " ".join(parts)


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "src/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/", 1)[-1]
