"""Who is calling: an API key, a JWT from your identity provider, or — on a local development server only — the
single local user.

The local user exists only when the server is bound to loopback, not in production, with no JWT configured and no
API key ever created in its database; from the first key on, every request must authenticate (revoking every key
does not reopen the server).

A credential comes in ``Authorization: Bearer`` or, as LangGraph's clients send it, in ``x-api-key``.

Sessions are private to their owner: the thread that stores a session is derived from (owner, session id), so one
user's ``session-x`` can never address another user's — there is nothing to guess and nothing to squat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt

from chatplane.config import LOOPBACK_HOSTS, Settings
from chatplane.errors import AuthenticationError, ConfigError
from chatplane.schemas import ID_PATTERN
from chatplane.storage.keys import ApiKeyStore, parse_key

log = logging.getLogger("chatplane.auth")

_THREAD_NAMESPACE = uuid.UUID("8f6d1c52-3f0a-4d0e-9a43-6c1b0b7e2a11")
_ID_RE = re.compile(ID_PATTERN)
LOCAL_USER = "local"


@dataclass(frozen=True)
class User:
    id: str
    via: Literal["local", "key", "jwt"] = "local"
    key_id: str | None = None

    @property
    def rate_key(self) -> str:
        """What rate limits count against: the key, or the user for JWT and local."""
        return f"key:{self.key_id}" if self.key_id else f"user:{self.id}"


def session_thread_id(owner: User, session_id: str) -> str:
    """The storage thread of ``owner``'s session ``session_id`` (a UUID no other owner can reach)."""
    return str(uuid.uuid5(_THREAD_NAMESPACE, f"{owner.id}\x00{session_id}"))


class Authenticator:
    def __init__(self, settings: Settings, keys: ApiKeyStore) -> None:
        self.settings = settings
        self.keys = keys
        self._jwt_hs256 = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._jwks: jwt.PyJWKSet | jwt.PyJWKClient | None = None
        if settings.jwt_jwks:
            self._jwks = _load_jwks(settings.jwt_jwks)
        self.jwt_enabled = self._jwt_hs256 is not None or self._jwks is not None
        self.local_user_allowed = (
            settings.env != "production" and settings.host in LOOPBACK_HOSTS and not self.jwt_enabled
        )

    async def authenticate(self, authorization: str | None, api_key: str | None = None) -> User:
        """The caller of ``Authorization: Bearer <key or token>``, or of ``x-api-key: <key or token>`` — the header
        LangGraph's SDK (``get_client(api_key=...)``) sends; with both, ``Authorization`` decides."""
        if self.local_user_allowed and not await self.keys.any_created():
            # A local development server: whatever is sent (OpenAI clients always send some key) is the local user.
            return User(LOCAL_USER)
        if not authorization and api_key and api_key.strip():
            return await self.from_token(api_key.strip())
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationError("Use `Authorization: Bearer <API key or token>`.")
            return await self.from_token(token.strip())
        raise AuthenticationError()

    async def from_token(self, token: str) -> User:
        if parse_key(token) is not None:
            key = await self.keys.verify(token)
            if key is None:
                raise AuthenticationError("Invalid or revoked API key.")
            return User(key.user_id, "key", key.key_id)
        if self.jwt_enabled:
            return User(await self._verify_jwt(token), "jwt")
        raise AuthenticationError("Invalid API key.")

    async def _verify_jwt(self, token: str) -> str:
        options: Any = {"require": ["exp"]}
        kwargs: dict[str, Any] = {"audience": self.settings.jwt_audience, "issuer": self.settings.jwt_issuer}
        if not self.settings.jwt_audience:
            options["verify_aud"] = False
        try:
            if self._jwt_hs256 is not None and jwt.get_unverified_header(token).get("alg") == "HS256":
                claims = jwt.decode(token, self._jwt_hs256, algorithms=["HS256"], options=options, **kwargs)
            elif self._jwks is not None:
                key = await self._signing_key(token)
                claims = jwt.decode(token, key, algorithms=["RS256", "ES256", "PS256"], options=options, **kwargs)
            else:
                raise AuthenticationError("Invalid token.")
        except jwt.PyJWTError as exc:
            log.info("rejected a JWT (%s)", type(exc).__name__)
            raise AuthenticationError("Invalid or expired token.") from exc
        user = claims.get(self.settings.jwt_user_claim)
        if not isinstance(user, str) or not _ID_RE.match(user):
            raise AuthenticationError(f"The token's `{self.settings.jwt_user_claim}` claim is not a valid user id.")
        return user

    async def _signing_key(self, token: str) -> Any:
        if isinstance(self._jwks, jwt.PyJWKClient):
            # Fetching (and caching) the key set is blocking I/O: off the event loop.
            return (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        for jwk in self._jwks.keys:
            if kid is None or jwk.key_id == kid:
                return jwk.key
        raise jwt.InvalidTokenError("no matching key")


def _load_jwks(source: str) -> jwt.PyJWKSet | jwt.PyJWKClient:
    if source.startswith(("https://", "http://")):
        return jwt.PyJWKClient(source, cache_keys=True, lifespan=300)
    path = Path(source).expanduser()
    try:
        return jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise ConfigError(f"CHATPLANE_JWT_JWKS: cannot read a JWKS from {path}.") from exc
