"""Who is calling. Until API keys arrive, a local development server has one user: ``local``.

Sessions are private to their owner: the thread that stores a session is derived from (owner, session id), so one
user's ``session-x`` can never address another user's — there is nothing to guess and nothing to squat.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

_THREAD_NAMESPACE = uuid.UUID("8f6d1c52-3f0a-4d0e-9a43-6c1b0b7e2a11")

LOCAL_USER = "local"


@dataclass(frozen=True)
class User:
    id: str


def current_user() -> User:
    """The caller: the single local user on a development server."""
    return User(LOCAL_USER)


def session_thread_id(owner: User, session_id: str) -> str:
    """The storage thread of ``owner``'s session ``session_id`` (a UUID no other owner can reach)."""
    return str(uuid.uuid5(_THREAD_NAMESPACE, f"{owner.id}\x00{session_id}"))
