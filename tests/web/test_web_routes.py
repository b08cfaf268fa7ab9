"""How the page is served: a strict Content-Security-Policy, every module it imports, nothing else; and the rule
that model output never goes through an HTML parser (no innerHTML and friends anywhere in the page's scripts)."""

from __future__ import annotations

import re

import httpx

from chatplane.service.routes.web import WEB_DIR
from tests.conftest import make_settings

IMPORT = re.compile(r"""^import\s.*?from\s+["']\./([\w.-]+)["'];?$""", re.MULTILINE)


def _csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";"))


async def test_the_page_is_served_with_a_strict_content_security_policy(client_for) -> None:
    client = await client_for(make_settings())
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/app.js"></script>' in response.text
    csp = _csp(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    # No inline script or style for the policy to forbid: the page itself must follow it.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text)
    assert "<style" not in response.text and " style=" not in response.text
    assert not re.search(r"\son[a-z]+\s*=", response.text)  # no inline event handlers


async def test_every_module_the_page_imports_is_served_as_javascript(client_for) -> None:
    client = await client_for(make_settings())
    seen: set[str] = set()
    pending = ["app.js"]
    while pending:
        name = pending.pop()
        seen.add(name)
        response = await client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.headers["x-content-type-options"] == "nosniff"
        pending += [module for module in IMPORT.findall(response.text) if module not in seen]
    assert seen == {path.name for path in WEB_DIR.glob("*.js")}, "a module is never imported, or missing"
    for name, media_type in (("style.css", "text/css; charset=utf-8"), ("favicon.svg", "image/svg+xml")):
        response = await client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type


async def test_only_the_pages_own_files_are_served(client_for) -> None:
    client = await client_for(make_settings())
    for path in (
        "/static/index.html",
        "/static/missing.js",
        "/static/..%2Fservice%2Fapp.py",
        "/static/%2e%2e/pyproject.toml",
        "/static/.hidden.js",
        "/static/APP.JS",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    schema = (await client.get("/openapi.json")).json()
    assert "/" not in schema["paths"] and not any(p.startswith("/static") for p in schema["paths"])


def test_no_script_of_the_page_parses_strings_as_html() -> None:
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment|document\.write|\beval\(|new Function"
    )
    for path in WEB_DIR.glob("*.js"):
        assert not sinks.search(path.read_text()), f"{path.name} builds HTML from strings"
