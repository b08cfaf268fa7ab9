"""Exact similarity search over one owner's embeddings, with a copy of them kept in the process (``VectorIndex``).

Reading every vector of a user from the database on each search costs a transfer of ~1.5 KB per item (10,000 items:
15 MB, most of a search's time). The index keeps each recently searched owner's vectors as one numpy matrix, with
the owner's version (``chatplane.storage.item_versions``: one row per owner that every write — by any process —
changes in its own transaction) read before the vectors were. A search probes that row (one index lookup): the same
version, the copy is current; another, it is read again whole. A write of this process that moved the version by
exactly one (nobody else wrote in between) patches the copy instead (``wrote``). Expiry is not in the copy: the rows
ranked first are read back with the live filter (``ItemStore``), so an expired or deleted item never comes out.

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
from chatplane.storage.item_versions import VERSION_SQL

_TABLE = "chatplane_store"
INLINE_FLOATS = 256 * 1024
"""A copy this small (~680 vectors of 384 dimensions) is ranked on the event loop, a larger one in a worker thread."""


@dataclass
class _Copy:
    version: int | None
    prefixes: list[str]
    keys: list[str]
    matrix: Any  # np.ndarray, float32 (items × dimensions), unit rows
    masks: dict[str, Any] = field(default_factory=dict)  # namespace prefix → boolean mask of its rows
    positions: dict[tuple[str, str], int] | None = None  # (prefix, key) → row, made at the first patch


def _build(rows: list[dict[str, Any]], dims: int) -> tuple[list[str], list[str], Any]:
    usable = [row for row in rows if len(bytes(row["embedding"])) == dims * 4]  # another model's vectors: skipped
    matrix = np.frombuffer(b"".join(bytes(row["embedding"]) for row in usable), dtype=np.float32)
    return [r["prefix"] for r in usable], [r["key"] for r in usable], matrix.reshape(len(usable), dims)


def _under(item_prefix: str, prefix: str) -> bool:
    return item_prefix == prefix or item_prefix.startswith(prefix + ".")


def _mask(copy: _Copy, prefix: str) -> Any:
    mask = copy.masks.get(prefix)
    if mask is None:
        mask = np.fromiter((_under(p, prefix) for p in copy.prefixes), bool, len(copy.prefixes))
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
    prefixes, keys = copy.prefixes, copy.keys  # Python ints and floats: numpy's scalars cost ~1 µs a lookup
    return [(prefixes[r], keys[r], s) for r, s in zip(rows[order].tolist(), scores[order].tolist(), strict=True)]


def _patched(copy: _Copy, version: int, prefix: str, key: str, vector: bytes | None) -> _Copy | None:
    """``copy`` after one write of ``(prefix, key)`` (None: a vector of other dimensions; read it again). A new
    copy: a search ranking the old one in a worker thread keeps it whole."""
    positions = copy.positions
    if positions is None:
        positions = {pair: row for row, pair in enumerate(zip(copy.prefixes, copy.keys, strict=True))}
    at = positions.get((prefix, key))
    prefixes, keys, masks = list(copy.prefixes), list(copy.keys), dict(copy.masks)
    if vector is None:  # deleted, or no longer indexed: the last row takes its place
        if at is None:
            return _Copy(version, prefixes, keys, copy.matrix, masks, positions)
        last = len(keys) - 1
        matrix = copy.matrix[:last].copy()
        del positions[(prefix, key)]
        if at != last:
            matrix[at] = copy.matrix[last]
            prefixes[at], keys[at] = prefixes[last], keys[last]
            positions[(prefixes[at], keys[at])] = at
            masks = {p: _moved(m, at) for p, m in masks.items()}
        else:
            masks = {p: m[:last] for p, m in masks.items()}
        del prefixes[last], keys[last]
        return _Copy(version, prefixes, keys, matrix, masks, positions)
    row = np.frombuffer(vector, dtype=np.float32)
    if copy.matrix.shape[0] and row.size != copy.matrix.shape[1]:
        return None
    if at is not None:
        matrix = copy.matrix.copy()
        matrix[at] = row
    else:
        matrix = np.vstack([copy.matrix.reshape(-1, row.size), row[None, :]])
        positions[(prefix, key)] = len(keys)
        prefixes.append(prefix)
        keys.append(key)
        masks = {p: np.append(m, _under(prefix, p)) for p, m in masks.items()}
    return _Copy(version, prefixes, keys, matrix, masks, positions)


def _moved(mask: Any, at: int) -> Any:
    moved = mask[:-1].copy()
    moved[at] = mask[-1]
    return moved


class VectorIndex:
    def __init__(self, db: Database, max_vectors: int = 100_000) -> None:
        self.db = db
        self.max_vectors = max_vectors
        self._copies: OrderedDict[str, _Copy] = OrderedDict()

    async def version(self, owner: str) -> int | None:
        """The owner's version now (None: they have no items)."""
        row = await self.db.fetchone(VERSION_SQL, (owner,))
        return int(row["version"]) if row else None

    async def searchable(self, owner: str) -> tuple[bool, int | None, bool]:
        """Whether ``owner`` has any item with a vector, their version (to give ``rank``) and whether it was probed
        now. With a copy that has vectors, none is asked for: the copy's version, which the search's read-back
        checks (``ItemStore``); else one probe (and when the copy is not current, a look for one vector)."""
        copy = self._copies.get(owner)
        if copy is not None and copy.version is not None and copy.matrix.shape[0] > 0:
            return True, copy.version, False
        version = await self.version(owner)
        if version is None:
            return False, None, True
        if copy is not None and copy.version == version:
            return copy.matrix.shape[0] > 0, version, True
        row = await self.db.fetchone(
            f"SELECT 1 AS found FROM {_TABLE} WHERE owner = %s AND embedding IS NOT NULL LIMIT 1", (owner,)
        )
        return row is not None, version, True

    async def rank(
        self, owner: str, prefix: str, query: bytes, top: int | None = None, *, version: int | None = None
    ) -> list[tuple[str, str, float]]:
        """The ``top`` (None: every) indexed items of ``owner`` at or under ``prefix`` (expired ones too), most
        similar first: ``(prefix, key, score)``. ``version``: the owner's, probed by the caller (else probed here)."""
        wanted = np.frombuffer(query, dtype=np.float32)
        copy = await self._copy(owner, wanted.size, version if version is not None else await self.version(owner))
        if copy.matrix.size <= INLINE_FLOATS:  # ~0.1 ms of work: less than the hop to a worker thread costs
            return _rank(copy, prefix, wanted, top)
        return await asyncio.to_thread(_rank, copy, prefix, wanted, top)

    async def _copy(self, owner: str, dims: int, version: int | None) -> _Copy:
        copy = self._copies.get(owner)
        if copy is not None and copy.version == version and copy.matrix.shape[1:] == (dims,):
            self._copies.move_to_end(owner)
            return copy
        # read after the version: a write committed in between makes the next probe read them again
        rows = await self.db.fetchall(
            f"SELECT prefix, key, embedding FROM {_TABLE} WHERE owner = %s AND embedding IS NOT NULL", (owner,)
        )
        prefixes, keys, matrix = await asyncio.to_thread(_build, rows, dims)
        copy = _Copy(version, prefixes, keys, matrix)
        self._keep(owner, copy)
        return copy

    def _keep(self, owner: str, copy: _Copy) -> None:
        self._copies.pop(owner, None)
        if len(copy.keys) <= self.max_vectors:
            self._copies[owner] = copy
            while sum(c.matrix.shape[0] for c in self._copies.values()) > self.max_vectors:
                self._copies.popitem(last=False)

    def wrote(self, owner: str, version: int | None, prefix: str, key: str, vector: bytes | None) -> None:
        """This process wrote ``(prefix, key)`` of ``owner`` (``vector``: its new one; None: deleted or not indexed),
        moving them to ``version``. Patches the copy when no other write came in between; else it is left to be read
        again at the next search."""
        copy = self._copies.get(owner)
        if copy is None or version is None or copy.version is None or version != copy.version + 1:
            return
        patched = _patched(copy, version, prefix, key, vector)
        if patched is None:
            self._copies.pop(owner, None)
        else:
            self._keep(owner, patched)

    def forget(self, owner: str) -> None:
        self._copies.pop(owner, None)
