"""Outgoing webhook requests, guarded against server-side request forgery (SSRF).

A webhook URL is the user's, and the request is made from inside the deployment: without a guard, a user could make
chatplane POST to the cloud's metadata service (169.254.169.254), to an admin port on localhost, or to anything on
the private network. So:

* **Schemes**: ``https`` only in production (``CHATPLANE_ENV=production``); ``http`` or ``https`` otherwise.
* **Addresses**: the host is resolved first, and *every* address it resolves to must be public (``is_global``:
  not loopback, private, link-local, CGNAT, multicast, reserved, unspecified) — unless it is on
  ``CHATPLANE_WEBHOOK_ALLOWLIST`` (host names, addresses or CIDR networks).
* **The checked address is the one connected to**: the request goes to the IP address that was checked (the
  ``Host`` header and TLS server name stay the host's, so certificates are verified against the name), so a DNS
  answer that changes between the check and the connection (DNS rebinding) cannot move it. No proxy from the
  environment is used.
* **Redirects** are followed by hand, at most ``MAX_REDIRECTS``, each target checked as above.
* **Bounds**: the whole attempt (redirects included) within ``webhook_timeout_s``; at most
  ``webhook_max_response_bytes`` of a response read.

What an attempt came to is a short, fixed reason (``Outcome.error``), never an exception's text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from chatplane.errors import InvalidInputError

MAX_REDIRECTS = 3
MAX_URL_CHARS = 2048
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_webhook_url(url: str, *, production: bool, field: str = "webhook") -> str:
    """``url`` if it may be a webhook (an absolute http(s) URL — https only in production — with a host and no
    credentials); a 422 naming ``field`` otherwise. Where it points is checked when it is called, not here: DNS
    answers change."""
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
        raise InvalidInputError(f"`{field}` must be an http(s) URL of at most {MAX_URL_CHARS} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises on a port out of range
    except ValueError:
        raise InvalidInputError(f"`{field}` is not a valid URL.") from None
    allowed = ("https",) if production else ("http", "https")
    if parts.scheme not in allowed:
        raise InvalidInputError(
            f"`{field}` must be an https URL." if production else f"`{field}` must be an http or https URL."
        )
    if not parts.hostname:
        raise InvalidInputError(f"`{field}` must name a host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(f"`{field}` must not carry credentials.")
    return url


class Refused(Exception):
    """The guard refused a URL; ``reason`` is safe to record and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(address: IPAddress) -> str:
    for name in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    return "non-public"


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowlist:
        hosts, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        return host in self.hosts or any(address in network for network in self.networks)


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Guard:
    def __init__(self, allowlist: Iterable[str], *, production: bool) -> None:
        self.allowlist = Allowlist.of(allowlist)
        self.production = production

    async def resolve(self, url: httpx.URL) -> IPAddress:
        """The address to connect to for ``url``, once every address its host resolves to is allowed; ``Refused``
        otherwise."""
        allowed = ("https",) if self.production else ("http", "https")
        if url.scheme not in allowed:
            raise Refused(f"scheme {url.scheme or 'none'} not allowed")
        host = url.host.lower().rstrip(".")
        if not host:
            raise Refused("no host")
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError):
                raise Refused("host not found") from None
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise Refused("host not found")
        for address in (_unmapped(a) for a in addresses):
            if not address.is_global and not self.allowlist.allows(host, address):
                raise Refused(f"{_kind(address)} address refused")
        return _unmapped(addresses[0])


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    """None on a 2xx answer; else a short reason (``http 500``, ``timeout``, ``refused: loopback address`` …)."""
    refused: bool = False
    """The guard refused the URL (or a redirect's): retrying would not help."""

    @property
    def delivered(self) -> bool:
        return self.error is None


async def post(
    client: httpx.AsyncClient,
    guard: Guard,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    max_response_bytes: int,
) -> Outcome:
    """POST ``body`` to ``url`` through ``guard`` (redirects followed by hand, each checked), within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _post(client, guard, httpx.URL(url), body, headers, max_response_bytes)
    except TimeoutError:
        return Outcome(None, "timeout")


async def _post(
    client: httpx.AsyncClient,
    guard: Guard,
    url: httpx.URL,
    body: bytes,
    headers: dict[str, str],
    max_response_bytes: int,
) -> Outcome:
    for hop in range(MAX_REDIRECTS + 1):
        try:
            address = await guard.resolve(url)
        except Refused as refused:
            where = "redirect: " if hop else ""
            return Outcome(None, f"refused: {where}{refused.reason}", refused=True)
        pinned = url.copy_with(host=str(address))
        host_header = url.host if url.port is None else f"{url.host}:{url.port}"
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        request = client.build_request(
            "POST",
            pinned,
            content=body,
            headers={**headers, "host": host_header, "content-type": "application/json"},
            extensions=extensions,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException:
            return Outcome(None, "timeout")
        except httpx.HTTPError:
            return Outcome(None, "connection failed")
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= max_response_bytes:
                    break
        except httpx.HTTPError:
            pass  # the status is what counts
        finally:
            await response.aclose()
        code = response.status_code
        if code in _REDIRECTS and "location" in response.headers:
            try:
                url = url.join(response.headers["location"])
            except httpx.InvalidURL:
                return Outcome(code, "redirect to an invalid URL")
            continue
        if 200 <= code < 300:
            return Outcome(code, None)
        return Outcome(code, f"http {code}")
    return Outcome(None, "too many redirects")


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
