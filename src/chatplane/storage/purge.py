"""Everything a user owns, deleted in one call (``purge_owner``): ``DELETE /v1/users/me/data`` and
``chatplane users purge``.

Their threads (each with its checkpoints, transcript and run records, through the same path as deleting one thread),
then what is left under their name: stateless run records (their usage goes with them), assistants and every version,
idempotency keys, long-term store items, schedules, webhook deliveries (with their attempts) and the webhook
signing secret. Their API keys stay (an account, not data: ``chatplane keys revoke``).
A thread created while the purge runs may survive it; run it again to be sure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from chatplane.storage import item_versions

if TYPE_CHECKING:
    from chatplane.storage.engine import Storage

_PAGE = 200


@dataclass
class PurgeReport:
    threads: int = 0
    runs: int = 0
    """Run records not of a deleted thread (stateless requests); a deleted thread's go with it."""
    assistants: int = 0
    idempotency_keys: int = 0
    items: int = 0
    """Long-term store items (memories)."""
    schedules: int = 0
    webhooks: int = 0
    """Webhook deliveries (each with its recorded attempts)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def purge_owner(
    storage: Storage, owner: str, *, delete_thread: Callable[[str], Awaitable[None]] | None = None
) -> PurgeReport:
    """Delete everything ``owner`` has stored. ``delete_thread``: how one thread goes (a server stops its runs
    first: ``Services.delete_thread``); by default straight from storage."""
    remove = delete_thread or (lambda thread_id: storage.threads.purge(storage.checkpointer, thread_id))
    report = PurgeReport()
    db = storage.db
    while rows := await db.fetchall(
        "SELECT thread_id FROM chatplane_threads WHERE owner = %s ORDER BY thread_id LIMIT %s", (owner, _PAGE)
    ):
        for row in rows:
            await remove(row["thread_id"])
            report.threads += 1
    report.runs = await db.execute("DELETE FROM chatplane_runs WHERE owner = %s", (owner,))
    async with db.transaction() as tx:
        report.assistants = await tx.execute("DELETE FROM chatplane_assistants WHERE owner = %s", (owner,))
        await tx.execute("DELETE FROM chatplane_assistant_versions WHERE owner = %s", (owner,))
        report.idempotency_keys = await tx.execute("DELETE FROM chatplane_idempotency WHERE owner = %s", (owner,))
        report.items = await tx.execute("DELETE FROM chatplane_store WHERE owner = %s", (owner,))
        await tx.execute(*item_versions.forget(owner))
        report.schedules = await tx.execute("DELETE FROM chatplane_schedules WHERE owner = %s", (owner,))
        await tx.execute(
            "DELETE FROM chatplane_webhook_attempts WHERE run_id IN "
            "(SELECT run_id FROM chatplane_webhooks WHERE owner = %s)",
            (owner,),
        )
        report.webhooks = await tx.execute("DELETE FROM chatplane_webhooks WHERE owner = %s", (owner,))
        await tx.execute("DELETE FROM chatplane_webhook_secrets WHERE owner = %s", (owner,))
    return report
