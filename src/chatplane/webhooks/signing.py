"""Webhook signatures, in the Standard Webhooks format (https://www.standardwebhooks.com), so that a receiver can
check them with that project's libraries or a few lines of its own.

Every delivery carries three headers:

``webhook-id``         the run id: the same on every attempt of one delivery (a receiver drops repeats by it)
``webhook-timestamp``  UNIX seconds when this attempt was signed (a receiver refuses one too far from its clock)
``webhook-signature``  ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

The key is the user's secret ``whsec_<base64>`` with its prefix removed and base64-decoded. Written with ``hmac``
from the standard library: signing is three lines, and the ``standardwebhooks`` package is not kept on PyPI at a
pace we would pin a production dependency to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE_S = 300


def new_secret() -> str:
    """A fresh secret: 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of ``body`` sent as ``msg_id`` at ``timestamp``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(secret: str, received: Mapping[str, str], body: bytes, *, now: float | None = None) -> bool:
    """True if ``received`` headers sign ``body`` with ``secret`` and their timestamp is within five minutes of
    ``now`` — what a receiver does (the SDK offers it: ``chatplane.client.verify_webhook``)."""
    msg_id, stamp = received.get("webhook-id"), received.get("webhook-timestamp")
    signatures = received.get("webhook-signature", "")
    if not msg_id or not stamp or not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_S:
        return False
    expected = sign(secret, msg_id, int(stamp), body)
    return any(hmac.compare_digest(expected, given) for given in signatures.split())
