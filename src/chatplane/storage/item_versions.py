"""Each owner's store version: one small row per owner (``chatplane_store_owners``), changed in the same transaction
as every write to their items, so a process can check its copy of their vectors (``VectorIndex``) with one index
probe instead of an aggregate over all their rows.

What changes it: a put (inserted at a random number for a new owner, else + 1), a delete (+ 1), the TTL sweep (+ 1
for each owner with an expired item) and a purge (the row goes with the items). The number starts at random so an
owner purged and written again does not come back to a version a process saw before the purge; an owner without a
row has no items. A put and a delete return the new version: the process that wrote knows whether anyone else wrote
in between (the new version is its copy's + 1), and then patches its copy instead of reading it again.
"""

from __future__ import annotations

import random
from typing import Any

TABLE = "chatplane_store_owners"
_ITEMS = "chatplane_store"

MIGRATION = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (owner TEXT PRIMARY KEY, version BIGINT NOT NULL)",
    # owners who already have items (a database migrated with items in it)
    f"INSERT INTO {TABLE} (owner, version) SELECT DISTINCT owner, 1 FROM {_ITEMS}",
]
"""The migration that adds the versions (``chatplane.storage.schema.MIGRATIONS``)."""

VERSION_SQL = f"SELECT version FROM {TABLE} WHERE owner = %s"


def bump(owner: str) -> tuple[str, tuple[Any, ...]]:
    """The statement that moves ``owner`` to a new version (creating their row) and returns it: to run in the
    transaction of a put."""
    return (
        f"INSERT INTO {TABLE} (owner, version) VALUES (%s, %s) "
        f"ON CONFLICT (owner) DO UPDATE SET version = {TABLE}.version + 1 RETURNING version",
        (owner, random.getrandbits(62)),
    )


def bump_existing(owner: str) -> tuple[str, tuple[Any, ...]]:
    """The same for a delete: an owner without a row has nothing to delete, and gets none."""
    return f"UPDATE {TABLE} SET version = version + 1 WHERE owner = %s RETURNING version", (owner,)


def bump_expired(now: float) -> tuple[str, tuple[Any, ...]]:
    """Before the TTL sweep, in its transaction: a new version for each owner with an item expired at ``now``."""
    return (
        f"UPDATE {TABLE} SET version = version + 1 WHERE owner IN "
        f"(SELECT owner FROM {_ITEMS} WHERE expires_at IS NOT NULL AND expires_at <= %s)",
        (now,),
    )


def forget(owner: str) -> tuple[str, tuple[Any, ...]]:
    """With a purge of ``owner``'s items: their row goes too (nothing of them is left)."""
    return f"DELETE FROM {TABLE} WHERE owner = %s", (owner,)


def returned(result: tuple[list[dict[str, Any]], int]) -> int | None:
    """The version a ``bump`` statement returned (None: no row)."""
    rows = result[0]
    return int(rows[0]["version"]) if rows else None
