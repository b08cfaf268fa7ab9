"""Webhook deliveries and their attempts, and each user's signing secret (``WebhookStore``).

A run that names a webhook gets one delivery row (its run id is the key: one delivery per run, however many times
its end is reported): ``waiting`` from its acceptance, ``pending`` (due) once it has ended. The row written at
acceptance lets a run's end be reported even if the process that recorded it died before telling the dispatcher:
``ended_waiting`` finds such rows by their run's status. Deliveries are the queue: any process claims due ones the
way schedules are claimed (``SKIP LOCKED`` and a lease on PostgreSQL), so a delivery waiting for its next attempt
survives a restart and is made by exactly one process. Every attempt is a row of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from chatplane.storage import claims
from chatplane.storage.database import INTEGRITY_ERRORS, Database, Row, dumps, loads

DeliveryStatus = Literal["waiting", "pending", "delivered", "failed"]
_COLUMNS = "run_id, owner, url, payload, status, attempts, created_at, next_attempt_at, give_up_at, finished_at"


@dataclass(frozen=True)
class Attempt:
    attempt: int
    url: str
    at: float
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class Delivery:
    run_id: str
    owner: str
    url: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    created_at: float
    next_attempt_at: float | None
    give_up_at: float
    finished_at: float | None
    history: list[Attempt] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Row) -> Delivery:
        return cls(
            run_id=row["run_id"],
            owner=row["owner"],
            url=row["url"],
            payload=loads(row["payload"]),
            status=row["status"],
            attempts=int(row["attempts"]),
            created_at=float(row["created_at"]),
            next_attempt_at=row["next_attempt_at"],
            give_up_at=float(row["give_up_at"]),
            finished_at=row["finished_at"],
        )


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- secrets --------------------------------------------------------------------------------------------------
    async def secret(self, owner: str, new: str) -> str:
        """``owner``'s signing secret; ``new`` becomes it if they have none yet."""
        row = await self.db.fetchone("SELECT secret FROM chatplane_webhook_secrets WHERE owner = %s", (owner,))
        if row is not None:
            return str(row["secret"])
        try:
            await self.db.execute(
                "INSERT INTO chatplane_webhook_secrets (owner, secret, created_at) VALUES (%s, %s, %s)",
                (owner, new, time.time()),
            )
        except INTEGRITY_ERRORS:
            pass  # made by a concurrent call: read theirs
        row = await self.db.fetchone("SELECT secret FROM chatplane_webhook_secrets WHERE owner = %s", (owner,))
        assert row is not None
        return str(row["secret"])

    async def rotate(self, owner: str, new: str) -> str:
        """Replace ``owner``'s secret with ``new``: deliveries signed from now on use it."""
        if not await self.db.execute(
            "UPDATE chatplane_webhook_secrets SET secret = %s, created_at = %s WHERE owner = %s",
            (new, time.time(), owner),
        ):
            return await self.secret(owner, new)
        return new

    # --- deliveries -----------------------------------------------------------------------------------------------
    async def expect(self, run_id: str, owner: str, url: str) -> None:
        """A ``waiting`` delivery for an accepted run: made due when the run ends (``enqueue`` or ``end_waiting``)."""
        now = time.time()
        await self.db.execute(
            f"INSERT INTO chatplane_webhooks ({_COLUMNS}) VALUES (%s, %s, %s, '{{}}', 'waiting', 0, %s, NULL, %s, "
            "NULL) ON CONFLICT (run_id) DO NOTHING",
            (run_id, owner, url, now, now),
        )

    async def enqueue(self, run_id: str, owner: str, url: str, payload: dict[str, Any], give_up_after_s: float) -> bool:
        """The run's delivery of ``payload`` to ``url``, due now; False if it was due already (or made)."""
        now = time.time()
        return bool(
            await self.db.execute(
                f"INSERT INTO chatplane_webhooks ({_COLUMNS}) VALUES (%s, %s, %s, %s, 'pending', 0, %s, %s, %s, NULL) "
                "ON CONFLICT (run_id) DO UPDATE SET status = 'pending', payload = excluded.payload, "
                "next_attempt_at = excluded.next_attempt_at, give_up_at = excluded.give_up_at "
                "WHERE chatplane_webhooks.status = 'waiting'",
                (run_id, owner, url, dumps(payload), now, now, now + give_up_after_s),
            )
        )

    async def ended_waiting(self, limit: int = 50) -> list[str]:
        """Runs whose delivery still waits although they have ended: their outcome was recorded by a process that
        stopped before it could make the delivery due."""
        rows = await self.db.fetchall(
            "SELECT w.run_id FROM chatplane_webhooks w JOIN chatplane_runs r ON r.run_id = w.run_id "
            "WHERE w.status = 'waiting' AND r.status IN ('succeeded', 'failed', 'cancelled') LIMIT %s",
            (limit,),
        )
        return [str(row["run_id"]) for row in rows]

    async def claim_due(self, now: float, worker: str, lease_until: float, limit: int = 20) -> list[Delivery]:
        """Claim up to ``limit`` deliveries due at ``now`` that no live lease holds, until ``lease_until``."""
        rows = await claims.claim_due(
            self.db,
            table="chatplane_webhooks",
            key="run_id",
            columns=_COLUMNS,
            due="status = 'pending' AND next_attempt_at <= %s",
            order_by="next_attempt_at",
            now=now,
            worker=worker,
            lease_until=lease_until,
            limit=limit,
        )
        return [Delivery.from_row(row) for row in rows]

    async def record(
        self,
        delivery: Delivery,
        worker: str,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> None:
        """Record ``attempt`` and what the delivery comes to (``pending`` again at ``next_attempt_at``, or
        ``delivered`` / ``failed``), releasing the claim."""
        finished = attempt.at if status != "pending" else None
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE chatplane_webhooks SET status = %s, attempts = %s, next_attempt_at = %s, finished_at = %s, "
                "worker = NULL, lease_until = NULL WHERE run_id = %s AND worker = %s AND attempts = %s",
                (status, attempt.attempt, next_attempt_at, finished, delivery.run_id, worker, delivery.attempts),
            )
            if changed:
                await tx.execute(
                    "INSERT INTO chatplane_webhook_attempts (run_id, attempt, url, at, status_code, error, "
                    "duration_ms) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        delivery.run_id,
                        attempt.attempt,
                        attempt.url,
                        attempt.at,
                        attempt.status_code,
                        attempt.error,
                        attempt.duration_ms,
                    ),
                )

    async def get(self, run_id: str, owner: str) -> Delivery | None:
        """The run's delivery with every attempt, oldest first (None: the run has none, or it is not the owner's)."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM chatplane_webhooks WHERE run_id = %s AND owner = %s", (run_id, owner)
        )
        if row is None:
            return None
        attempts = await self.db.fetchall(
            "SELECT attempt, url, at, status_code, error, duration_ms FROM chatplane_webhook_attempts "
            "WHERE run_id = %s ORDER BY attempt",
            (run_id,),
        )
        delivery = Delivery.from_row(row)
        history = [
            Attempt(**{k: a[k] for k in ("attempt", "url", "at", "status_code", "error", "duration_ms")})
            for a in attempts
        ]
        return Delivery(**{**delivery.__dict__, "history": history})
