"""The two ends ``chatplane chat`` can talk to, behind one ``Conversation`` protocol: an agent in this process
(``LocalConversation``) or a running server through the SDK (``RemoteConversation``)."""

from __future__ import annotations

import secrets
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chatplane.config import Settings
from chatplane.errors import ChatplaneError
from chatplane.events import TERMINAL_EVENTS, Retraction

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from chatplane.events import Message


@dataclass
class Said:
    """One message of a conversation, as ``/history`` shows it (``chatplane.cli.history``)."""

    role: str
    """``user``, ``assistant`` or ``tool``."""
    text: str
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """An assistant's calls: (tool, arguments)."""
    name: str | None = None
    """A tool result's tool."""
    status: str | None = None
    """``cancelled`` for an answer cut short; ``error`` for a tool that failed."""

    @classmethod
    def from_langchain(cls, message: BaseMessage) -> Said | None:
        role = {"human": "user", "ai": "assistant", "tool": "tool"}.get(message.type)
        if role is None:
            return None
        calls = [(c["name"], c.get("args") or {}) for c in getattr(message, "tool_calls", None) or []]
        return cls(role, message.text, calls, message.name, getattr(message, "status", None))

    @classmethod
    def from_wire(cls, message: Message) -> Said | None:
        if message.role not in ("user", "assistant", "tool"):
            return None
        calls = [(str(c.get("name", "?")), c.get("args") or {}) for c in message.tool_calls]
        return cls(message.role, message.content, calls, message.name, message.status)


class Conversation(Protocol):
    """One terminal chat: the current session, its agent, and what the /commands do to them.

    ``stream``: the answer's text as it is generated, with a ``Retraction`` where a model attempt failed and is
    tried again (the text since the attempt began is void); closing the generator early (Ctrl-C) stops the
    answer — on a server, the run is cancelled, so the next message does not wait behind it."""

    session: str
    agent_name: str | None

    def new(self, agent: str | None = None) -> None: ...
    def open(self, session: str) -> None: ...
    def stream(self, message: str) -> Generator[str, None, None]: ...
    def history(self) -> list[Said]: ...
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

    def stream(self, message: str) -> Generator[str, None, None]:
        yield from self.agent.stream_chat(self.user, message, self.session, agent=self.agent_name)

    def history(self) -> list[Said]:
        return [said for m in self.agent.get_history(self.session) if (said := Said.from_langchain(m))]

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

    def stream(self, message: str) -> Generator[str, None, None]:
        run_id: str | None = None
        over = False
        streamed: dict[str | None, int] = {}  # characters shown, by message id
        try:
            for event in self.client.stream(self.session, message, multitask="enqueue"):
                run_id, over = event.run_id, event.type in TERMINAL_EVENTS
                if event.type == "token":
                    message_id = event.data.get("message_id")
                    streamed[message_id] = streamed.get(message_id, 0) + len(event.data["text"])
                    yield str(event.data["text"])
                elif event.type == "retract":
                    yield Retraction(streamed.pop(event.data.get("message_id"), 0))
                elif event.type == "run_failed":
                    raise ChatplaneError(event.data["error"]["message"])
        except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C, inside the stream or while its text was shown
            if not over:
                self._stop(run_id)
            raise

    def _stop(self, run_id: str | None) -> None:
        """Cancel the interrupted run on the server — the one streamed, or, before its first event said which, the
        thread's active ones — so that the next message does not wait behind it."""
        from chatplane.client import ChatplaneClientError

        try:
            if run_id is None:
                active = [r.run_id for r in self.client.list_runs(self.session) if r.status in ("pending", "running")]
            for stopping in [run_id] if run_id else active:
                self.client.cancel_run(stopping)
        except ChatplaneClientError:
            pass  # the server is gone too: nothing more to do from here

    def history(self) -> list[Said]:
        messages = self.client.messages(self.session, limit=500).messages
        return [said for m in messages if (said := Said.from_wire(m))]

    def sessions(self) -> list[tuple[str, str, str]]:
        return [(t.thread_id, t.agent, t.title or "") for t in self.client.list_threads(limit=20).threads]

    def reset(self) -> None:
        self.client.delete_thread(self.session)
        self.new()

    def close(self) -> None:
        self.client.close()
