"""Exact similarity search over one owner's embeddings, with a copy of them kept in the process (``VectorIndex``).

Reading every vector of a user from the database on each search costs a transfer of ~1.5 KB per item (10,000 items:
15 MB, most of a search's time). The index keeps each recently searched owner's vectors as one numpy matrix, and
checks before each search that the table still holds what the copy was made from: one indexed aggregate over the
owner's rows (their count, and the largest and the sum of their ``updated_at``), which every insert, update and
delete — by any process — changes. A stale copy is read again whole. Expiry is not in the copy: the rows ranked
first are read back with the live filter (``ItemStore``), so an expired item never comes out.

Bounded: at most ``max_vectors`` vectors in all (least recently searched owners go first); an owner with more is
ranked from the database each time, uncached.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chatplane.storage.database import Database

_TABLE = "chatplane_store"


@dataclass
class _Copy:
    signature: tuple[Any, ...]
    prefixes: list[str]
    keys: list[str]
    matrix: Any  # np.ndarray, float32 (items × dimensions), unit rows
    masks: dict[str, Any] = field(default_factory=dict)  # namespace prefix → boolean mask of its rows


def _build(rows: list[dict[str, Any]], dims: int) -> tuple[list[str], list[str], Any]:
    usable = [row for row in rows if len(bytes(row["embedding"])) == dims * 4]  # another model's vectors: skipped
    matrix = np.frombuffer(b"".join(bytes(row["embedding"]) for row in usable), dtype=np.float32)
    return [r["prefix"] for r in usable], [r["key"] for r in usable], matrix.reshape(len(usable), dims)


def _mask(copy: _Copy, prefix: str) -> Any:
    mask = copy.masks.get(prefix)
    if mask is None:
        below = prefix + "."
        mask = np.fromiter((p == prefix or p.startswith(below) for p in copy.prefixes), bool, len(copy.prefixes))
        copy.masks[prefix] = mask
    return mask


def _rank(copy: _Copy, prefix: str, query: Any, top: int | None) -> list[tuple[str, str, float]]:
    if copy.matrix.shape[0] == 0 or copy.matrix.shape[1] != query.size:
        return []
    # All of the owner's rows (cheaper than copying out those under the prefix), with einsum's own loop rather than
    # BLAS: OpenBLAS spreads a matrix-vector product over threads that spin, 4x the CPU for the same result here.
    scores = np.einsum("ij,j->i", copy.matrix, query)
    if prefix:
        rows = np.flatnonzero(_mask(copy, prefix))
        scores = scores[rows]
    else:
        rows = np.arange(copy.matrix.shape[0])
    if top is not None and top < scores.size:
        best = np.argpartition(-scores, top)[:top]
        order = best[np.argsort(-scores[best], kind="stable")]
    else:
        order = np.argsort(-scores, kind="stable")
    return [(copy.prefixes[rows[i]], copy.keys[rows[i]], float(scores[i])) for i in order]


class VectorIndex:
    def __init__(self, db: Database, max_vectors: int = 100_000) -> None:
        self.db = db
        self.max_vectors = max_vectors
        self._copies: OrderedDict[str, _Copy] = OrderedDict()

    async def rank(self, owner: str, prefix: str, query: bytes, top: int | None = None) -> list[tuple[str, str, float]]:
        """The ``top`` (None: every) indexed items of ``owner`` at or under ``prefix`` (expired ones too), most
        similar first: ``(prefix, key, score)``."""
        wanted = np.frombuffer(query, dtype=np.float32)
        copy = await self._copy(owner, wanted.size)
        return await asyncio.to_thread(_rank, copy, prefix, wanted, top)

    async def _copy(self, owner: str, dims: int) -> _Copy:
        row = await self.db.fetchone(
            # all the owner's rows, not only those with a vector: the (owner, updated_at) index answers it alone
            f"SELECT count(*) AS n, max(updated_at) AS newest, sum(updated_at) AS total FROM {_TABLE} WHERE owner = %s",
            (owner,),
        )
        signature = (row["n"], row["newest"], row["total"]) if row else (0, None, None)
        copy = self._copies.get(owner)
        if copy is not None and copy.signature == signature and copy.matrix.shape[1:] == (dims,):
            self._copies.move_to_end(owner)
            return copy
        rows = await self.db.fetchall(
            f"SELECT prefix, key, embedding FROM {_TABLE} WHERE owner = %s AND embedding IS NOT NULL", (owner,)
        )
        prefixes, keys, matrix = await asyncio.to_thread(_build, rows, dims)
        copy = _Copy(signature, prefixes, keys, matrix)
        self._copies.pop(owner, None)
        if len(keys) <= self.max_vectors:
            self._copies[owner] = copy
            while sum(c.matrix.shape[0] for c in self._copies.values()) > self.max_vectors:
                self._copies.popitem(last=False)
        return copy

    def forget(self, owner: str) -> None:
        self._copies.pop(owner, None)
