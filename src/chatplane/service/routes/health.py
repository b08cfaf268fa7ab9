"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chatplane.schemas import HealthResponse, ReadyResponse
from chatplane.service.deps import AgentDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="The process is alive")
async def healthz() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse}},
    summary="Storage and the model answer",
)
async def readyz(agent: AgentDep) -> JSONResponse:
    checks = await agent.ready()
    ok = all(checks.values())
    body = ReadyResponse(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
