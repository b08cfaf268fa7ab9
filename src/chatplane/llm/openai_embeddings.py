"""An OpenAI-compatible ``/v1/embeddings`` endpoint posted to on aiohttp (``EndpointEmbeddings``), for
``CHATPLANE_EMBEDDINGS=openai:<model>``.

Not ``langchain_openai.OpenAIEmbeddings``: its request went through the ``openai`` SDK's machinery and the vectors
came back as JSON floats, which made recall add about 4 ms of CPU to a turn; here one request per call — on
kept-alive connections of its own (``chatplane.llm.lean_post``: aiohttp's per-request machinery was most of what
recall still cost), or on aiohttp (``model_http_session``) through a proxy — asks for ``encoding_format: "base64"``
(OpenAI's and most compatible servers' compact form: the float32 bytes, decoded with ``numpy.frombuffer``) and takes
a list of floats from a server that sends one anyway. The store's query path takes the vector as an array
(``aembed_query_array``), with no list of floats in between.

Failures are chatplane's errors, with nothing of the endpoint's answer or the key in them: a connection refused or
reset, a 429 or a 502/503/504 from the endpoint → ``EmbeddingsUnavailableError`` (503); no answer within the model
timeout → ``EmbeddingsTimeoutError`` (504); another error status or a malformed answer → ``EmbeddingsError`` (502).
A failed request is tried once more (as the SDK's ``max_retries=1`` did) unless it timed out.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Any

import aiohttp
import numpy as np
import orjson
from langchain_core.embeddings import Embeddings
from yarl import URL

from chatplane.errors import EmbeddingsError, EmbeddingsTimeoutError, EmbeddingsUnavailableError
from chatplane.llm.lean_post import LeanPost

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_UNAVAILABLE = frozenset({429, 502, 503, 504})


def _array(embedding: Any) -> Any:
    if isinstance(embedding, str):  # base64 of little-endian float32
        return np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4")
    if isinstance(embedding, list) and all(isinstance(x, int | float) for x in embedding):
        return np.array(embedding, dtype=np.float64)
    raise EmbeddingsError()


def parse_arrays(raw: bytes, count: int) -> list[Any]:
    """The ``count`` vectors of an embeddings answer (numpy arrays), in the order of the inputs; ``EmbeddingsError``
    if malformed."""
    try:
        data = orjson.loads(raw)["data"]
        ordered = sorted(data, key=lambda entry: int(entry["index"]))
        vectors = [_array(entry["embedding"]) for entry in ordered]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EmbeddingsError() from exc
    if len(vectors) != count or len({v.size for v in vectors}) > 1 or not vectors or not vectors[0].size:
        raise EmbeddingsError()
    return vectors


def parse(raw: bytes, count: int) -> list[list[float]]:
    """``parse_arrays`` as lists of floats."""
    return [vector.tolist() for vector in parse_arrays(raw, count)]


class EndpointEmbeddings(Embeddings):
    """``model`` at an OpenAI-compatible endpoint; async only (the store embeds on the event loop's side)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Posted on ``session`` through a ``proxy``, else on a ``LeanPost`` of its own (TLS: ``ssl_context``)."""
        self.session = session
        self.model = model
        self.url = URL((base_url or DEFAULT_BASE_URL).rstrip("/") + "/embeddings")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.timeout_s = timeout_s
        self.proxy = proxy
        self._lean = None if proxy else LeanPost(self.url, self._headers, ssl_context=ssl_context)

    async def _post(self, texts: list[str]) -> bytes:
        body = orjson.dumps({"model": self.model, "input": texts, "encoding_format": "base64"})
        if self._lean is not None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    status, raw = await self._lean.post(body)
            except ValueError as exc:  # not an HTTP answer
                raise EmbeddingsError() from exc
            if status in _UNAVAILABLE:
                raise EmbeddingsUnavailableError()
            if status >= 400:
                raise EmbeddingsError()
            return raw
        async with self.session.post(
            self.url, data=body, headers=self._headers, timeout=self._timeout, proxy=self.proxy
        ) as response:
            raw = await response.read()
            if response.status in _UNAVAILABLE:
                raise EmbeddingsUnavailableError()
            if response.status >= 400:
                raise EmbeddingsError()
            return raw

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return [vector.tolist() for vector in await self.aembed_arrays(texts)]

    async def aembed_query_array(self, text: str) -> Any:
        """The query's vector as a numpy array (the store's query path: no list of floats made and read back)."""
        return (await self.aembed_arrays([text]))[0]

    async def aembed_arrays(self, texts: list[str]) -> list[Any]:
        """The texts' vectors as numpy arrays."""
        if not texts:
            return []
        try:
            try:
                return parse_arrays(await self._post(texts), len(texts))
            except (aiohttp.ClientError, EmbeddingsUnavailableError, OSError) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                return parse_arrays(await self._post(texts), len(texts))  # once more, as the SDK's max_retries=1
        except TimeoutError as exc:
            raise EmbeddingsTimeoutError() from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise EmbeddingsUnavailableError() from exc

    def close(self) -> None:
        """Close the kept-alive connections (the session is the caller's)."""
        if self._lean is not None:
            self._lean.close()

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError("EndpointEmbeddings is async only: use aembed_documents.")

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError("EndpointEmbeddings is async only: use aembed_query.")
