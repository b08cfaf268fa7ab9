"""The OpenAI-compatible endpoint, driven by the official ``openai`` package against a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import openai
import pytest

from tests.service.test_security import _create_keys

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(server_factory, tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path}/oai.db"
    keys = asyncio.run(_create_keys(url, "alice", "bob"))
    server = server_factory(
        {
            "CHATPLANE_MODEL": "fake:echo?token_delay=0.01",
            "CHATPLANE_STORAGE_URL": url,
            "CHATPLANE_RATE_LIMIT_PER_MINUTE": "30",
        }
    )
    return server.url, keys["alice"]


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_models_are_the_agents(served) -> None:
    url, key = served
    with _client(url, key) as client:
        assert {m.id for m in client.models.list()} == {"chatplane-chat", "chatplane-react", "chatplane-multi"}


def test_completion_is_stateless_with_real_usage(served) -> None:
    url, key = served
    with _client(url, key) as client:
        completion = client.chat.completions.create(
            model="chatplane-chat",
            messages=[
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "the follow-up"},
            ],
        )
        assert completion.choices[0].message.content == "echo: the follow-up"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None and completion.usage.prompt_tokens > 5
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    threads = httpx.get(f"{url}/v1/threads", headers={"Authorization": f"Bearer {key}"}).json()["threads"]
    assert threads == []  # nothing stored but the run record


def test_streaming_with_usage(served) -> None:
    url, key = served
    with _client(url, key) as client:
        stream = client.chat.completions.create(
            model="chatplane-chat",
            messages=[{"role": "user", "content": "stream this please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream this please"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # really streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stateful_thread_continuation(served) -> None:
    url, key = served
    auth = {"Authorization": f"Bearer {key}"}
    tid = httpx.post(f"{url}/v1/threads", json={"agent": "chat"}, headers=auth).json()["thread_id"]
    with _client(url, key) as client:
        for text in ("one", "two"):
            client.chat.completions.create(
                model="chatplane-chat",
                messages=[{"role": "user", "content": "ignored history"}, {"role": "user", "content": text}],
                extra_headers={"X-Chatplane-Thread": tid},
            )
        streamed = client.chat.completions.create(
            model="chatplane-chat",
            messages=[{"role": "user", "content": "three"}],
            metadata={"chatplane_thread": tid},
            stream=True,
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "echo: three"
    messages = httpx.get(f"{url}/v1/threads/{tid}/messages", headers=auth).json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["one", "two", "three"]


def test_another_users_thread_and_wrong_agent(served, tmp_path: Path) -> None:
    url, key = served
    auth = {"Authorization": f"Bearer {key}"}
    tid = httpx.post(f"{url}/v1/threads", json={"agent": "chat"}, headers=auth).json()["thread_id"]
    with _client(url, key) as client, pytest.raises(openai.ConflictError):
        client.chat.completions.create(
            model="chatplane-react",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Chatplane-Thread": tid},
        )


def test_errors_in_openai_shape(served) -> None:
    url, key = served
    with _client(url, "cp_000000000000_wrong") as bad, pytest.raises(openai.AuthenticationError) as denied:
        bad.chat.completions.create(model="chatplane-chat", messages=[{"role": "user", "content": "x"}])
    assert denied.value.body["type"] == "authentication_error"  # type: ignore[index]
    with _client(url, key) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as tools:
            client.chat.completions.create(
                model="chatplane-chat",
                messages=[{"role": "user", "content": "x"}],
                tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            )
        assert "tools" in tools.value.message
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="chatplane-chat", messages=[])


def test_rate_limit_reaches_the_client_as_rate_limit_error(served) -> None:
    url, key = served
    with _client(url, key) as client:
        with pytest.raises(openai.RateLimitError) as limited:
            for _ in range(40):
                client.models.list()
        assert limited.value.response.headers["Retry-After"]


def test_model_failure_is_a_server_error_without_leaks(server_factory, tmp_path: Path) -> None:
    from chatplane.llm.fake import FAKE_SECRET

    server = server_factory({"CHATPLANE_MODEL": "fake:echo?fail=error", "CHATPLANE_STORAGE_URL": "memory://"})
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused-locally", max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="chatplane-chat", messages=[{"role": "user", "content": "x"}])
        assert failed.value.status_code == 502 and FAKE_SECRET not in str(failed.value.body)
        with pytest.raises(openai.APIError) as mid_stream:
            list(
                client.chat.completions.create(
                    model="chatplane-chat", messages=[{"role": "user", "content": "x"}], stream=True
                )
            )
        assert FAKE_SECRET not in str(mid_stream.value)


def test_a_model_is_retrieved_by_its_id(served) -> None:
    url, key = served
    with _client(url, key) as client:
        model = client.models.retrieve("chatplane-react")
        assert (model.id, model.object, model.owned_by) == ("chatplane-react", "model", "chatplane")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("gpt-4o")
        assert missing.value.code == "model_not_found"


def _ask(client: openai.OpenAI, **options: object) -> str | None:
    completion = client.chat.completions.create(
        model="chatplane-chat",
        messages=[{"role": "user", "content": "one two three"}],
        **options,  # type: ignore[arg-type]
    )
    return completion.choices[0].message.content


def test_options_the_server_cannot_honour_are_refused_naming_them(served) -> None:
    """``max_tokens`` without a cap on the server, ``response_format`` other than text, NaN: a 400, never ignored
    (NaN / Infinity are refused on every JSON route: ``tests/service/test_inbound.py``)."""
    url, key = served
    with _client(url, key) as client:
        for options, named in (
            ({"max_tokens": 5}, "max_tokens"),
            ({"max_completion_tokens": 5}, "max_completion_tokens"),
            ({"response_format": {"type": "json_object"}}, "response_format"),
            (
                {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
                "response_format",
            ),
        ):
            with pytest.raises(openai.BadRequestError) as refused:
                _ask(client, **options)
            assert named in refused.value.message, options
        assert _ask(client, response_format={"type": "text"}) == "echo: one two three"
    for constant in ("NaN", "Infinity", "-Infinity"):  # the openai package will not send them; others do
        raw = '{"model": "chatplane-chat", "temperature": %s, "messages": [{"role": "user", "content": "x"}]}'
        response = httpx.post(
            f"{url}/v1/chat/completions",
            content=raw % constant,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert constant.lstrip("-") in response.json()["error"]["message"]


def test_max_tokens_is_honoured_by_the_server_s_cap(server_factory, tmp_path: Path) -> None:
    """With ``CHATPLANE_MAX_OUTPUT_TOKENS`` every model call stops there: a request asking for at least as much is
    honoured; one asking for less, which the server cannot shorten, is refused."""
    server = server_factory(
        {
            "CHATPLANE_MODEL": "fake:echo",
            "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path}/cap.db",
            "CHATPLANE_MAX_OUTPUT_TOKENS": "64",
        }
    )
    with _client(server.url, "any") as client:
        assert _ask(client, max_tokens=64) == "echo: one two three"
        assert _ask(client, max_completion_tokens=1000, stream=False) == "echo: one two three"
        with pytest.raises(openai.BadRequestError) as refused:
            _ask(client, max_tokens=10)
        assert "max_tokens" in refused.value.message and "64" in refused.value.message


def test_your_assistants_are_models_too(served, tmp_path: Path) -> None:
    """An assistant (of a graph that keeps messages) is a model for its owner only: listed, retrieved, answering."""
    url, key = served
    auth = {"Authorization": f"Bearer {key}"}
    made = httpx.post(
        f"{url}/v1/assistants", json={"graph_id": "chat", "context": {"system_prompt": "Be brief."}}, headers=auth
    ).json()
    model = f"chatplane-{made['assistant_id']}"
    with _client(url, key) as client:
        assert model in {m.id for m in client.models.list()}
        assert client.models.retrieve(model).owned_by == "alice"
        answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "echo: hi"
    bob = asyncio.run(_create_keys(f"sqlite:///{tmp_path}/oai.db", "bob"))["bob"]
    with _client(url, bob) as client:
        assert model not in {m.id for m in client.models.list()}
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
