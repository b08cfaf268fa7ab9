"""What every way in checks about ids and messages, before anything is stored."""

from __future__ import annotations

import re

from chatplane.errors import InvalidInputError
from chatplane.schemas import ID_PATTERN

_ID_RE = re.compile(ID_PATTERN)


def default_session_id(user_id: str) -> str:
    """The session a user talks in when none is named (as the seed)."""
    return f"session-{user_id}"


def check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidInputError(
            f"{kind} must be 1-128 characters of letters, digits and . _ : @ - (starting with a letter or digit)."
        )
    return value


def check_message(message: str, max_chars: int) -> str:
    if not isinstance(message, str) or not message.strip():
        raise InvalidInputError("message must be a non-empty string.")
    if len(message) > max_chars:
        raise InvalidInputError(f"message is longer than the limit of {max_chars} characters.")
    if "\x00" in message:
        raise InvalidInputError("message must not contain NUL characters.")
    return message
