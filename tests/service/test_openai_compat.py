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
