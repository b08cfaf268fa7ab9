"""The model factory and the scripted fake."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from chatplane.errors import ConfigError
from chatplane.llm import make_chat_model, open_chat_model, parse_model_id
from chatplane.llm.fake import FakeProviderError, ScriptedChatModel
from tests.conftest import make_settings


def test_parse_model_id() -> None:
    assert parse_model_id("openai:gpt-4o") == ("openai", "gpt-4o")
    assert parse_model_id("fake:a|b?delay=1") == ("fake", "a|b?delay=1")
    for bad in ("gpt-4o", "nope:x", "openai:"):
        with pytest.raises(ConfigError):
            parse_model_id(bad)


def test_openai_without_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_chat_model("openai:gpt-4o", make_settings())


def test_openai_honours_key_and_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    from chatplane.config import Settings

    model = make_chat_model("openai:my-model", Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "my-model"
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.openai_api_key is not None and model.openai_api_key.get_secret_value() == "sk-test"


def test_compatible_endpoint_without_key_is_allowed() -> None:
    model = make_chat_model("openai:llama3", make_settings(openai_base_url="http://127.0.0.1:9/v1"))
    assert isinstance(model, ChatOpenAI)


def test_local_model_needs_its_server() -> None:
    with pytest.raises(ConfigError, match="open_chat_model"):
        make_chat_model("local:smollm2-135m", make_settings())


async def test_unknown_local_model_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="local:smollm2-135m"):
        async with open_chat_model("local:gigantic-70b", make_settings()):
            pass


async def test_local_model_path_must_exist(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        async with open_chat_model("local:x", make_settings(local_model_path=str(tmp_path / "none.gguf"))):
            pass


async def test_unreachable_openai_compatible_endpoint_is_not_ready() -> None:
    settings = make_settings(openai_base_url="http://127.0.0.1:9/v1")
    async with open_chat_model("openai:x", settings) as handle:
        assert await handle.ping() is False


def test_fake_spec_options() -> None:
    model = make_chat_model("fake:a|b?delay=0.5&token_delay=0.01", make_settings())
    assert isinstance(model, ScriptedChatModel)
    assert (model.replies, model.delay, model.token_delay) == (["a", "b"], 0.5, 0.01)
    with pytest.raises(ConfigError):
        make_chat_model("fake:echo?bogus=1", make_settings())


async def test_fake_cycles_streams_and_reports_usage() -> None:
    model = ScriptedChatModel(replies=["one two", "three"])
    first = await model.ainvoke([HumanMessage("q")])
    assert first.text == "one two"
    assert first.usage_metadata is not None and first.usage_metadata["output_tokens"] == 2
    chunks = [c async for c in model.astream([HumanMessage("q")])]
    assert "".join(c.text for c in chunks) == "three"
    assert model.invoke([HumanMessage("q")]).text == "one two"


async def test_fake_counts_concurrent_calls_and_fails_on_request() -> None:
    model = ScriptedChatModel(echo=True, delay=0.05)
    await asyncio.gather(*(model.ainvoke([HumanMessage(str(i))]) for i in range(7)))
    assert model.peak_in_flight == 7
    failing = ScriptedChatModel(echo=True, fail="error")
    with pytest.raises(FakeProviderError):
        await failing.ainvoke([HumanMessage("x")])


async def test_langsmith_hooks_stay_on_the_loop_while_tracing_is_off(monkeypatch) -> None:
    """LangChain wraps each agent middleware hook in LangSmith's ``traceable``; untraced, it must not hop threads."""
    from langsmith import traceable, tracing_context

    async with open_chat_model("fake:hi", make_settings()):  # installs the override
        pass
    loop = asyncio.get_running_loop()
    hops: list[object] = []
    real_run_in_executor = loop.run_in_executor

    def counted(executor, func, *args):  # type: ignore[no-untyped-def]
        hops.append(func)
        return real_run_in_executor(executor, func, *args)

    monkeypatch.setattr(loop, "run_in_executor", counted)

    @traceable(name="hook")
    async def hook(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    assert await hook(1) == 2
    assert hops == []
    with tracing_context(enabled=True, client=_NoClient()):  # traced: LangSmith's own way, in a worker thread
        assert await hook(2) == 3
    assert hops


class _NoClient:
    """A LangSmith client that sends nothing."""

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: None


async def test_openai_models_talk_over_aiohttp_and_close_it() -> None:
    from openai import DefaultAioHttpClient

    settings = make_settings(model="openai:m", openai_base_url="http://127.0.0.1:9/v1")
    async with open_chat_model("openai:m", settings) as handle:
        client = handle.model.root_async_client._client  # type: ignore[attr-defined]
        assert isinstance(client, DefaultAioHttpClient)
        session = handle.model.http_session  # type: ignore[attr-defined]  # chat completions go straight on it
        assert isinstance(session, aiohttp.ClientSession) and not session.closed
    assert client.is_closed and session.closed
