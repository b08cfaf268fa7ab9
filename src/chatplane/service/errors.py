"""The one place where errors become HTTP responses: ``{"error": {"code", "message"}}``, never exception text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatplane.errors import AuthenticationError, ChatplaneError, RateLimitedError
from chatplane.failures import as_chatplane_error
from chatplane.openai_compat import openai_error
from chatplane.storage.engine import STORAGE_ERRORS

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"code": code, "message": message, **(extra or {})}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _describe_validation(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")  # the message, never the offending input
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


_OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


def is_openai_path(path: str) -> bool:
    """OpenAI-compatible routes answer errors in OpenAI's shape, so OpenAI clients classify and retry them."""
    return path.rstrip("/") in _OPENAI_PATHS or path.startswith("/v1/models/")


def _openai_route(request: Request) -> bool:
    return is_openai_path(request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ChatplaneError)
    async def _chatplane_error(request: Request, exc: ChatplaneError) -> JSONResponse:
        headers = {}
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after)
        elif isinstance(exc, AuthenticationError):
            headers["WWW-Authenticate"] = "Bearer"
        if _openai_route(request):
            status = 400 if exc.status == 422 else exc.status
            return JSONResponse(openai_error(status, exc.code, exc.message), status_code=status, headers=headers)
        extra = {"run_id": exc.run_id} if exc.run_id else {}
        return error_response(exc.status, exc.code, exc.message, headers=headers, extra=extra)

    async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
        # A database fault outside a run (authentication, thread lookups …): the same 503 as inside one.
        return await _chatplane_error(request, as_chatplane_error(exc, f"{request.method} {request.url.path}"))

    for error_type in STORAGE_ERRORS:
        app.add_exception_handler(error_type, _storage_error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = _describe_validation(list(exc.errors()))
        if _openai_route(request):
            return JSONResponse(openai_error(400, "invalid_request", message), status_code=400)
        return error_response(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. not UTF-8): bad input, like the rest
            return error_response(422, "invalid_request", "The request body could not be parsed as JSON.")
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))
