"""The LangGraph Platform API (the Agent Protocol) at the root path, for LangGraph's own clients: ``langgraph-sdk``
(Python and JS), ``RemoteGraph``, ``useStream``, LangGraph Studio.

Each module is a thin translation onto the same owner-scoped services as ``/v1`` (``agent.for_user(owner)``): no
second run engine, the same ownership (another user's thread, run or assistant is the same 404), the same limits.
A field chatplane does not support is refused with a 422 naming it, never silently dropped.

==============  ============================================================================================
``system``      ``/ok``, ``/info``
``assistants``  ``/assistants``: create, get, patch, delete, search, count, versions, latest, schemas, graph
``threads``     ``/threads``: create, get, patch, delete, search, count, copy, state, history
``runs``        ``/threads/{id}/runs``, ``/runs``: create, stream, wait, join, cancel, list, get, delete, batch
``thread_stream`` ``/threads/{id}/stream``: every run of a thread as it comes
``thread_protocol`` ``/threads/{id}/commands``: the thread protocol's commands (``client.threads.stream``)
``protocol_commands`` each command, whichever transport brings it; ``protocol_runs``: ``run.start``,
                ``input.respond``; ``protocol_state``: ``state.get``, ``state.listCheckpoints``, ``state.fork``
``protocol_stream`` ``/threads/{id}/stream/events``: the thread protocol's events, run after run
``protocol_ws``   ``/threads/{id}/stream/events`` as a WebSocket: every command, and the events of its subscriptions
                (``protocol_socket``: one ordered reader per socket)
``protocol_events`` a run's events → the protocol's events and their seq; ``protocol_messages``: message chunks
``run_body``    a run request (every field taken or refused with a 422 naming it), a run as LangGraph's ``Run``
``stateless``   ``/runs``: stateless runs on a temporary thread (create, stream, wait, batch)
``crons``       ``/runs/crons``, ``/threads/{id}/runs/crons``: schedules (create, update, delete, search, count)
``stream``      chatplane's run events → LangGraph's stream parts
``store``       ``/store``: the caller's long-term store items (put, get, delete, search, namespaces)
``routing``     the router each module declares its routes on (tag, documented refusals)
==============  ============================================================================================
"""

from __future__ import annotations

from fastapi import APIRouter

from chatplane.service.langgraph import (
    assistants,
    crons,
    protocol_stream,
    protocol_ws,
    runs,
    stateless,
    store,
    system,
    thread_protocol,
    thread_stream,
    threads,
)
from chatplane.service.routing import serve_flat

# Every module's routes, flat (chatplane.service.routing says why); the runs' first, as most requests are theirs.
_MODULES = (runs, stateless, threads, thread_stream, thread_protocol, protocol_stream, protocol_ws, crons, assistants)
router = APIRouter()
serve_flat(router, *(module.router for module in (*_MODULES, system, store)))

__all__ = ["router"]
