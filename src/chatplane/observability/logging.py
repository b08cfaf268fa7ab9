"""Logs: one JSON object per line in production, a readable line in development — with their context.

``configure_logging(settings)`` installs one handler on the root logger (replacing one it installed before):

* ``CHATPLANE_LOG_FORMAT=json`` (``auto`` in production) — ``{"time", "level", "logger", "message",
  "request_id", "user", "thread_id", "run_id", …}`` plus the fields a line was logged with (``extra=``);
* ``text`` (``auto`` in development) — ``12:00:00.123 INFO chatplane.runs: message [request_id=… run_id=…]``.
  Every part is escaped, so that nothing a client sends (a path with a decoded ``%0A``, a header) can start a line
  or forge a field: control and line-separator characters as ``\n``, ``\x1b`` …, and a field's value in quotes
  when it holds a space, a quote, ``=`` or a bracket.

The context fields come from ``chatplane.observability.context``. An exception is written as its type and location
only (``describe_exception``), never its text or traceback, in both formats: provider and driver messages can quote
keys and prompts. Uvicorn's own loggers are routed through the same handler, and its access log is replaced by the
request observer's ``chatplane.access`` line (which has the request id and the matched route).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

from chatplane.config import Settings
from chatplane.errors import describe_exception
from chatplane.observability import context

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}
_CONTEXT_KEYS = ("request_id", "user", "thread_id", "run_id")
# A line per model HTTP call (httpx2: the openai SDK's client); the run observer times those calls instead.
_QUIET_AT_INFO = ("httpx", "httpcore", "httpx2", "httpcore2")


class ContextFilter(logging.Filter):
    """Adds the context fields to each record (fields given with ``extra=`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in context.current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


def _error(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[1] is not None:
        return describe_exception(record.exc_info[1])
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extras = _extras(record)
        for key in _CONTEXT_KEYS:
            if extras.get(key) is not None:
                line[key] = extras.pop(key)
        line.update((k, v) for k, v in extras.items() if k not in line)
        if (error := _error(record)) is not None:
            line["error"] = error
        return json.dumps(line, ensure_ascii=False, default=str)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\\\\]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_NEEDS_QUOTES = re.compile(r'[\s"=\[\]]')


def _escape(text: str) -> str:
    """``text`` on one line, unambiguously: control characters, line separators and backslashes escaped."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\u{ord(m.group()):04x}"), text)


def _field(key: str, value: Any) -> str:
    text = _escape(str(value))
    if not text or _NEEDS_QUOTES.search(text):
        text = '"' + text.replace('"', '\\"') + '"'
    return f"{_escape(key)}={text}"


class TextFormatter(logging.Formatter):
    """For people: time, level, logger, message, then the context and extra fields as ``key=value`` — each escaped
    onto the one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return ""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info, record.msg, record.args, record.name
        record.exc_info = record.exc_text = record.stack_info = None
        record.msg, record.args, record.name = _escape(record.getMessage()), None, _escape(record.name)
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info, record.msg, record.args, record.name = saved
        fields = {k: v for k, v in _extras(record).items() if v is not None}
        if record.name == "chatplane.access":  # its message says it all already
            fields = {k: v for k, v in fields.items() if k in _CONTEXT_KEYS}
        if (error := _error(record)) is not None:
            fields["error"] = error
        if fields:
            text += "  [" + " ".join(_field(k, v) for k, v in fields.items()) + "]"
        return text


class _ChatplaneHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure_logging`` installs; writes to ``sys.stderr`` as it is *now* (like logging's own
    last-resort handler), unless given a stream."""

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__(stream)
        self._fixed = stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        if not self._fixed:
            self.stream = sys.stderr
        super().emit(record)


def log_format(settings: Settings) -> str:
    if settings.log_format != "auto":
        return settings.log_format
    return "json" if settings.env == "production" else "text"


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> None:
    """Log through one chatplane handler on the root logger, in ``settings``' format and level. Idempotent."""
    handler = _ChatplaneHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format(settings) == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ChatplaneHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = settings.log_level.upper()
    root.setLevel(level)
    for name in _QUIET_AT_INFO:
        logging.getLogger(name).setLevel(level if level == "DEBUG" else "WARNING")
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")  # replaced by chatplane.access (request id, route)
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


def configured_elsewhere() -> bool:
    """Whether the root logger has handlers that chatplane did not install (an embedding application's, or a test
    runner's): then the app leaves logging alone."""
    return any(not isinstance(h, _ChatplaneHandler) for h in logging.getLogger().handlers)


def remove_logging() -> None:
    """Take chatplane's handler off the root logger (tests)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ChatplaneHandler)]:
        root.removeHandler(old)
