"""Chat models by id: ``make_chat_model("provider:model", settings)``.

==================  ============================================================================================
``openai:<model>``  ``ChatOpenAI`` (with a lean streaming path: ``chatplane.llm.openai``); key from
                    ``OPENAI_API_KEY``, endpoint from ``OPENAI_BASE_URL`` (any OpenAI-compatible server: vLLM,
                    Ollama, llama.cpp, LiteLLM ...)
``local:<name>``    the embedded llama.cpp server (``local:smollm2-135m``), reached through ``ChatOpenAI`` too
``fake:<script>``   ``ScriptedChatModel`` for tests and demos (see ``chatplane.llm.fake``)
==================  ============================================================================================

``open_chat_model`` is the async context manager the agent uses: it starts what the model needs (the embedded
server) and gives a ``ModelHandle`` with a readiness probe. Nothing here runs at import time.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from chatplane.config import Settings
from chatplane.errors import ConfigError
from chatplane.llm.fake import ScriptedChatModel

PROVIDERS = ("openai", "local", "fake")
LOCAL_DEFAULT_MAX_TOKENS = 512
_PING_CACHE_S = 15.0


def parse_model_id(model_id: str) -> tuple[str, str]:
    provider, sep, name = model_id.partition(":")
    if not sep or provider not in PROVIDERS or not name:
        raise ConfigError(
            f"Unknown model {model_id!r}: use `openai:<model>`, `local:smollm2-135m` or `fake:<script>` "
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
    for chat completions (``open_chat_model`` passes both, on aiohttp; see ``chatplane.llm.openai``)."""
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


async def _langsmith_to_thread(
    default: Callable[..., Awaitable[Any]],
    ctx: contextvars.Context,
    func: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """LangChain wraps every agent middleware's model/tool hook in LangSmith's ``traceable``, which by default
    hops to a worker thread twice per hook and call (set-up and end of a trace span) and starts a task for the
    hook itself — a dozen thread round trips per model call. With LangSmith tracing off, set-up and end only
    read context variables: run them here, on the loop. With tracing on, keep LangSmith's own way."""
    from langsmith.utils import tracing_is_enabled

    if ctx.run(tracing_is_enabled):
        return await default(ctx, func, *args, **kwargs)
    return ctx.run(func, *args, **kwargs)


def install_langsmith_inline() -> None:
    """Install ``_langsmith_to_thread`` as LangSmith's ``aio_to_thread`` (idempotent; another override set by the
    embedding application is left alone)."""
    try:
        import langsmith
        from langsmith._runtime_overrides import get_runtime_overrides
    except ImportError:  # pragma: no cover - langsmith comes with langchain
        return
    current = get_runtime_overrides().aio_to_thread
    if current is None:
        langsmith.set_runtime_overrides(aio_to_thread=_langsmith_to_thread)


def _model_http_client() -> Any:
    """The ``openai`` SDK's client on aiohttp's transport (its ``aiohttp`` extra), which reads responses with a
    parser in C; the SDK's default (``httpx2`` over ``httpcore2`` and ``anyio``) spent about a tenth of a turn's CPU
    on one model call in ``benchmarks/profile.py``. Same timeouts, limits and errors. Chat completions go around it
    (``_model_http_session``); it serves the rest (structured output, the Responses API ...) and sets the proxy."""
    from openai import DefaultAioHttpClient

    return DefaultAioHttpClient()


@functools.cache
def _ssl_context() -> Any:
    """The TLS settings of the SDK's clients (reads the CA bundle: a fifth of a second; made once)."""
    import httpx2

    return httpx2.create_ssl_context()


async def _model_http_session() -> Any:
    """The ``aiohttp.ClientSession`` that ``LeanChatOpenAI`` posts chat completions on: the connection limits,
    keep-alive and TLS verification of the SDK's aiohttp client (``DefaultAioHttpClient``). Proxies are the SDK
    client's (from the environment, like ``httpx``), passed per request; the session's own ``trust_env`` is off, as
    it would look them up in a worker thread on every request."""
    import aiohttp
    from openai._constants import DEFAULT_CONNECTION_LIMITS

    ssl_context = await asyncio.to_thread(_ssl_context)
    connector = aiohttp.TCPConnector(
        limit=DEFAULT_CONNECTION_LIMITS.max_connections or 0,
        keepalive_timeout=DEFAULT_CONNECTION_LIMITS.keepalive_expiry,
        ssl=ssl_context,
    )
    return aiohttp.ClientSession(connector=connector)


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
        http = await stack.enter_async_context(httpx.AsyncClient())
        model_http = _model_http_client()
        stack.push_async_callback(model_http.aclose)
        model_session = await _model_http_session()
        stack.push_async_callback(model_session.close)
        if provider == "local":
            from chatplane.llm.local import EmbeddedLlamaServer, find_model_file

            server = EmbeddedLlamaServer(find_model_file(name, settings), settings)
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
