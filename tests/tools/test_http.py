"""http_get: only allowlisted hosts, redirects checked hop by hop, bodies capped. No internet: a MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from langchain_core.tools import BaseTool, ToolException

from chatplane.tools import builtin_tools
from chatplane.tools.http import MAX_BODY_BYTES, MAX_TEXT_CHARS, make_http_get
from tests.conftest import make_settings

PAGES = {
    "https://docs.example.com/a": httpx.Response(200, text="plain text A", headers={"content-type": "text/plain"}),
    "https://docs.example.com/page": httpx.Response(
        200,
        text="<html><head><style>p{}</style><script>evil()</script></head><body><p>Hello</p><p>World</p></body></html>",
        headers={"content-type": "text/html; charset=utf-8"},
    ),
    "https://docs.example.com/hop": httpx.Response(302, headers={"location": "/a"}),
    "https://docs.example.com/out": httpx.Response(302, headers={"location": "https://evil.example.net/steal"}),
    "https://docs.example.com/loop": httpx.Response(302, headers={"location": "/loop"}),
    "https://docs.example.com/big": httpx.Response(200, text="x" * (MAX_BODY_BYTES * 2)),
    "https://docs.example.com/bin": httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png"}),
    "https://evil.example.net/steal": httpx.Response(200, text="stolen"),
}


@pytest.fixture
async def requests_seen() -> AsyncIterator[tuple[BaseTool, list[str]]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        page = PAGES.get(str(request.url))
        return page if page is not None else httpx.Response(404, text="not found")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        yield make_http_get(["Docs.Example.com."], client, timeout_s=5), seen


async def test_fetches_an_allowed_host(requests_seen: tuple[BaseTool, list[str]]) -> None:
    http_get, _ = requests_seen
    assert await http_get.ainvoke({"url": "https://docs.example.com/a"}) == (
        "HTTP 200 OK from https://docs.example.com/a\n\nplain text A"
    )


async def test_html_is_reduced_to_text(requests_seen: tuple[BaseTool, list[str]]) -> None:
    http_get, _ = requests_seen
    answer = await http_get.ainvoke({"url": "https://docs.example.com/page"})
    assert answer.endswith("\n\nHello\nWorld")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example.net/steal", "not on the list"),
        ("https://docs.example.com.evil.net/a", "not on the list"),
        ("https://sub.docs.example.com/a", "not on the list"),
        ("ftp://docs.example.com/a", "Only http"),
        ("file:///etc/passwd", "Only http"),
        ("https://user:pw@docs.example.com/a", "user name or password"),
        ("not a url", "Only http"),
    ],
)
async def test_refuses_what_is_not_allowed(requests_seen: tuple[BaseTool, list[str]], url: str, reason: str) -> None:
    http_get, seen = requests_seen
    with pytest.raises(ToolException, match=reason):
        await http_get.ainvoke({"url": url})
    assert seen == []


async def test_follows_redirects_on_the_allowed_host(requests_seen: tuple[BaseTool, list[str]]) -> None:
    http_get, seen = requests_seen
    answer = await http_get.ainvoke({"url": "https://docs.example.com/hop"})
    assert answer.endswith("plain text A")
    assert seen == ["https://docs.example.com/hop", "https://docs.example.com/a"]


async def test_refuses_a_redirect_to_another_host(requests_seen: tuple[BaseTool, list[str]]) -> None:
    http_get, seen = requests_seen
    with pytest.raises(ToolException, match="evil.example.net is not on the list"):
        await http_get.ainvoke({"url": "https://docs.example.com/out"})
    assert seen == ["https://docs.example.com/out"]  # the other host was never contacted


async def test_stops_redirect_loops(requests_seen: tuple[BaseTool, list[str]]) -> None:
    http_get, seen = requests_seen
    with pytest.raises(ToolException, match="Too many redirects"):
        await http_get.ainvoke({"url": "https://docs.example.com/loop"})
    assert len(seen) == 6


async def test_caps_the_body(requests_seen: tuple[BaseTool, list[str]]) -> None:
    http_get, _ = requests_seen
    answer = await http_get.ainvoke({"url": "https://docs.example.com/big"})
    assert answer.endswith("… (cut)")
    assert len(answer) < MAX_TEXT_CHARS + 200


async def test_binary_content_is_not_shown(requests_seen: tuple[BaseTool, list[str]]) -> None:
    http_get, _ = requests_seen
    answer = await http_get.ainvoke({"url": "https://docs.example.com/bin"})
    assert answer.endswith("(content of type image/png is not shown)")


async def test_offered_only_with_an_allowlist() -> None:
    async with httpx.AsyncClient() as client:
        names = [t.name for t in builtin_tools(make_settings(), http_client=client)]
        assert names == ["calculator", "current_time", "search_docs"]
        settings = make_settings(http_tool_allowlist=["docs.example.com"])
        tools = builtin_tools(settings, http_client=client)
        assert [t.name for t in tools][-1] == "http_get"
        assert "docs.example.com" in tools[-1].description
