"""API keys: ``cp_<key id>_<secret>``. Only a hash of the secret is stored; the whole key is shown once.

The key id (public, 12 hex characters) finds the row; the secret (32 random bytes) is compared by hash in constant
time. A revoked key stops working on the next request, in every process: nothing is cached.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from chatplane.db import Database, Row

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
    def __init__(self, db: Database) -> None:
        self.db = db
        self._created_seen = False  # keys are never deleted: once one exists, one always will

    async def create(self, user_id: str, name: str | None = None) -> tuple[ApiKey, str]:
        """A new key for ``user_id``: the record and the full key (shown once, never stored)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, user_id, name, time.time(), None)
        await self.db.execute(
            "INSERT INTO chatplane_api_keys (key_id, user_id, name, secret_hash, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (key_id, user_id, name, _hash(secret), key.created_at),
        )
        return key, f"{PREFIX}{key_id}_{secret}"

    async def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` stands for, or None."""
        parsed = parse_key(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        row = await self.db.fetchone(
            "SELECT key_id, user_id, name, secret_hash, created_at, revoked_at FROM chatplane_api_keys "
            "WHERE key_id = %s",
            (key_id,),
        )
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
        changed = await self.db.execute(
            "UPDATE chatplane_api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
            (time.time(), key_id),
        )
        return changed > 0

    async def any_active(self) -> bool:
        """Whether some key can authenticate now."""
        row = await self.db.fetchone("SELECT 1 AS one FROM chatplane_api_keys WHERE revoked_at IS NULL LIMIT 1")
        return row is not None

    async def any_created(self) -> bool:
        """Whether a key was ever created (revoked ones count: revoking every key must not reopen the server).

        Asked on every request of a development server: a yes is remembered (no key row is ever deleted), a no is
        asked again each time, since another process (``chatplane keys create``) may create the first key."""
        if not self._created_seen:
            self._created_seen = await self.db.fetchone("SELECT 1 AS one FROM chatplane_api_keys LIMIT 1") is not None
        return self._created_seen
