"""Any exception from a run → the chatplane error a client sees, logged once, described without its text."""

from __future__ import annotations

import logging

from langgraph.errors import GraphRecursionError

from chatplane.errors import (
    ChatplaneError,
    DependencyError,
    InternalError,
    RunLimitError,
    StorageUnavailableError,
    describe_exception,
)
from chatplane.observability import signals
from chatplane.storage.engine import STORAGE_ERRORS

log = logging.getLogger("chatplane.runs")


def as_chatplane_error(exc: BaseException, where: str) -> ChatplaneError:
    """Classify ``exc`` (raised while working on ``where``, e.g. a thread or run id) and log it safely."""
    if isinstance(exc, DependencyError):
        log.warning("%s: %s (%s)", where, exc.code, describe_exception(exc.__cause__ or exc))
        return exc
    if isinstance(exc, ChatplaneError):
        return exc
    if isinstance(exc, GraphRecursionError):
        log.warning("%s: run_limit_exceeded (recursion limit)", where)
        return RunLimitError()
    if isinstance(exc, STORAGE_ERRORS):
        signals.storage_error(type(exc).__name__)
        log.warning("%s: storage_unavailable (%s)", where, describe_exception(exc))
        error: ChatplaneError = StorageUnavailableError()
    else:
        log.error("%s: internal_error (%s)", where, describe_exception(exc))
        error = InternalError()
    error.__cause__ = exc
    return error
