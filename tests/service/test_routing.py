"""The app's routes are one flat list (chatplane.service.routing): no router nested in another, so a request is
matched by one loop, and each path and method is served by exactly one route."""

from __future__ import annotations

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Route

from chatplane.service.app import create_app


def test_every_route_is_served_flat_and_once() -> None:
    routes = create_app().routes
    assert all(type(route) in (APIRoute, APIWebSocketRoute, Route) for route in routes), [
        type(route).__name__ for route in routes if type(route) not in (APIRoute, APIWebSocketRoute, Route)
    ]
    seen = [(route.path, method) for route in routes for method in sorted(getattr(route, "methods", None) or {"WS"})]
    assert len(seen) == len(set(seen)), "a path and method served twice"


def test_langgraph_routes_keep_their_tag_and_documented_refusals() -> None:
    wait = next(
        r for r in create_app().routes if isinstance(r, APIRoute) and r.path == "/threads/{thread_id}/runs/wait"
    )
    assert wait.tags == ["langgraph"]
    assert {404, 422} <= set(wait.responses)
