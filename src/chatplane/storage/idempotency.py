"""Idempotency keys: a request that creates a run, sent again with the same key, gets the first one's run.

A client that lost the answer to a message it sent (a 503, a dropped connection) cannot know whether it was
accepted. With an ``Idempotency-Key`` it sends the same request again and gets the run the first one created —
never a second message. The key is claimed in the transaction that accepts the run (``TurnStore.accept``):

1. the owner's expired claims are dropped, this key's among them (older than ``CHATPLANE_IDEMPOTENCY_TTL_S``);
2. the key is claimed for the new run (``ON CONFLICT DO NOTHING``: a concurrent claim in another process waits
   for this transaction, then does nothing);
3. the run is inserted only if this transaction's claim stands (``RunStore.accept_statement``'s ``claimed_by``);
4. a claim whose run was not inserted (the thread is busy, or not the caller's) is dropped again.

So a key and its run are stored together or not at all, whatever the interleaving: ``claimed`` then tells a
replay (the same request hash: its run) from a key reused for another request (``IdempotencyConflictError``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from chatplane.storage.database import Database, Statement


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key for one request, and a digest of that request (what makes a retry the same request)."""

    key: str
    request_hash: str
    ttl_s: float = 86_400.0
    """How long the key stands (``CHATPLANE_IDEMPOTENCY_TTL_S``)."""

    @classmethod
    def of(cls, key: str, *parts: Any) -> IdempotencyKey:
        """The key with a digest of the request's ``parts`` (its route, target and body, as JSON)."""
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
        return cls(key, hashlib.sha256(text.encode()).hexdigest())


class KeyClaimedError(Exception):
    """The key was claimed (for another run) before this transaction's claim: it rolls back."""


@dataclass(frozen=True)
class Claim:
    run_id: str
    request_hash: str


def claim_statements(owner: str, key: IdempotencyKey, run_id: str) -> list[Statement]:
    """Steps 1 and 2, before the run's insert (same transaction)."""
    now = time.time()
    return [
        (  # the owner's expired claims, this key's among them: the table holds what still stands, per owner
            "DELETE FROM chatplane_idempotency WHERE owner = %s AND created_at < %s",
            (owner, now - key.ttl_s),
        ),
        (
            "INSERT INTO chatplane_idempotency (owner, idem_key, request_hash, run_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (owner, key.key, key.request_hash, run_id, now),
        ),
    ]


def claimed_by_clause() -> str:
    """SQL the run's insert adds to its ``WHERE``: this transaction's claim stands (params: ``claimed_params``)."""
    return (
        " AND EXISTS (SELECT 1 FROM chatplane_idempotency i WHERE i.owner = %s AND i.idem_key = %s AND i.run_id = %s)"
    )


def claimed_params(owner: str, key: IdempotencyKey, run_id: str) -> list[Any]:
    return [owner, key.key, run_id]


def release_statement(owner: str, key: IdempotencyKey, run_id: str) -> Statement:
    """Step 4, after the run's insert: the claim goes if its run was not inserted."""
    return (
        "DELETE FROM chatplane_idempotency WHERE owner = %s AND idem_key = %s AND run_id = %s "
        "AND NOT EXISTS (SELECT 1 FROM chatplane_runs r WHERE r.run_id = %s)",
        (owner, key.key, run_id, run_id),
    )


async def claimed(db: Database, owner: str, key: IdempotencyKey) -> Claim | None:
    """The standing claim of ``key`` by ``owner`` (None if there is none, or it expired)."""
    row = await db.fetchone(
        "SELECT run_id, request_hash FROM chatplane_idempotency WHERE owner = %s AND idem_key = %s "
        "AND created_at >= %s",
        (owner, key.key, time.time() - key.ttl_s),
    )
    return Claim(str(row["run_id"]), str(row["request_hash"])) if row else None
