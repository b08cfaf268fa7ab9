"""Chat models by id: ``make_chat_model("provider:model", settings)``.

==================  ============================================================================================
``openai:<model>``  ``ChatOpenAI`` (with a lean streaming path: ``chatplane.llm.openai``); key from
                    ``OPENAI_API_KEY``, endpoint from ``OPENAI_BASE_URL`` (any OpenAI-compatible server: vLLM,
                    Ollama, llama.cpp, LiteLLM ...)
``local:<name>``    the embedded llama.cpp server (``local:qwen2.5-coder-1.5b``, ``local:/path/to/file.gguf``:
                    ``chatplane.llm.models``), reached through ``ChatOpenAI`` too
``fake:<script>``   ``ScriptedChatModel`` for tests and demos (see ``chatplane.llm.fake``)
==================  ============================================================================================

``open_chat_model`` is the async context manager the agent uses: it starts what the model needs (the embedded
server, the HTTP clients, LangSmith's on-loop hook: ``chatplane.llm.langsmith_inline``) and gives a ``ModelHandle``
with a readiness probe. Nothing here runs at import time; the modules behind ``openai:`` and ``local:`` are imported
when a model of theirs is built.

The package: ``openai`` (``LeanChatOpenAI``) and ``openai_direct`` (its requests posted on aiohttp), ``local`` (the
embedded llama.cpp server), ``fake`` (the scripted model), ``langsmith_inline``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from chatplane.config import Settings
from chatplane.errors import ConfigError
from chatplane.llm.fake import ScriptedChatModel
from chatplane.llm.langsmith_inline import install_langsmith_inline

__all__ = [
    "LOCAL_DEFAULT_MAX_TOKENS",
    "PROVIDERS",
    "ModelHandle",
    "install_langsmith_inline",
    "make_chat_model",
    "open_chat_model",
    "parse_model_id",
]

PROVIDERS = ("openai", "local", "fake")
LOCAL_DEFAULT_MAX_TOKENS = 512
_PING_CACHE_S = 15.0


def parse_model_id(model_id: str) -> tuple[str, str]:
    provider, sep, name = model_id.partition(":")
    if not sep or provider not in PROVIDERS or not name:
        raise ConfigError(
            f"Unknown model {model_id!r}: use `openai:<model>`, `local:qwen2.5-coder-1.5b` or `fake:<script>` "
            "(CHATPLANE_MODEL)."
        )
    return provider, name


def make_chat_model(
    model_id: str,
    settings: Settings,
    *,
    base_url: str | None = None,
    http_client: Any = None,
    http_session: Any = None,
) -> BaseChatModel:
    """Build the chat model named by ``model_id``. ``local:`` models need ``base_url`` of a running server.
    ``http_client``: the ``openai`` SDK's async HTTP client to use; ``http_session``: an ``aiohttp.ClientSession``
    for chat completions (``open_chat_model`` passes both, on aiohttp; see ``chatplane.llm.openai_direct``)."""
    provider, name = parse_model_id(model_id)
    if provider == "fake":
        return ScriptedChatModel.from_spec(name)
    from chatplane.llm.openai import LeanChatOpenAI  # imported on use: langchain_openai is heavy

    if provider == "local":
        if base_url is None:
            raise ConfigError("local: models are started by open_chat_model(); use it instead of make_chat_model().")
        return LeanChatOpenAI(
            model=name,
            api_key=SecretStr("embedded"),
            base_url=f"{base_url}/v1",
            timeout=settings.model_timeout_s,
            max_retries=0,  # the agents' ModelRetryMiddleware retries (with backoff and jitter), not the client
            temperature=settings.temperature,
            max_completion_tokens=settings.max_output_tokens or LOCAL_DEFAULT_MAX_TOKENS,
            stream_usage=True,
            http_async_client=http_client,
            http_session=http_session,
        )
    key = settings.openai_api_key
    if key is None and settings.openai_base_url is None:
        raise ConfigError(
            f"The model {model_id} needs an API key: set OPENAI_API_KEY (or CHATPLANE_OPENAI_API_KEY). "
            "For an OpenAI-compatible server without keys, set OPENAI_BASE_URL."
        )
    return LeanChatOpenAI(
        model=name,
        api_key=key or SecretStr("not-needed"),
        base_url=settings.openai_base_url,
        timeout=settings.model_timeout_s,
        max_retries=0,  # the agents' ModelRetryMiddleware retries (with backoff and jitter), not the client
        temperature=settings.temperature,
        max_completion_tokens=settings.max_output_tokens,
        stream_usage=True,
        http_async_client=http_client,
        http_session=http_session,
    )


@dataclass
class ModelHandle:
    """A ready chat model and how to tell whether its backend answers."""

    model: BaseChatModel
    model_id: str
    probe_url: str | None = None
    probe_headers: dict[str, str] = field(default_factory=dict)
    _http: httpx.AsyncClient | None = None
    _last_ok: float = 0.0

    async def ping(self) -> bool:
        """True when the model's server answers (cached for a few seconds; no tokens are spent)."""
        if self.probe_url is None or self._http is None:
            return True
        if time.monotonic() - self._last_ok < _PING_CACHE_S:
            return True
        try:
            response = await self._http.get(self.probe_url, headers=self.probe_headers, timeout=2.0)
        except httpx.HTTPError:
            return False
        if response.status_code < 500:
            self._last_ok = time.monotonic()
            return True
        return False


@asynccontextmanager
async def open_chat_model(
    model_id: str, settings: Settings, *, model: BaseChatModel | None = None
) -> AsyncIterator[ModelHandle]:
    """Start what ``model_id`` needs and yield its handle; stop it on exit. ``model`` overrides the built one."""
    provider, name = parse_model_id(model_id)
    install_langsmith_inline()
    async with AsyncExitStack() as stack:
        if model is not None or provider == "fake":
            yield ModelHandle(model or make_chat_model(model_id, settings), model_id)
            return
        from chatplane.llm.openai_direct import model_http_client, model_http_session  # heavy: on use

        http = await stack.enter_async_context(httpx.AsyncClient())
        model_http = model_http_client()
        stack.push_async_callback(model_http.aclose)
        model_session = await model_http_session(keepalive=provider != "local")
        stack.push_async_callback(model_session.close)
        if provider == "local":
            from chatplane.llm.local import EmbeddedLlamaServer, find_model_file

            model_file = await asyncio.to_thread(find_model_file, name, settings)  # may hash a large file
            server = EmbeddedLlamaServer(model_file, settings)
            await server.start()
            stack.push_async_callback(server.stop)
            built = make_chat_model(
                model_id, settings, base_url=server.base_url, http_client=model_http, http_session=model_session
            )
            yield ModelHandle(built, model_id, f"{server.base_url}/health", _http=http)
            return
        built = make_chat_model(model_id, settings, http_client=model_http, http_session=model_session)
        base = (settings.openai_base_url or "https://api.openai.com/v1").rstrip("/")
        headers = {}
        if settings.openai_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.openai_api_key.get_secret_value()}"
        yield ModelHandle(built, model_id, f"{base}/models", headers, _http=http)
