"""Run records: status, timings, token usage and error code of every run, in chatplane's own table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from chatplane.errors import RunNotFoundError
from chatplane.storage.database import Database, Dialect, Result, Row, Statement, dumps, in_clause
from chatplane.storage.idempotency import IdempotencyKey, claimed_by_clause, claimed_params
from chatplane.storage.run_record import FINISHED, Multitask, Run, RunStatus

__all__ = ["FINISHED", "Multitask", "Run", "RunStatus", "RunStore"]

_COLUMNS = (
    "run_id, thread_id, owner, agent, status, multitask, input, error_code, usage, created_at, started_at, "
    "finished_at, model, not_before"
)
_ACTIVE = "status IN ('pending', 'running', 'waiting')"
_WAITS_ITS_TIME = "(status = 'pending' AND not_before > %s)"
"""An active run that does not hold its thread: a delayed run whose time has not come (``Run.not_before``)."""
_ROLL_BACK = 2
"""``cancel_requested`` of a run to cancel and undo (LangGraph's ``rollback``); 1 is a plain cancel."""


class RunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        thread_id: str,
        owner: str,
        agent: str,
        run_input: dict[str, Any],
        multitask: Multitask,
        model: str | None = None,
        tx: Database | None = None,
        claim_for: tuple[str, float] | None = None,
        not_before: float | None = None,
    ) -> Run:
        """A new ``pending`` run — or, with ``claim_for`` (worker, lease end), one already claimed: ``running``
        (one statement instead of an insert and a ``claim``). ``not_before``: a delayed run (never claimed now)."""
        run = Run.new(thread_id, owner, agent, run_input, multitask, model=model, not_before=not_before)
        if claim_for is not None and not_before is None:
            run.status, run.started_at = "running", run.created_at
        worker, lease_until = claim_for if claim_for is not None else (None, None)
        await (tx or self.db).execute(
            f"INSERT INTO chatplane_runs ({_COLUMNS}, worker, lease_until) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                run.run_id,
                thread_id,
                owner,
                agent,
                run.status,
                multitask,
                dumps(run_input),
                None,
                "{}",
                run.created_at,
                run.started_at,
                None,
                model,
                not_before,
                worker if run.status == "running" else None,
                lease_until if run.status == "running" else None,
            ),
        )
        return run

    @staticmethod
    def accept_statement(
        run: Run,
        *,
        agent: str | None,
        default_model: str | None,
        claim_for: tuple[str, float],
        dialect: Dialect,
        idempotency: IdempotencyKey | None = None,
    ) -> Statement:
        """One insert that accepts ``run`` (its id, thread, owner, input and multitask set), taking the thread's
        agent and model, and deciding in SQL what ``RunManager._accept_interrupting`` decides in Python: the run
        starts claimed for ``claim_for`` (worker, lease end) if no active run holds the thread (a delayed one not
        due yet does not), else waits its turn (``pending``); a delayed run (``not_before``) always waits. It
        inserts nothing if the thread is not the owner's, does not talk to ``agent`` (when given), or is busy (any
        active run, a delayed one too, as LangGraph has it) and the policy is ``reject``. Run it after locking the
        thread's row, in the same transaction; ``accepted`` reads the outcome.

        Runs execute in ``created_at`` order, which must be the order they were accepted in — the order they got
        the thread's lock, not the order their processes read their clocks before asking for it: a run's
        ``created_at`` is the later of ``run.created_at`` and just after the newest active run's."""
        worker, lease_until = claim_for
        later = "GREATEST" if dialect == "postgres" else "max"  # SQLite's two-argument max() is scalar
        # It starts now unless it is delayed or a run holds the thread (a delayed run not due yet does not).
        start = "a.holding = 0" if run.not_before is None else "1 = 0"
        insert = (
            f"INSERT INTO chatplane_runs ({_COLUMNS}, worker, lease_until) "
            f"SELECT %s, t.thread_id, t.owner, t.agent, CASE WHEN {start} THEN 'running' ELSE 'pending' END, "
            f"%s, %s, NULL, '{{}}', {later}(%s, coalesce(a.last, 0) + 0.000001), CASE WHEN {start} THEN %s END, "
            "NULL, coalesce(t.model, CAST(%s AS TEXT)), CAST(%s AS DOUBLE PRECISION), "
            f"CASE WHEN {start} THEN CAST(%s AS TEXT) END, CASE WHEN {start} THEN %s END "
            "FROM chatplane_threads t, (SELECT count(*) AS n, max(created_at) AS last, "
            f"coalesce(sum(CASE WHEN {_WAITS_ITS_TIME} THEN 0 ELSE 1 END), 0) AS holding FROM chatplane_runs "
            f"WHERE thread_id = %s AND {_ACTIVE}) a "
            "WHERE t.thread_id = %s AND t.owner = %s AND (CAST(%s AS TEXT) IS NULL OR t.agent = %s) "
            "AND (CAST(%s AS TEXT) <> 'reject' OR a.n = 0)"
            + (claimed_by_clause() if idempotency is not None else "")
            + " RETURNING status, agent, model, created_at"
        )
        params = [run.run_id, run.multitask, dumps(run.input), run.created_at, run.created_at, default_model]
        params += [run.not_before, worker, lease_until, time.time(), run.thread_id, run.thread_id, run.owner]
        params += [agent, agent, run.multitask]
        if idempotency is not None:
            params += claimed_params(run.owner, idempotency, run.run_id)
        return insert, params

    @staticmethod
    def accepted(run: Run, result: Result) -> bool:
        """Whether ``accept_statement``'s insert took ``run`` (now with the status, agent and model it got)."""
        rows, _ = result
        if not rows:
            return False
        row = rows[0]
        run.status, run.agent, run.model, run.created_at = row["status"], row["agent"], row["model"], row["created_at"]
        run.started_at = run.created_at if run.status == "running" else None
        return True

    async def find(self, run_id: str, owner: str | None = None) -> Run | None:
        sql = f"SELECT {_COLUMNS} FROM chatplane_runs WHERE run_id = %s"
        params: tuple[Any, ...] = (run_id,)
        if owner is not None:
            sql += " AND owner = %s"
            params += (owner,)
        row = await self.db.fetchone(sql, params)
        return Run.from_row(row) if row else None

    async def get(self, run_id: str, owner: str) -> Run:
        run = await self.find(run_id, owner)
        if run is None:
            raise RunNotFoundError()
        return run

    async def delete_finished(self, run_id: str, owner: str) -> bool:
        """Forget ``owner``'s finished run (its record; its effects on the thread stay). False if there is no
        such finished run."""
        finished = ", ".join(f"'{status}'" for status in sorted(FINISHED))
        sql = f"DELETE FROM chatplane_runs WHERE run_id = %s AND owner = %s AND status IN ({finished})"
        return await self.db.execute(sql, (run_id, owner)) > 0

    async def list_for_thread(self, thread_id: str, *, limit: int = 50) -> list[Run]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chatplane_runs WHERE thread_id = %s ORDER BY created_at DESC LIMIT %s",
            (thread_id, limit),
        )
        return [Run.from_row(r) for r in rows]

    async def in_order(self, thread_id: str, owner: str, first: int, limit: int = 20) -> list[Run]:
        """The owner's thread's runs in the order they were accepted, from the ``first``-th (counting from 1)."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chatplane_runs WHERE thread_id = %s AND owner = %s "
            "ORDER BY created_at LIMIT %s OFFSET %s",
            (thread_id, owner, limit, max(first - 1, 0)),
        )
        return [Run.from_row(r) for r in rows]

    async def count_for_thread(self, thread_id: str, owner: str, *, up_to: float | None = None) -> int:
        """How many runs the owner's thread has — accepted no later than ``up_to``, if given: a run's ordinal."""
        sql = "SELECT count(*) AS n FROM chatplane_runs WHERE thread_id = %s AND owner = %s"
        params: tuple[Any, ...] = (thread_id, owner)
        if up_to is not None:
            sql, params = sql + " AND created_at <= %s", (*params, up_to)
        row = await self.db.fetchone(sql, params)
        return int(row["n"]) if row else 0

    async def mark_running(self, run: Run) -> None:
        run.status = "running"
        run.started_at = run.started_at or time.time()
        await self.db.execute(
            "UPDATE chatplane_runs SET status = %s, started_at = %s WHERE run_id = %s",
            (run.status, run.started_at, run.run_id),
        )

    async def mark_waiting(self, run: Run, usage: dict[str, int]) -> None:
        run.status = "waiting"
        run.usage = usage
        await self.db.execute(
            "UPDATE chatplane_runs SET status = %s, usage = %s, worker = NULL WHERE run_id = %s",
            (run.status, dumps(usage), run.run_id),
        )

    async def finish(
        self,
        run: Run,
        status: RunStatus,
        usage: dict[str, int],
        error_code: str | None = None,
        tx: Database | None = None,
    ) -> None:
        await (tx or self.db).execute(*self.finish_statement(run, status, usage, error_code))

    async def count_active(self, owner: str) -> int:
        row = await self.db.fetchone(
            "SELECT count(*) AS n FROM chatplane_runs WHERE owner = %s AND status IN ('pending', 'running')", (owner,)
        )
        return int(row["n"]) if row else 0

    # --- coordination of several processes (the table is the queue; leases say who runs what) ---------------------
    @staticmethod
    def finish_statement(run: Run, status: RunStatus, usage: dict[str, int], error_code: str | None) -> Statement:
        """Record the outcome of ``run`` (and set it on the object)."""
        run.status, run.usage, run.error_code, run.finished_at = status, usage, error_code, time.time()
        return (
            "UPDATE chatplane_runs SET status = %s, usage = %s, error_code = %s, finished_at = %s, worker = NULL, "
            "model = %s WHERE run_id = %s",
            (status, dumps(usage), error_code, run.finished_at, run.model, run.run_id),
        )

    @staticmethod
    async def active_for_thread(tx: Database, thread_id: str) -> list[Run]:
        sql, params = RunStore.active_statement(thread_id)
        return RunStore.active_runs(await tx.fetchall(sql, params))

    @staticmethod
    def active_statement(thread_id: str) -> Statement:
        """The thread's pending, running and waiting runs, oldest first (read with ``active_runs``)."""
        return f"SELECT {_COLUMNS} FROM chatplane_runs WHERE thread_id = %s AND {_ACTIVE} ORDER BY created_at", (
            thread_id,
        )

    @staticmethod
    def active_runs(rows: list[Row]) -> list[Run]:
        return [Run.from_row(r) for r in rows]

    @staticmethod
    async def claim(tx: Database, run: Run, worker: str, lease_until: float) -> bool:
        """Take ``run`` (pending or waiting) for ``worker``; False if someone else changed it first."""
        started = run.started_at or time.time()
        changed = await tx.execute(
            "UPDATE chatplane_runs SET status = 'running', worker = %s, lease_until = %s, started_at = %s "
            "WHERE run_id = %s AND status = %s",
            (worker, lease_until, started, run.run_id, run.status),
        )
        if changed:
            run.status, run.started_at = "running", started
        return int(changed) > 0

    async def claim_now(self, run: Run, worker: str, lease_until: float) -> bool:
        """``claim`` in a transaction of its own."""
        async with self.db.transaction() as tx:
            claimed: bool = await self.claim(tx, run, worker, lease_until)
        return claimed

    async def of_owner(self, owner: str, statuses: Sequence[RunStatus], *, limit: int = 1000) -> list[Run]:
        """``owner``'s runs in one of ``statuses``, oldest first (at most ``limit``)."""
        clause, values = in_clause(self.db.dialect, list(statuses))
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chatplane_runs WHERE owner = %s AND status {clause} ORDER BY created_at LIMIT %s",
            (owner, *values, limit),
        )
        return [Run.from_row(r) for r in rows]

    async def active(self, thread_id: str) -> list[Run]:
        """The thread's pending, running and waiting runs, oldest first."""
        return await self.active_for_thread(self.db, thread_id)

    async def heartbeat(self, worker: str, lease_until: float, run_ids: Sequence[str]) -> list[tuple[str, bool]]:
        """Extend the leases of ``run_ids``, the runs this worker is executing; the ids of this worker's runs a
        cancel was requested for, each with whether it is to be rolled back (``request_cancel``). A run the
        worker holds but no longer executes — its task ended without its
        outcome recorded, say while the database was unreachable — is not renewed: its lease runs out, and
        recovery (``RunManager._reap``) takes it, rather than its thread staying busy for as long as the worker
        has other runs."""
        clause, ids = in_clause(self.db.dialect, run_ids)
        await self.db.execute(
            f"UPDATE chatplane_runs SET lease_until = %s WHERE worker = %s AND status = 'running' AND run_id {clause}",
            (lease_until, worker, *ids),
        )
        rows = await self.db.fetchall(
            "SELECT run_id, cancel_requested FROM chatplane_runs WHERE worker = %s AND status = 'running' "
            "AND cancel_requested > 0",
            (worker,),
        )
        return [(r["run_id"], int(r["cancel_requested"]) == _ROLL_BACK) for r in rows]

    async def cancel_inactive(self, run: Run) -> bool:
        """Cancel ``run`` if it is still as read (pending or waiting: nobody executes it); False if it moved on."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE chatplane_runs SET status = 'cancelled', finished_at = %s, worker = NULL "
                "WHERE run_id = %s AND status = %s",
                (time.time(), run.run_id, run.status),
            )
        if changed:
            run.status = "cancelled"
        return int(changed) > 0

    async def take_over(self, run: Run, worker: str, lease_until: float, *, lost: bool) -> bool:
        """Take an ``expired`` run for ``worker`` — only as read: its recoveries and holder unchanged since (else the
        next round decides on fresh ones); ``lost``: its worker died (counted in ``recoveries``). False if another
        process got it first."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE chatplane_runs SET worker = %s, lease_until = %s, cancel_requested = 0, "
                "recoveries = recoveries + %s WHERE run_id = %s AND status = 'running' AND lease_until < %s "
                "AND recoveries = %s AND coalesce(worker, '') = %s",
                (worker, lease_until, int(lost), run.run_id, time.time(), run.recoveries, run.worker or ""),
            )
        return int(changed) > 0

    async def request_cancel(self, run_id: str, *, roll_back: bool = False) -> None:
        """Ask whichever process executes the run to cancel it (``roll_back``: and undo it); its heartbeat reads
        the request."""
        kind = _ROLL_BACK if roll_back else 1
        await self.db.execute("UPDATE chatplane_runs SET cancel_requested = %s WHERE run_id = %s", (kind, run_id))

    async def release(self, run_ids: list[str], worker: str) -> None:
        """Hand runs back (graceful shutdown): their lease ends now, so another process resumes them. Only those
        ``worker`` still holds: one another process took over meanwhile is that process's."""
        clause, ids = in_clause(self.db.dialect, run_ids)
        await self.db.execute(
            f"UPDATE chatplane_runs SET worker = NULL, lease_until = 0 WHERE status = 'running' AND worker = %s "
            f"AND run_id {clause}",
            (worker, *ids),
        )

    async def expired(self, now: float, limit: int = 20) -> list[Run]:
        """Running runs whose worker stopped renewing its lease (it died, or handed them back: ``worker`` None)."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS}, recoveries, worker FROM chatplane_runs WHERE status = 'running' AND lease_until < %s "
            "ORDER BY created_at LIMIT %s",
            (now, limit),
        )
        return [Run.from_row(r) for r in rows]

    async def running_workers(self) -> list[str]:
        """The workers holding running runs."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT worker FROM chatplane_runs WHERE status = 'running' AND worker IS NOT NULL"
        )
        return [str(r["worker"]) for r in rows]

    async def end_leases(self, workers: list[str], renewed_before: float) -> int:
        """End now the leases of ``workers``' running runs not renewed since ``renewed_before`` (their worker is
        dead: recovery takes them in this round). How many."""
        clause, ids = in_clause(self.db.dialect, workers)
        return await self.db.execute(
            f"UPDATE chatplane_runs SET lease_until = 0 WHERE status = 'running' AND worker {clause} "
            "AND lease_until < %s",
            (*ids, renewed_before),
        )

    async def stranded_threads(self, limit: int = 20) -> list[str]:
        """Threads with pending runs due now and nothing running or waiting (their next run has no one to start
        it: its thread's last run ended in a process that died, or it was delayed)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT p.thread_id FROM chatplane_runs p WHERE p.status = 'pending' AND p.thread_id <> '' "
            "AND (p.not_before IS NULL OR p.not_before <= %s) "
            "AND NOT EXISTS (SELECT 1 FROM chatplane_runs a WHERE a.thread_id = p.thread_id "
            "AND a.status IN ('running', 'waiting')) LIMIT %s",
            (time.time(), limit),
        )
        return [r["thread_id"] for r in rows]

    async def delayed(self, limit: int = 1000) -> list[tuple[str, float]]:
        """The threads of delayed runs not due yet, each with when its run is (soonest first, at most ``limit``)."""
        rows = await self.db.fetchall(
            "SELECT thread_id, not_before FROM chatplane_runs WHERE status = 'pending' AND not_before > %s "
            "ORDER BY not_before LIMIT %s",
            (time.time(), limit),
        )
        return [(r["thread_id"], float(r["not_before"])) for r in rows]
