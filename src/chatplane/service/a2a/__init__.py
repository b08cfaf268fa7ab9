"""A2A: each assistant an A2A agent — its card, and its JSON-RPC endpoint on a2a-sdk's server pieces, answered by
chatplane's runs (a task) on chatplane's threads (a context).

==============  ============================================================================================
``routes``      the cards (the server's well-known one, each assistant's) and the JSON-RPC endpoints
``cards``       an assistant's agent card (its skill, interfaces, the bearer scheme)
``handler``     a2a-sdk's ``RequestHandler`` on the owner-scoped services: send, stream, get, cancel, resubscribe
``tasks``       a run as an A2A task; a run's events as A2A stream events
==============  ============================================================================================
"""

from chatplane.service.a2a.routes import a2a_dispatcher, router

__all__ = ["a2a_dispatcher", "router"]
