"""Long-term memory: LangGraph's ``BaseStore`` on chatplane's own database (``ItemStore``), every item under its owner.

One table, ``chatplane_store``, on whichever database the server runs (memory://'s in-memory SQLite, a SQLite file,
PostgreSQL): ``(owner, prefix, key)`` → a JSON value, its timestamps, its TTL and, when it is indexed, one embedding
(float32 bytes) of its indexed fields' text. The store's namespaces are ``(owner, *labels)``: the first label is the
owner, kept in a column of its own, the rest joined with ``.`` (LangGraph forbids a ``.`` in a label) as ``prefix`` —
``chatplane.storage.owner_store.OwnerStore`` hands a user (a route, a graph) the same store with the owner added and
removed, so what a client wrote is what it reads back.

**Search.** A query is embedded (off the event loop) and compared with the embeddings of the owner's items under the
namespace prefix, exactly (a dot product of unit vectors, numpy, in a worker thread): no vector extension is needed,
and SQLite here can load none, nor has Debian's PostgreSQL 15 a pgvector package. The work grows with one user's
items, not with all users' (``(owner, prefix, key)`` is the primary key); ``docs/performance.md`` has the numbers and
what to do past them (pgvector's ``ivfflat``/``hnsw`` index on PostgreSQL, where ``CREATE EXTENSION vector`` works).
Without a query, items come newest first. ``filter`` (``{"field": value}`` or ``{"field": {"$eq" | "$ne" | "$gt" |
"$gte" | "$lt" | "$lte": value}}``) is applied to the values in the process.

**TTL** (minutes, as LangGraph's): an item with one carries ``expires_at``; reads never return an expired item, a read
refreshes the expiry unless told not to (``refresh_ttl``), and the retention job deletes expired rows (``sweep``).

Why not ``langgraph.store.sqlite`` / ``langgraph.store.postgres``: each wants a connection or pool of its own, and
their vector search needs ``sqlite-vec`` / ``pgvector``, neither available here; this store shares chatplane's
connection and pool, its migrations and its unit of purge (``purge_owner``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from langgraph.store.base.embed import get_text_at_path, tokenize_path

from chatplane.errors import ChatplaneError, EmbeddingsError
from chatplane.storage import item_versions as versions
from chatplane.storage.database import Database, dumps, in_clause, loads
from chatplane.storage.item_filters import condition_holds, matches
from chatplane.storage.item_rows import item, search_item, strings, to_bytes
from chatplane.storage.item_vectors import VectorIndex

TABLE = "chatplane_store"

MIGRATION = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        owner TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        embedding BYTEA,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        ttl_minutes DOUBLE PRECISION,
        expires_at DOUBLE PRECISION,
        PRIMARY KEY (owner, prefix, key)
    )""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_recent ON {TABLE} (owner, updated_at)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_expiry ON {TABLE} (expires_at)",
]
"""The migration that adds the store (appended to ``chatplane.storage.schema.MIGRATIONS``)."""

_LIVE = "(expires_at IS NULL OR expires_at > %s)"
_QUERIES = 256


class ItemStore(BaseStore):
    """``BaseStore`` over chatplane's ``Database``; namespaces are ``(owner, *labels)`` (at least one label)."""

    supports_ttl = True

    def __init__(
        self,
        db: Database,
        *,
        embeddings: Embeddings | None = None,
        fields: Sequence[str] = ("$",),
        ttl: TTLConfig | None = None,
        max_vectors: int = 100_000,
    ) -> None:
        """``embeddings``: what indexes items and queries (None: no semantic search; a query is then ignored and
        items come newest first); ``fields``: the value's paths indexed by default (``$``: the whole value);
        ``max_vectors``: the process copy's bound (``VectorIndex``)."""
        self.db = db
        self.embeddings = embeddings
        self.fields = list(fields)
        self.ttl_config = ttl
        self.vectors = VectorIndex(db, max_vectors)
        self._queries: OrderedDict[str, bytes] = OrderedDict()
        try:  # built in the lifespan: the loop a synchronous node's calls are sent to
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    # --- BaseStore ----------------------------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """For a synchronous node (in a worker thread): the operations on the event loop the store serves."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("ItemStore.batch: the store has not been used from its event loop yet.")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("ItemStore.batch was called on the event loop: use abatch (the a-methods).")
        return asyncio.run_coroutine_threadsafe(self.abatch(ops), loop).result()

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        self._loop = asyncio.get_running_loop()
        ops = list(ops)
        vectors, versions = await self._embed_for(ops)
        results: list[Result] = []
        for index, op in enumerate(ops):
            if isinstance(op, GetOp):
                results.append(await self._get(op))
            elif isinstance(op, PutOp):
                await self._put(op, vectors.get(index))
                results.append(None)
            elif isinstance(op, SearchOp):
                results.append(await self._search(op, vectors.get(index), versions.get(index)))
            elif isinstance(op, ListNamespacesOp):
                results.append(await self._list_namespaces(op))
            else:  # pragma: no cover - LangGraph's four operations are all handled above
                raise TypeError(f"Unknown store operation {type(op).__name__}.")
        return results

    # --- embedding ----------------------------------------------------------------------------------------------
    def _texts(self, op: PutOp) -> list[str]:
        if op.value is None or op.index is False or self.embeddings is None:
            return []
        paths = self.fields if op.index is None else list(op.index)
        texts: list[str] = []
        for path in paths:
            if path == "$":  # the whole value: its text, not its JSON (field names only blur the meaning)
                texts.extend(strings(op.value))
            else:
                texts.extend(get_text_at_path(op.value, tokenize_path(path)))
        return [text for text in texts if text]

    async def _embed_for(self, ops: list[Op]) -> tuple[dict[int, bytes | None], dict[int, tuple[int | None, bool]]]:
        """The embedding each put (of its indexed text) and each search (of its query) needs, in two calls; and
        each search's owner's version as known before (``VectorIndex.searchable``), and whether it was probed."""
        if self.embeddings is None:
            return {}, {}
        documents: dict[int, str] = {}
        queries: dict[int, str] = {}
        probed: dict[int, tuple[int | None, bool]] = {}
        for index, op in enumerate(ops):
            if isinstance(op, PutOp) and (texts := self._texts(op)):
                documents[index] = "\n".join(texts)
            elif isinstance(op, SearchOp) and op.query:
                searchable, version, checked = await self.vectors.searchable(op.namespace_prefix[0])
                probed[index] = (version, checked)
                if searchable:  # (an owner with nothing searchable: no embedding, no search)
                    queries[index] = op.query
        vectors: dict[int, bytes | None] = {}
        try:
            if documents:
                embedded = await self.embeddings.aembed_documents(list(documents.values()))
                vectors.update(zip(documents, (to_bytes(vector) for vector in embedded), strict=True))
            for index, query in queries.items():
                vectors[index] = await self._query_vector(query)
        except ChatplaneError:
            raise
        except Exception as exc:  # the embeddings endpoint (or model) failed: nothing of the batch is done
            raise EmbeddingsError() from exc
        return vectors, probed

    async def _query_vector(self, query: str) -> bytes:
        """A query's embedding; the last ``_QUERIES`` kept (the same question searched again — a ReAct loop's
        tool call after the recall of the same message, a regenerated answer — is not embedded twice)."""
        vector = self._queries.get(query)
        if vector is None:
            assert self.embeddings is not None
            as_array = getattr(self.embeddings, "aembed_query_array", None)  # EndpointEmbeddings: no list of floats
            vector = to_bytes(await (as_array(query) if as_array else self.embeddings.aembed_query(query)))
            self._queries[query] = vector
            while len(self._queries) > _QUERIES:
                self._queries.popitem(last=False)
        else:
            self._queries.move_to_end(query)
        return vector

    # --- operations ---------------------------------------------------------------------------------------------
    async def _get(self, op: GetOp) -> Item | None:
        owner, prefix = _split(op.namespace)
        now = time.time()
        row = await self.db.fetchone(
            f"SELECT prefix, key, value, created_at, updated_at, ttl_minutes FROM {TABLE} "
            f"WHERE owner = %s AND prefix = %s AND key = %s AND {_LIVE}",
            (owner, prefix, op.key, now),
        )
        if row is None:
            return None
        if row["ttl_minutes"] is not None and op.refresh_ttl:
            await self._refresh(owner, [(prefix, op.key, float(row["ttl_minutes"]))], now)
        return item(owner, row)

    async def _put(self, op: PutOp, vector: bytes | None) -> None:
        owner, prefix = _split(op.namespace)
        if op.value is None:  # the delete and the owner's new version, one transaction
            done = await self.db.batch(
                [
                    (f"DELETE FROM {TABLE} WHERE owner = %s AND prefix = %s AND key = %s", (owner, prefix, op.key)),
                    versions.bump_existing(owner),
                ]
            )
            self.vectors.wrote(owner, versions.returned(done[1]), prefix, op.key, None)
            return
        now = time.time()
        ttl = op.ttl if op.ttl is not None else (self.ttl_config or {}).get("default_ttl")
        expires = now + ttl * 60 if ttl is not None else None
        # created_at survives an update; an expired row is replaced as if it were new.
        upsert = (
            f"INSERT INTO {TABLE} (owner, prefix, key, value, embedding, created_at, updated_at, ttl_minutes, "
            "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (owner, prefix, key) DO UPDATE SET value = excluded.value, embedding = excluded.embedding, "
            f"created_at = CASE WHEN {TABLE}.expires_at IS NOT NULL AND {TABLE}.expires_at <= excluded.updated_at "
            f"THEN excluded.created_at ELSE {TABLE}.created_at END, "
            "updated_at = excluded.updated_at, ttl_minutes = excluded.ttl_minutes, expires_at = excluded.expires_at",
            (owner, prefix, op.key, dumps(dict(op.value)), vector, now, now, ttl, expires),
        )
        done = await self.db.batch([upsert, versions.bump(owner)])  # the item and the owner's version together
        self.vectors.wrote(owner, versions.returned(done[1]), prefix, op.key, vector)

    async def _search(
        self, op: SearchOp, query: bytes | None, known: tuple[int | None, bool] | None
    ) -> list[SearchItem]:
        owner, prefix = _split(op.namespace_prefix, allow_root=True)
        where, params = _under(owner, prefix, time.time())
        columns = "prefix, key, value, created_at, updated_at, ttl_minutes"
        page: list[tuple[dict[str, Any], float | None]]
        if query is None and op.query and self.embeddings is not None:
            return []  # nothing of the owner's is searchable by meaning
        if query is not None:
            page = await self._closest(owner, prefix, query, op, *(known or (None, True)))
        elif op.filter:
            rows = await self.db.fetchall(
                f"SELECT {columns} FROM {TABLE} WHERE {where} ORDER BY updated_at DESC", params
            )
            matching = [row for row in rows if matches(loads(row["value"]), op.filter)]
            page = [(row, None) for row in matching[op.offset : op.offset + op.limit]]
        else:
            rows = await self.db.fetchall(
                f"SELECT {columns} FROM {TABLE} WHERE {where} ORDER BY updated_at DESC LIMIT %s OFFSET %s",
                (*params, op.limit, op.offset),
            )
            page = [(row, None) for row in rows]
        if op.refresh_ttl:
            expiring = [
                (r["prefix"], r["key"], float(r["ttl_minutes"])) for r, _ in page if r["ttl_minutes"] is not None
            ]
            if expiring:
                await self._refresh(owner, expiring, time.time())
        return [search_item(owner, row, score) for row, score in page]

    async def _closest(
        self, owner: str, prefix: str, query: bytes, op: SearchOp, version: int | None, checked: bool
    ) -> list[tuple[dict[str, Any], float | None]]:
        """The page of live items (passing the filter) most similar to ``query``: ranked in the process
        (``VectorIndex``), then read back in order, a chunk at a time, until the page is full. ``checked``: False
        when ``version`` is the process copy's, not probed: the read-back returns the owner's version too, and if
        another process wrote since, the search is done again on a current copy."""
        wanted, chunk = op.offset + op.limit, max(2 * (op.offset + op.limit), 10)
        # Without a filter, the best few chunks almost always hold the page (only expired rows drop out).
        top = None if op.filter else 4 * chunk
        ranked = await self.vectors.rank(owner, prefix, query, top, version=version)
        found, seen = await self._read_in_order(owner, ranked, chunk, wanted, op.filter)
        if not checked and (not ranked or seen != version):
            version = await self.vectors.version(owner)
            ranked = await self.vectors.rank(owner, prefix, query, top, version=version)
            found, seen = await self._read_in_order(owner, ranked, chunk, wanted, op.filter)
        if len(found) < wanted and not op.filter and len(ranked) == 4 * chunk:  # many expired: rank them all
            ranked = await self.vectors.rank(owner, prefix, query, version=version)
            found, _ = await self._read_in_order(owner, ranked, chunk, wanted, op.filter)
        return found[op.offset : wanted]

    async def _read_in_order(
        self, owner: str, ranked: list[tuple[str, str, float]], chunk: int, wanted: int, filter: dict[str, Any] | None
    ) -> tuple[list[tuple[dict[str, Any], float | None]], int | None]:
        """The live rows of ``ranked`` (passing the filter), in order, until ``wanted``; and the owner's version
        as the first read saw it (one statement: the owner's row joined with theirs)."""
        found: list[tuple[dict[str, Any], float | None]] = []
        seen: int | None = None
        for start in range(0, len(ranked), chunk):
            part = ranked[start : start + chunk]
            # the prefixes too: (owner, prefix, key) is the primary key; by owner and key alone PostgreSQL read all
            # of the owner's rows (18 ms at 10,000 items, against 0.7 ms)
            prefixes, prefix_params = in_clause(self.db.dialect, sorted({p for p, _, _ in part}))
            keys, params = in_clause(self.db.dialect, sorted({key for _, key, _ in part}))
            rows = await self.db.fetchall(
                "SELECT o.version, s.prefix, s.key, s.value, s.created_at, s.updated_at, s.ttl_minutes "
                f"FROM {versions.TABLE} o LEFT JOIN {TABLE} s ON s.owner = o.owner AND s.prefix {prefixes} "
                f"AND s.key {keys} AND (s.expires_at IS NULL OR s.expires_at > %s) WHERE o.owner = %s",
                (*prefix_params, *params, time.time(), owner),
            )
            if start == 0 and rows:
                seen = int(rows[0]["version"])
            live = {(row["prefix"], row["key"]): row for row in rows if row["key"] is not None}
            for item_prefix, key, score in part:
                row = live.get((item_prefix, key))
                if row is not None and (not filter or matches(loads(row["value"]), filter)):
                    found.append((row, score))
            if len(found) >= wanted:
                break
        return found, seen

    async def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conditions = list(op.match_conditions or ())
        owner_condition = next((c for c in conditions if c.match_type == "prefix" and c.path), None)
        if owner_condition is None or owner_condition.path[0] == "*":
            raise ValueError("ItemStore.list_namespaces needs a prefix condition that starts with the owner.")
        owner = owner_condition.path[0]
        rows = await self.db.fetchall(
            f"SELECT DISTINCT prefix FROM {TABLE} WHERE owner = %s AND {_LIVE}", (owner, time.time())
        )
        found: set[tuple[str, ...]] = set()
        for row in rows:
            namespace = (owner, *row["prefix"].split("."))
            if all(condition_holds(namespace, c) for c in conditions):
                found.add(namespace[: op.max_depth] if op.max_depth is not None else namespace)
        return sorted(found)[op.offset : op.offset + op.limit]

    async def _refresh(self, owner: str, items: list[tuple[str, str, float]], now: float) -> None:
        await self.db.batch(
            [
                (
                    f"UPDATE {TABLE} SET expires_at = %s WHERE owner = %s AND prefix = %s AND key = %s",
                    (now + ttl * 60, owner, prefix, key),
                )
                for prefix, key, ttl in items
            ]
        )

    # --- upkeep -------------------------------------------------------------------------------------------------
    async def sweep(self, now: float | None = None) -> int:
        """Delete expired items (the retention job); how many."""
        return await sweep_expired(self.db, time.time() if now is None else now)

    async def purge_owner(self, owner: str) -> int:
        """Delete every item of ``owner`` (and their version); how many."""
        done = await self.db.batch([(f"DELETE FROM {TABLE} WHERE owner = %s", (owner,)), versions.forget(owner)])
        self.vectors.forget(owner)
        return done[0][1]

    async def count(self, owner: str) -> int:
        row = await self.db.fetchone(f"SELECT count(*) AS n FROM {TABLE} WHERE owner = %s", (owner,))
        return int(row["n"]) if row else 0


async def sweep_expired(db: Database, now: float) -> int:
    """Delete the store's expired items (``chatplane.retention``), their owners' versions moved; how many."""
    done = await db.batch(
        [versions.bump_expired(now), (f"DELETE FROM {TABLE} WHERE expires_at IS NOT NULL AND expires_at <= %s", (now,))]
    )
    return done[1][1]


async def count_expired(db: Database, now: float) -> int:
    """How many store items ``sweep_expired`` would delete (a dry run)."""
    row = await db.fetchone(
        f"SELECT count(*) AS n FROM {TABLE} WHERE expires_at IS NOT NULL AND expires_at <= %s", (now,)
    )
    return int(row["n"]) if row else 0


# --- helpers ------------------------------------------------------------------------------------------------------
def _split(namespace: tuple[str, ...], *, allow_root: bool = False) -> tuple[str, str]:
    if not namespace or (len(namespace) < 2 and not allow_root):
        raise ValueError("An ItemStore namespace is (owner, label, ...).")
    return namespace[0], ".".join(namespace[1:])


def _under(owner: str, prefix: str, now: float) -> tuple[str, tuple[Any, ...]]:
    """Rows of ``owner`` at or under the namespace ``prefix`` (``""``: all of theirs), not expired."""
    if not prefix:
        return f"owner = %s AND {_LIVE}", (owner, now)
    below = prefix + "."
    # substr, not LIKE: SQLite's LIKE ignores ASCII case, and a label may hold % or _.
    return (
        f"owner = %s AND (prefix = %s OR substr(prefix, 1, %s) = %s) AND {_LIVE}",
        (owner, prefix, len(below), below, now),
    )
