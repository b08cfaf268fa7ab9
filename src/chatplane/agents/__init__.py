"""The graphs chatplane serves: the built-in agent kinds (``chat``, ``react``, ``multi``) and a project's own.

====================  =========================================================================================
``project``           the project file (``chatplane.json`` / ``langgraph.json``), imported: graphs and tools
``registry``          every graph served, by id: schemas, checks of a run's input, the graph a run executes
``kind``              ``AgentKind``: a graph built on the server's parts per assistant (the built-in agents)
``graphs``            building kinds on a model, with the server's middleware (context budget, approvals)
``catalog``           what assistants and runs may ask about the graphs (``GraphCatalog``)
``run_config``        what a caller may put in a run's config
``chat`` ``react``    the built-in kinds (each module's ``AGENT``)
``multi``
====================  =========================================================================================

Run a graph with ``{"recursion_limit": settings.recursion_limit}`` in its config, inside
``chatplane.agents.limits.translate_run_limits()`` (or map errors with ``as_run_limit_error``): a run that needs
more model calls, tool calls or steps than allowed then ends with ``RunLimitError``, its thread still usable.
"""

from chatplane.agents.kind import AgentContext, AgentKind

__all__ = ["AgentContext", "AgentKind"]
