"""The router each module of the LangGraph API declares its routes on: tagged ``langgraph``, and every refusal
documented as chatplane's error body, so that clients (and schemathesis) know it."""

from __future__ import annotations

from fastapi import APIRouter

from chatplane.schemas import ErrorBody

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422, 429, 503)
}


def langgraph_router(prefix: str = "") -> APIRouter:
    """A module's router: ``prefix`` (``/threads`` …), the ``langgraph`` tag and the documented refusals."""
    return APIRouter(prefix=prefix, tags=["langgraph"], responses=ERRORS)
