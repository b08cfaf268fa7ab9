"""The two ends ``chatplane chat`` can talk to, behind one ``Conversation`` protocol: an agent in this process
(``LocalConversation``) or a running server through the SDK (``RemoteConversation``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Protocol

from chatplane.config import Settings
from chatplane.errors import ChatplaneError


class Conversation(Protocol):
    """One terminal chat: the current session, its agent, and what the /commands do to them."""

    session: str
    agent_name: str | None

    def new(self, agent: str | None = None) -> None: ...
    def open(self, session: str) -> None: ...
    def stream(self, message: str) -> Iterator[str]: ...
    def history(self) -> list[tuple[str, str]]: ...
    def sessions(self) -> list[tuple[str, str, str]]: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class LocalConversation:
    """Chat with an agent running in this process (the sync API of ``ProductionAgent``)."""

    def __init__(self, settings: Settings, user: str, session: str, agent: str | None) -> None:
        from chatplane.agent import ProductionAgent

        self.user, self.session, self.agent_name = user, session, agent
        self.agent = ProductionAgent(settings=settings)
        self.agent.__enter__()

    def new(self, agent: str | None = None) -> None:
        self.session = f"cli-{secrets.token_hex(4)}"
        self.agent_name = agent or self.agent_name

    def open(self, session: str) -> None:
        known = {t.session_id or t.thread_id: t for t in self.agent.list_sessions(self.user, limit=100)}
        if session not in known:
            raise ChatplaneError(f"No session {session!r}; /threads lists yours.")
        self.session, self.agent_name = session, known[session].agent

    def stream(self, message: str) -> Iterator[str]:
        return self.agent.stream_chat(self.user, message, self.session, agent=self.agent_name)

    def history(self) -> list[tuple[str, str]]:
        return [(m.type, m.text) for m in self.agent.get_history(self.session)]

    def sessions(self) -> list[tuple[str, str, str]]:
        return [(t.session_id or t.thread_id, t.agent, t.title or "") for t in self.agent.list_sessions(self.user)]

    def reset(self) -> None:
        self.agent.reset_session(self.session)

    def close(self) -> None:
        self.agent.close()


class RemoteConversation:
    """Chat with a running chatplane server through the SDK: the session is a thread, answers stream over SSE."""

    def __init__(self, url: str, api_key: str | None, session: str | None, agent: str | None) -> None:
        from chatplane.client import Client

        self.client = Client(url, api_key)
        self.agent_name = agent
        try:
            if session:
                self.open(session)
            else:
                self.new(agent)
        except Exception:
            self.client.close()
            raise

    def new(self, agent: str | None = None) -> None:
        self.agent_name = agent or self.agent_name
        thread = self.client.create_thread(agent=self.agent_name, title="chatplane chat")
        self.session, self.agent_name = thread.thread_id, thread.agent

    def open(self, session: str) -> None:
        thread = self.client.get_thread(session)
        self.session, self.agent_name = thread.thread_id, thread.agent

    def stream(self, message: str) -> Iterator[str]:
        for event in self.client.stream(self.session, message, multitask="enqueue"):
            if event.type == "token":
                yield str(event.data["text"])
            elif event.type == "run_failed":
                raise ChatplaneError(event.data["error"]["message"])

    def history(self) -> list[tuple[str, str]]:
        roles = {"user": "human", "assistant": "ai"}
        return [(roles.get(m.role, m.role), m.content) for m in self.client.messages(self.session, limit=500).messages]

    def sessions(self) -> list[tuple[str, str, str]]:
        return [(t.thread_id, t.agent, t.title or "") for t in self.client.list_threads(limit=20).threads]

    def reset(self) -> None:
        self.client.delete_thread(self.session)
        self.new()

    def close(self) -> None:
        self.client.close()
