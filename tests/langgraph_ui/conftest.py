"""The ``useStream`` page (built from ``package.json`` by ``make test``: ``npm ci``, then esbuild into ``dist/``),
served to Chromium by a tiny static server on an origin of its own, against a real chatplane server that lets that
origin in (``CHATPLANE_CORS_ORIGINS``). Both are on loopback: Chromium refuses a public page calling a loopback
address (Local Network Access), which a page answered by ``page.route`` would be."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page

from tests.conftest import IN_CI
from tests.web.conftest import open_browser, playwright, pytest_runtest_makereport, server_factory  # noqa: F401

DIST = Path(__file__).parent / "dist"


def built_page() -> Path:
    if not (DIST / "app.js").exists():
        message = "the useStream page is not built (`make test`, or `npm ci && npm run build` in tests/langgraph_ui)"
        if IN_CI:
            pytest.fail(message + " — CI requires it.")
        pytest.skip(message)
    return DIST


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's output."""


@pytest.fixture
def page_origin() -> Iterator[str]:
    """The origin serving ``dist/`` (a thread of the test process, stopped at the end)."""
    handler = functools.partial(_Quiet, directory=str(built_page()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def open_ui(open_browser: Any, page_origin: str) -> Any:  # noqa: F811 (the fixture imported above)
    """``open_ui(api_url, assistant)`` → a Page showing the useStream app for that server and graph."""

    def make(api_url: str, assistant: str) -> Page:
        page = open_browser()
        page.goto(f"{page_origin}/index.html?{urlencode({'api': api_url, 'assistant': assistant})}")
        return page

    return make
