"""What every request and WebSocket frame brings in, checked once at the edge for what every backend can hold.

PostgreSQL cannot store a NUL character in text, and no backend can encode a lone (unpaired) surrogate as UTF-8:
either, anywhere in a path, a query or a JSON value (keys included), is refused here with a 422 rather than failing
deep inside storage or a run. JSON bodies and frames are strict JSON as well: no ``NaN`` / ``Infinity`` (Python's
parser takes them; nothing else does; nor a number so large that it becomes one), at most ``MAX_DEPTH`` levels
of nesting. An integer, in a body or a query, must fit in 64 bits (what a database column holds). Other control
characters are stored as they are (ids have a pattern of their own).

The common request pays a few byte scans only: JSON can carry a NUL or a surrogate only as a ``\\u`` escape (raw, the
parser or the UTF-8 decoder refuses it), a constant only as its name, a huge number only with many digits or a large
exponent, and deep nesting only with many brackets — the body is parsed here only when one of these appears.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from chatplane.errors import InvalidInputError

MAX_DEPTH = 64
"""The deepest nesting of arrays and objects a JSON body or frame may have."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONSTANTS = (b"NaN", b"Infinity")
_HUGE_NUMBER = re.compile(rb"\d{19}|\d[eE]\+?\d{3}")
_HUGE_IN_QUERY = re.compile(r"[+-]?\d{19,}")
_INT64 = range(-(2**63), 2**63)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}\Z")


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a character some backend cannot store: NUL, or a lone surrogate."""
    return _UNSTORABLE.search(text) is not None


def check_text(text: str, where: str) -> str:
    if unstorable(text):
        raise InvalidInputError(f"{where} must not contain NUL characters or unpaired surrogates.")
    return text


def check_url(path: str, query_string: bytes) -> None:
    """The decoded path and query (the only way a NUL reaches them: ``%00``; decoding never yields a surrogate)."""
    check_text(path, "The path")
    if b"\x00" in query_string or b"%00" in query_string:
        if b"\x00" in unquote_to_bytes(query_string):
            raise InvalidInputError("The query must not contain NUL characters.")
    if _HUGE_NUMBER.search(query_string):
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if _HUGE_IN_QUERY.fullmatch(value) and (len(value) > 20 or int(value) not in _INT64):
                raise InvalidInputError(f"{name[:40]} is out of range: a number must fit in 64 bits.")


def needs_parsing(body: bytes) -> bool:
    """Whether ``body`` may hold something ``check_json`` refuses (if it is JSON at all)."""
    return (
        b"\\u" in body
        or any(c in body for c in _CONSTANTS)
        or body.count(b"[") + body.count(b"{") > MAX_DEPTH
        or _HUGE_NUMBER.search(body) is not None
    )


def parse_json(data: str | bytes) -> Any:
    """Strict JSON: ``ValueError`` if it is not JSON at all, ``InvalidInputError`` for what chatplane refuses."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep() from None
    check_value(value)
    return value


def check_json(body: bytes) -> None:
    """``parse_json``'s refusals for a request body, parsing it only when it may need it; a body that is not
    JSON is left to the framework (its own 422)."""
    if not needs_parsing(body):
        return
    try:
        parse_json(body)
    except InvalidInputError:
        raise
    except ValueError:  # not JSON (or not UTF-8)
        return


def check_value(value: Any, where: str = "body") -> None:
    """Every string (keys included) of a parsed JSON value, and its depth — without recursion. An error names the
    top-level field it is under (when that is a plain name), never the offending text."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, field, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, f"Text in {field}")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInputError(f"A number in {field} is too large: send a finite number.")
        elif isinstance(item, int) and item not in _INT64:
            raise InvalidInputError(f"A number in {field} is out of range: it must fit in 64 bits.")
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise _too_deep()
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    check_text(key, f"A key in {field}")
                under = key if depth == 0 and isinstance(key, str) and _NAME.match(key) else field
                stack.append((child, under, depth + 1))


def _refuse_constant(name: str) -> Any:
    raise InvalidInputError(f"{name} is not a JSON number: send a finite number (or null).")


def _too_deep() -> InvalidInputError:
    return InvalidInputError(f"The JSON is nested deeper than {MAX_DEPTH} levels.")
