"""Routers served flat: every route of the app in one list, matched by Starlette's plain loop.

FastAPI 0.163's ``include_router`` keeps an included router nested, and each request walks every included router in
turn, with FastAPI's scope bookkeeping around each of its routes — and does it twice, once to match and once to
handle. Measured on this app: 0.6 ms to find LangGraph's ``POST /threads/{id}/runs/wait`` behind ~100 routes, against
~0.1 ms for the same routes in one flat list (``tests/service/test_routing.py`` keeps the list flat). chatplane's
routers carry their own prefix, tags and responses, set when each route is declared, so serving their routes directly
loses nothing; the order of the list, and so which route wins, is the order the routers are given in.
"""

from __future__ import annotations

from fastapi import APIRouter


def serve_flat(target: APIRouter, *routers: APIRouter) -> None:
    """Add every route of ``routers`` to ``target`` itself, in order (``target.routes`` is Starlette's public list)."""
    for router in routers:
        target.routes.extend(router.routes)
