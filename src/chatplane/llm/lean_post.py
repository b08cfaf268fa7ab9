"""POSTs of JSON to one URL over kept-alive HTTP/1.1 connections on asyncio's streams (``LeanPost``): the embeddings
endpoint's client (``chatplane.llm.openai_embeddings``) when no proxy is set.

Why not aiohttp's ``ClientSession.post``: a memory recall makes one small request per chat turn, and aiohttp's
per-request machinery (a ``ClientRequest`` and ``ClientResponse``, the session's header, cookie, SSL and proxy
merging, timers, tracing hooks) cost ~0.18 ms of CPU of the ~0.29 ms a query took against a loopback endpoint —
most of what recall added to a turn. Here the request's head is built once (only its length changes), a response
is read by its ``Content-Length`` (or chunks, or to the end of the connection), and the connection goes back to
the idle ones when the answer said nothing against it.

A kept-alive connection the server closed while idle fails at once (no answer begins): the request is posted again,
once, on a new connection (an embeddings request is idempotent); idle connections older than ``keepalive_s`` are not
reused. Anything else that fails — a refused connection, a dropped one, a malformed answer — raises ``OSError``
(``ConnectionError``) or ``ValueError``; the caller's timeout (``asyncio.timeout``) cancels the request and its
connection is closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque

from yarl import URL

_MAX_BODY = 64 * 1024 * 1024


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


class LeanPost:
    """POSTs to ``url`` with the fixed ``headers``; at most ``max_idle`` connections kept between requests."""

    def __init__(
        self,
        url: URL,
        headers: dict[str, str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: float = 5.0,
        max_idle: int = 8,
    ) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("LeanPost needs an http:// or https:// URL.")
        self.host = url.host
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        host = url.raw_host if url.is_default_port() else f"{url.raw_host}:{url.port}"
        lines = [f"POST {url.raw_path_qs or '/'} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self.keepalive_s = keepalive_s
        self.max_idle = max_idle
        self._idle: deque[_Connection] = deque()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to ``body``."""
        request = b"%b%d\r\n\r\n%b" % (self._head, len(body), body)
        connection = self._reused()
        if connection is not None:
            try:
                return await self._exchange(connection, request)
            except _NoAnswer:
                pass  # closed by the server while idle: once more, on a new connection
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
        try:
            return await self._exchange(_Connection(reader, writer), request)
        except _NoAnswer as exc:
            raise ConnectionResetError("The endpoint closed the connection without answering.") from exc

    def _reused(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used
            if now - connection.idle_since < self.keepalive_s and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[int, bytes]:
        kept = False
        try:
            connection.writer.write(request)
            await connection.writer.drain()
            try:
                head = await connection.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise
                raise _NoAnswer() from exc
            except ConnectionError as exc:
                raise _NoAnswer() from exc
            status, headers, keep = _head(head)
            body, to_end = await _body(connection.reader, status, headers)
            encoding = headers.get("content-encoding", "identity").lower()
            if encoding in ("gzip", "deflate"):
                body = zlib.decompress(body, 47)  # 47: a gzip or a zlib header, whichever it is
            elif encoding != "identity":
                raise ValueError("An unknown content encoding.")
            kept = keep and not to_end
            return status, body
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("The endpoint closed the connection mid-answer.") from exc
        except (asyncio.LimitOverrunError, zlib.error) as exc:
            raise ValueError("A malformed answer.") from exc
        finally:
            if kept and len(self._idle) < self.max_idle:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class _NoAnswer(Exception):
    """The connection ended before an answer began."""


def _head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """The status, the headers (names in lower case) and whether the connection may be kept."""
    status_line, *lines = head[:-4].split(b"\r\n")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ValueError("Not an HTTP/1.x answer.")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError("A malformed header.")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    keep = parts[0] == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
    return int(parts[1]), headers, keep


async def _body(reader: asyncio.StreamReader, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The answer's body, and whether it ran to the connection's end."""
    if status in (204, 304) or 100 <= status < 200:
        return b"", False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        size = 0
        while length := int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16):
            size += length
            if size > _MAX_BODY:
                raise ValueError("An answer too large.")
            chunks.append(await reader.readexactly(length))
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # the trailer, if any
            pass
        return b"".join(chunks), False
    length_header = headers.get("content-length")
    if length_header is not None:
        length = int(length_header)
        if not 0 <= length <= _MAX_BODY:
            raise ValueError("An answer too large.")
        return await reader.readexactly(length), False
    body = bytearray()
    while chunk := await reader.read(65536):
        body += chunk
        if len(body) > _MAX_BODY:
            raise ValueError("An answer too large.")
    return bytes(body), True
