"""``http_get``: fetch a web page, but only from hosts an operator put on ``CHATPLANE_HTTP_TOOL_ALLOWLIST``.

Every URL — the one the model asks for and every redirect — must be ``http``/``https``, carry no credentials, and
name a host that is exactly on the allowlist; redirects are followed by hand (at most ``MAX_REDIRECTS``) so a
listed host cannot bounce the request to an unlisted one. The body is read as a stream and cut at
``MAX_BODY_BYTES``, HTML is reduced to its text, and what the model sees is at most ``MAX_TEXT_CHARS``.
Network failures are raised as they are (the agent's tool guards retry connection errors and turn the rest into an
error message for the model).
"""

from __future__ import annotations

from collections.abc import Iterable
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
from langchain_core.tools import BaseTool, ToolException, tool

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 256 * 1024
MAX_TEXT_CHARS = 8000
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")


def normalize_host(entry: str) -> str:
    """``"Example.COM."`` → ``"example.com"``; a URL on the allowlist counts as its host."""
    entry = entry.strip()
    if "://" in entry:
        entry = urlsplit(entry).hostname or ""
    return entry.lower().rstrip(".")


def check_url(url: str | httpx.URL, allowed: frozenset[str]) -> httpx.URL:
    """``url`` parsed, or ``ToolException`` if the tool may not fetch it."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ToolException("That is not a valid URL.") from exc
    if parsed.scheme not in ("http", "https"):
        raise ToolException("Only http:// and https:// URLs can be fetched.")
    if parsed.userinfo:
        raise ToolException("URLs with a user name or password are refused.")
    host = normalize_host(parsed.host)
    if host not in allowed:
        listed = ", ".join(sorted(allowed))
        raise ToolException(
            f"Refused: {host or 'that host'} is not on the list of hosts this tool may reach: {listed}."
        )
    return parsed


class _TextExtractor(HTMLParser):
    """The visible text of an HTML page (scripts and styles dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "noscript"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return "\n".join(extractor.parts)


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether there was more."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


def render(response: httpx.Response, body: bytes, truncated: bool) -> str:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    head = f"HTTP {response.status_code} {response.reason_phrase} from {response.url}"
    if content_type and not any(t in content_type for t in _TEXT_TYPES):
        return f"{head}\n\n(content of type {content_type} is not shown)"
    text = body.decode(response.encoding or "utf-8", errors="replace")
    if content_type in ("text/html", "application/xhtml+xml") or (not content_type and "<html" in text[:500].lower()):
        text = html_to_text(text)
    if truncated or len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + "\n… (cut)"
    return f"{head}\n\n{text}"


def make_http_get(allowlist: Iterable[str], client: httpx.AsyncClient, *, timeout_s: float = 30.0) -> BaseTool:
    """The ``http_get`` tool, limited to the hosts of ``allowlist``, sending its requests through ``client``."""
    allowed = frozenset(h for h in map(normalize_host, allowlist) if h)
    hosts = ", ".join(sorted(allowed))

    @tool("http_get", description=f"Fetch a web page with HTTP GET and return its text. Allowed hosts: {hosts}.")
    async def http_get(url: str) -> str:
        target = check_url(url, allowed)
        for _ in range(MAX_REDIRECTS + 1):
            request = client.build_request("GET", target, timeout=timeout_s)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                if response.is_redirect and "location" in response.headers:
                    target = check_url(response.url.join(response.headers["location"]), allowed)
                    continue
                body, truncated = await read_capped(response, MAX_BODY_BYTES)
                return render(response, body, truncated)
            finally:
                await response.aclose()
        raise ToolException(f"Too many redirects (more than {MAX_REDIRECTS}).")

    return http_get
