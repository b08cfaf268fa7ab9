"""``/ok`` and ``/info``: what LangGraph's clients and Studio ask a server before anything else.

``/info`` answers as LangGraph Platform does — its version, LangGraph's, the features it has (``flags``: only
assistants and crons here; no LangSmith tracing of its own) and where it runs (``host``: self-hosted). ``/ok`` is
public, like ``/healthz``; ``/info`` needs the same credential as every other route.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import chatplane
from chatplane.service.deps import CurrentUser
from chatplane.service.langgraph.routing import langgraph_router

router = langgraph_router()


def _langgraph_version() -> str:
    try:
        return version("langgraph")
    except PackageNotFoundError:  # pragma: no cover - langgraph is a dependency
        return "unknown"


@router.get("/ok")
async def ok() -> dict[str, bool]:
    """Alive (LangGraph's health check)."""
    return {"ok": True}


@router.get("/info")
async def info(user: CurrentUser) -> dict[str, Any]:
    """The server's version and features, as LangGraph Platform reports them."""
    return {
        "version": chatplane.__version__,
        "langgraph_py_version": _langgraph_version(),
        "flags": {
            "assistants": True,
            "crons": True,
            "langsmith": False,
            "langsmith_tracing_replicas": False,
        },
        "host": {
            "kind": "self-hosted",
            "project_id": None,
            "host_revision_id": None,
            "revision_id": None,
            "tenant_id": None,
        },
    }
