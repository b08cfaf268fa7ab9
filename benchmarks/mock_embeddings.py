"""The mock server's ``POST /v1/embeddings``: OpenAI's request and response shapes, with deterministic vectors that
carry some meaning — a hashed bag of words (``DIMENSIONS`` buckets, unit length) — so texts sharing words are close.
Enough to test the store's ``openai:<model>`` path end to end and to measure it without a real model.

``encoding_format: "base64"`` is answered as OpenAI answers it: each vector as base64 of its little-endian float32
bytes; ``"float"`` (or none) as a list of numbers."""

from __future__ import annotations

import base64
import hashlib
import math
import re
from typing import Any

import numpy as np

DIMENSIONS = 256
_WORD = re.compile(r"[a-z0-9]+")


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in _WORD.findall(text.lower()):
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % DIMENSIONS
        vector[bucket] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _encoded(text: str, encoding: str) -> list[float] | str:
    vector = embed(text)
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


def embeddings_response(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to an embeddings request (``input``: a string or a list of them); ``ValueError`` if malformed."""
    given = request["input"]
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError("input must be a string or a list of strings")
    encoding = request.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ValueError("encoding_format must be float or base64")
    tokens = sum(len(_WORD.findall(t)) for t in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": _encoded(t, encoding)} for i, t in enumerate(texts)],
        "model": str(request.get("model", "mock-embed")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
