"""API keys: ``cp_<key id>_<secret>``. Only a hash of the secret is stored; the whole key is shown once.

The key id (public, 12 hex characters) finds the row; the secret (32 random bytes) is compared by hash in constant
time. On PostgreSQL the rows a request read are cached while a ``KeyChangeListener`` (``chatplane.storage.key_changes``)
listens: creating or revoking a key notifies every process in the same transaction, and each one forgets its
cache when the notification arrives (milliseconds). Without a listener (SQLite, or while it reconnects) nothing
is cached: a revoked key stops working on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from chatplane.storage.database import Database, Row, Statement
from chatplane.storage.key_changes import CHANNEL

PREFIX = "cp_"


@dataclass
class ApiKey:
    key_id: str
    user_id: str
    name: str | None
    created_at: float
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> ApiKey:
        return cls(row["key_id"], row["user_id"], row["name"], float(row["created_at"]), row["revoked_at"])


def _hash(secret: str) -> str:
    # Keys are 256-bit random secrets, so a fast hash is enough (no dictionary to attack); it keeps auth cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(token: str) -> tuple[str, str] | None:
    """``cp_<id>_<secret>`` → (id, secret); None if it does not look like a chatplane key."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


class ApiKeyStore:
    MAX_CACHED = 10_000

    def __init__(self, db: Database) -> None:
        self.db = db
        self._created_seen = False  # keys are never deleted: once one exists, one always will
        self.cache_trusted: Callable[[], bool] = lambda: False
        """Whether every change to the keys table reaches ``forget`` (a ``KeyChangeListener`` is listening)."""
        self._generation = 0  # bumped by ``forget``: a read that started before a change does not fill the cache
        self._rows: OrderedDict[str, Row] = OrderedDict()  # key id -> its row (revoked ones too), newest use last
        self._none_yet = False  # no key existed, read while the cache was trusted and nothing changed since

    def forget(self) -> None:
        """Something changed in the keys table (or may have, unseen): drop what is cached."""
        self._generation += 1
        self._rows.clear()
        self._none_yet = False

    def _notify(self, key_id: str) -> list[Statement]:
        return [("SELECT pg_notify(%s, %s)", (CHANNEL, key_id))] if self.db.dialect == "postgres" else []

    async def create(self, user_id: str, name: str | None = None) -> tuple[ApiKey, str]:
        """A new key for ``user_id``: the record and the full key (shown once, never stored)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, user_id, name, time.time(), None)
        insert = (
            "INSERT INTO chatplane_api_keys (key_id, user_id, name, secret_hash, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (key_id, user_id, name, _hash(secret), key.created_at),
        )
        await self.db.batch([insert, *self._notify(key_id)])
        self.forget()
        return key, f"{PREFIX}{key_id}_{secret}"

    async def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` stands for, or None."""
        parsed = parse_key(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        row = self._rows.get(key_id) if self.cache_trusted() else None
        if row is not None:
            self._rows.move_to_end(key_id)
        else:
            generation = self._generation
            row = await self.db.fetchone(
                "SELECT key_id, user_id, name, secret_hash, created_at, revoked_at FROM chatplane_api_keys "
                "WHERE key_id = %s",
                (key_id,),
            )
            if row is not None and self.cache_trusted() and generation == self._generation:
                self._rows[key_id] = row
                if len(self._rows) > self.MAX_CACHED:
                    self._rows.popitem(last=False)
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["secret_hash"], _hash(secret)):
            return None
        return ApiKey.from_row(row)

    async def list(self, user_id: str | None = None) -> list[ApiKey]:
        sql = "SELECT key_id, user_id, name, created_at, revoked_at FROM chatplane_api_keys"
        params: tuple[str, ...] = ()
        if user_id is not None:
            sql += " WHERE user_id = %s"
            params = (user_id,)
        return [ApiKey.from_row(r) for r in await self.db.fetchall(sql + " ORDER BY created_at", params)]

    async def revoke(self, key_id: str) -> bool:
        update = (
            "UPDATE chatplane_api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
            (time.time(), key_id),
        )
        results = await self.db.batch([update, *self._notify(key_id)])
        self.forget()
        return results[0][1] > 0

    async def any_active(self) -> bool:
        """Whether some key can authenticate now."""
        row = await self.db.fetchone("SELECT 1 AS one FROM chatplane_api_keys WHERE revoked_at IS NULL LIMIT 1")
        return row is not None

    async def any_created(self) -> bool:
        """Whether a key was ever created (revoked ones count: revoking every key must not reopen the server).

        Asked on every request of a development server: a yes is remembered (no key row is ever deleted); a no is
        remembered only while the cache is trusted, since another process (``chatplane keys create``) may create
        the first key."""
        if self._created_seen:
            return True
        trusted = self.cache_trusted()
        if trusted and self._none_yet:
            return False
        generation = self._generation
        self._created_seen = await self.db.fetchone("SELECT 1 AS one FROM chatplane_api_keys LIMIT 1") is not None
        self._none_yet = not self._created_seen and trusted and generation == self._generation
        return self._created_seen
