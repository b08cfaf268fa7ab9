"""ProductionAgent: the seed's API, sync and async, on every storage backend."""

from __future__ import annotations

import asyncio

import pytest

from chatplane import ProductionAgent
from chatplane.errors import ConfigError, InvalidInputError, ModelError, SessionNotFoundError
from chatplane.llm.fake import ScriptedChatModel
from tests.conftest import make_settings


async def test_async_api_round_trip(storage_url: str) -> None:
    async with ProductionAgent(settings=make_settings(storage_url=storage_url)) as agent:
        assert await agent.achat("alice", "hi") == "echo: hi"
        assert await agent.achat("alice", "more", "other") == "echo: more"
        tokens = [t async for t in agent.astream_chat("alice", "stream me please")]
        assert len(tokens) > 1
        assert "".join(tokens) == "echo: stream me please"
        history = await agent.aget_history("session-alice")
        assert [(m.type, m.text) for m in history] == [
            ("human", "hi"),
            ("ai", "echo: hi"),
            ("human", "stream me please"),
            ("ai", "echo: stream me please"),
        ]
        state = await agent.graph.aget_state({"configurable": {"thread_id": "session-alice"}})
        assert state.values["user_id"] == "alice"
        assert state.values["session_id"] == "session-alice"


async def test_reset_deletes_every_checkpoint(storage_url: str) -> None:
    async with ProductionAgent(settings=make_settings(storage_url=storage_url)) as agent:
        await agent.achat("bob", "one")
        await agent.achat("bob", "two")
        await agent.achat("carol", "keep me")
        checkpointer = agent.storage.checkpointer
        config = {"configurable": {"thread_id": "session-bob"}}
        assert len([c async for c in checkpointer.alist(config)]) > 1
        await agent.areset_session("session-bob")
        assert [c async for c in checkpointer.alist(config)] == []
        assert await agent.aget_history("session-bob") == []
        assert len(await agent.aget_history("session-carol")) == 2  # others untouched
        with pytest.raises(SessionNotFoundError):
            await agent.areset_session("session-bob", missing_ok=False)


async def test_history_survives_reopening_storage(persistent_storage_url: str) -> None:
    settings = make_settings(storage_url=persistent_storage_url)
    async with ProductionAgent(settings=settings) as agent:
        await agent.achat("dave", "remember this")
    async with ProductionAgent(settings=settings) as agent:
        history = await agent.aget_history("session-dave")
        assert [m.text for m in history] == ["remember this", "echo: remember this"]


def test_sync_api_mirrors_the_seed(tmp_path) -> None:
    agent = ProductionAgent(settings=make_settings(storage_url=f"sqlite:///{tmp_path}/s.db"))
    try:
        assert agent.chat("erin", "hello") == "echo: hello"
        assert "".join(agent.stream_chat("erin", "stream")) == "echo: stream"
        assert [m.text for m in agent.get_history("session-erin")] == [
            "hello",
            "echo: hello",
            "stream",
            "echo: stream",
        ]
        agent.reset_session("session-erin")
        assert agent.get_history("session-erin") == []
    finally:
        agent.close()


def test_sync_api_as_context_manager_with_a_model_object() -> None:
    model = ScriptedChatModel(replies=["scripted"])
    with ProductionAgent(model, settings=make_settings()) as agent:
        assert agent.chat("u", "anything") == "scripted"
    assert model.calls == 1


async def test_sync_api_refuses_to_block_a_running_loop() -> None:
    agent = ProductionAgent(settings=make_settings())
    with pytest.raises(ConfigError, match="async methods"):
        agent.chat("u", "hi")


def test_bare_model_name_means_openai_and_needs_a_key() -> None:
    agent = ProductionAgent("gpt-4o", settings=make_settings())
    assert agent.settings.model == "openai:gpt-4o"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        agent.chat("u", "hi")


async def test_unstarted_agent_says_how_to_start() -> None:
    with pytest.raises(ConfigError, match="not started"):
        await ProductionAgent(settings=make_settings()).achat("u", "hi")


@pytest.mark.parametrize(
    ("user", "message", "session"),
    [
        ("", "hi", None),
        ("ok", "", None),
        ("ok", "   ", None),
        ("ok", "hi", "has space"),
        ("ok", "a\x00", None),
    ],
)
async def test_invalid_input_is_refused_before_the_model(user: str, message: str, session: str | None) -> None:
    model = ScriptedChatModel(echo=True)
    async with ProductionAgent(model, settings=make_settings()) as agent:
        with pytest.raises(InvalidInputError):
            await agent.achat(user, message, session)
    assert model.calls == 0


async def test_model_failure_keeps_the_users_message() -> None:
    async with ProductionAgent(settings=make_settings(model="fake:echo?fail=error")) as agent:
        with pytest.raises(ModelError) as raised:
            await agent.achat("frank", "important")
        assert "sk-" not in str(raised.value)
        assert [m.text for m in await agent.aget_history("session-frank")] == ["important"]


async def test_messages_to_one_session_never_interleave() -> None:
    model = ScriptedChatModel(echo=True, delay=0.05)
    async with ProductionAgent(model, settings=make_settings()) as agent:
        await asyncio.gather(*(agent.achat("g", f"m{i}") for i in range(5)))
        assert model.peak_in_flight == 1  # one session: one at a time
        await asyncio.gather(*(agent.achat(f"user{i}", "x") for i in range(5)))
        assert model.peak_in_flight == 5  # different sessions: all at once


async def test_the_seed_api_on_a_graph_a_team_brings() -> None:
    """``ProductionAgent(graph=...)``: chat, stream_chat, get_history and reset_session on any messages graph,
    compiled or not — with the server's checkpointer attached."""
    from langchain_core.messages import AIMessage
    from langgraph.graph import START, MessagesState, StateGraph

    async def shout(state: MessagesState) -> dict:
        return {"messages": [AIMessage(state["messages"][-1].text.upper())]}

    builder = StateGraph(MessagesState).add_node("shout", shout).add_edge(START, "shout")
    for graph in (builder, builder.compile()):
        async with ProductionAgent(settings=make_settings(), graph=graph) as agent:
            assert await agent.achat("ann", "hi there") == "HI THERE"
            assert await agent.achat("ann", "again") == "AGAIN"
            history = await agent.aget_history("session-ann")
            assert [m.text for m in history] == ["hi there", "HI THERE", "again", "AGAIN"]
            await agent.areset_session("session-ann")
            assert await agent.aget_history("session-ann") == []
    compiled = builder.compile()
    assert compiled.checkpointer is None  # the team's object is left as it was


def test_the_sync_seed_api_on_a_graph_a_team_brings() -> None:
    from langchain_core.messages import AIMessage
    from langgraph.graph import START, MessagesState, StateGraph

    def echo(state: MessagesState) -> dict:
        return {"messages": [AIMessage("got " + state["messages"][-1].text)]}

    graph = StateGraph(MessagesState).add_node("echo", echo).add_edge(START, "echo").compile()
    agent = ProductionAgent(settings=make_settings(), graph=graph)
    try:
        assert agent.chat("bo", "x") == "got x"
        assert [m.text for m in agent.get_history("session-bo")] == ["x", "got x"]
        agent.reset_session("session-bo")
    finally:
        agent.close()
