"""LangSmith's untraced span set-up and end run on the event loop, not in a worker thread.

LangChain wraps every agent middleware's model/tool hook in LangSmith's ``traceable``, which by default hops to a
worker thread twice per hook and call (set-up and end of a trace span) and starts a task for the hook itself — a dozen
thread round trips per model call. With LangSmith tracing off, set-up and end only read context variables, so
``install_langsmith_inline`` gives LangSmith an ``aio_to_thread`` (its public ``set_runtime_overrides`` hook, made for
runtimes such as Temporal) that runs them on the loop while tracing is off and keeps LangSmith's own way while it is
on. The override is process-wide: ``chatplane.llm.open_chat_model`` installs it when it starts a model, never at
import, and leaves alone an override the embedding application set.

Two things here are LangSmith's internals, not its API: reading the current override (``get_runtime_overrides`` is in
the private ``langsmith._runtime_overrides``) and the premise that untraced set-up and end are cheap and need no
thread (``langsmith.run_helpers``). ``UPSTREAM_VERSION`` is the release both were checked against: a test fails when
the installed one differs, so an upgrade re-reads them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

UPSTREAM_VERSION = "0.15.1"
"""The langsmith release ``install_langsmith_inline`` was checked against (see the module docstring)."""


async def _langsmith_to_thread(
    default: Callable[..., Awaitable[Any]],
    ctx: contextvars.Context,
    func: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """With tracing off, run ``func`` (a span's set-up or end) in ``ctx`` here, on the loop; with it on, in LangSmith's
    worker thread (``default``)."""
    from langsmith.utils import tracing_is_enabled

    if ctx.run(tracing_is_enabled):
        return await default(ctx, func, *args, **kwargs)
    return ctx.run(func, *args, **kwargs)


def install_langsmith_inline() -> None:
    """Install ``_langsmith_to_thread`` as LangSmith's ``aio_to_thread`` (idempotent; another override set by the
    embedding application is left alone)."""
    try:
        import langsmith
        from langsmith._runtime_overrides import get_runtime_overrides
    except ImportError:  # pragma: no cover - langsmith comes with langchain
        return
    current = get_runtime_overrides().aio_to_thread
    if current is None:
        langsmith.set_runtime_overrides(aio_to_thread=_langsmith_to_thread)
