"""Guards: transient model failures retried, fallbacks tried, what is left translated; the order is what matters."""

from __future__ import annotations

import httpx
import openai
import pytest
from langchain.agents.middleware import ModelFallbackMiddleware, ModelRetryMiddleware
from langchain_core.messages import BaseMessage, HumanMessage

from chatplane.agents.chat import build_chat
from chatplane.agents.guards import guard_middleware, model_guard_middleware
from chatplane.agents.middleware import ModelAttemptMiddleware, ModelErrorMiddleware, is_transient_model_error
from chatplane.agents.react import build_react
from chatplane.errors import ConfigError, ModelError, ModelTimeoutError, RunLimitError
from chatplane.llm.fake import FAKE_SECRET, FakeProviderError, ScriptedChatModel
from tests.agents.helpers import run_config
from tests.conftest import make_settings

_REQUEST = httpx.Request("POST", "https://api.example.com/v1/chat/completions")


def _status_error(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    return cls("provider said no", response=httpx.Response(status, request=_REQUEST), body=None)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (TimeoutError(), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (openai.APIConnectionError(request=_REQUEST), True),
        (openai.APITimeoutError(request=_REQUEST), True),
        (_status_error(openai.RateLimitError, 429), True),
        (_status_error(openai.InternalServerError, 503), True),
        (_status_error(openai.BadRequestError, 400), False),
        (_status_error(openai.AuthenticationError, 401), False),
        (FakeProviderError("upstream said 500"), False),
        (ModelError(), False),
        (RunLimitError(), False),
        (ValueError("bug"), False),
    ],
)
def test_which_model_errors_are_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient_model_error(exc) is transient


def test_order_translation_outside_fallback_outside_retry_outside_attempt() -> None:
    settings = make_settings(fallback_models=["fake:backup"])
    (guards,) = model_guard_middleware(settings)
    kinds = [type(m) for m in guards.layers]
    assert kinds == [ModelErrorMiddleware, ModelFallbackMiddleware, ModelRetryMiddleware, ModelAttemptMiddleware]
    assert [type(m) for m in guard_middleware(settings)[0].layers] == kinds


def test_the_embedded_model_cannot_be_a_fallback() -> None:
    with pytest.raises(ConfigError, match="cannot list local:smollm2-135m"):
        model_guard_middleware(make_settings(fallback_models=["local:smollm2-135m"]))


def flaky(failures: list[BaseException], answer: str = "recovered") -> ScriptedChatModel:
    """A model that raises each of ``failures`` in turn, then answers."""

    def reply(prompt: list[BaseMessage]) -> str:
        if failures:
            raise failures.pop(0)
        return answer

    return ScriptedChatModel(replies=[reply])


async def test_transient_failures_are_retried() -> None:
    settings = make_settings(model_max_retries=2)
    model = flaky([httpx.ConnectError("refused"), _status_error(openai.RateLimitError, 429)])
    result = await build_chat(model, settings=settings).ainvoke({"messages": [HumanMessage("hi")]})
    assert result["messages"][-1].text == "recovered"
    assert model.calls == 3


async def test_other_failures_are_not_retried_and_are_translated() -> None:
    settings = make_settings(model_max_retries=2)
    model = flaky([FakeProviderError(f"bad request {FAKE_SECRET}")])
    with pytest.raises(ModelError) as raised:
        await build_chat(model, settings=settings).ainvoke({"messages": [HumanMessage("hi")]})
    assert model.calls == 1
    assert FAKE_SECRET not in raised.value.message
    assert isinstance(raised.value.__cause__, FakeProviderError)


async def test_retries_give_up_with_a_model_error() -> None:
    settings = make_settings(model_max_retries=1)
    model = flaky([httpx.ConnectError("refused")] * 5)
    with pytest.raises(ModelError):
        await build_react(model, settings=settings).ainvoke(
            {"messages": [HumanMessage("hi")]}, run_config("t", settings)
        )
    assert model.calls == 2


async def test_each_attempt_is_bounded_and_a_hang_ends_as_a_timeout() -> None:
    settings = make_settings(model_timeout_s=0.1, model_max_retries=1)
    with pytest.raises(ModelTimeoutError):
        await build_chat(ScriptedChatModel(fail="hang"), settings=settings).ainvoke({"messages": [HumanMessage("hi")]})


async def test_fallback_models_answer_when_the_main_one_fails() -> None:
    settings = make_settings(model_max_retries=0, fallback_models=["fake:the backup answers"])
    result = await build_chat(ScriptedChatModel(fail="error"), settings=settings).ainvoke(
        {"messages": [HumanMessage("hi")]}
    )
    assert result["messages"][-1].text == "the backup answers"


async def test_when_every_model_fails_the_error_is_translated() -> None:
    settings = make_settings(model_max_retries=0, fallback_models=["fake:x?fail=error"])
    with pytest.raises(ModelError):
        await build_react(ScriptedChatModel(fail="error"), settings=settings).ainvoke(
            {"messages": [HumanMessage("hi")]}, run_config("t", settings)
        )
