"""``/store``: the long-term store as LangGraph Platform serves it (``langgraph-sdk``'s ``client.store``) — the same
routes and owner scoping as ``/v1/store`` (``chatplane.service.routes.store``)."""

from __future__ import annotations

from chatplane.service.routes.store import store_router

router = store_router("/store", ["langgraph"])
