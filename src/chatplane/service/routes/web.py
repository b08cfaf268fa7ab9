"""The chat page: ``GET /`` and its static files under ``/static/`` (``src/chatplane/web``, no build step).

The page is plain HTML, CSS and ES modules that talk to the public API (``/v1`` threads and runs, SSE with
``fetch``). It is served under a strict Content-Security-Policy: scripts, styles and connections only from this
origin, no inline script or style, no framing — so even a rendering bug could not run injected model output.
Only the files that ship in the folder are served, by exact name; anything else is the API's usual JSON 404.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate (ETag) so a new release is picked up at once
}
PAGE_HEADERS = {**_COMMON_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY"}
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg)$")

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
def asset(name: str) -> FileResponse:
    """One file of the page, by exact name (no sub-folders, no dot-files, only scripts, styles and icons). A plain
    ``def``: FastAPI runs it in a worker thread, so the file-system check never blocks the event loop."""
    path = WEB_DIR / name
    if not _ASSET_NAME.match(name) or not path.is_file():
        raise HTTPException(status_code=404, detail="No such file.")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=_COMMON_HEADERS)
