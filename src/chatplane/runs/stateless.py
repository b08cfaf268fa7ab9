"""A stateless run: an agent once on a whole conversation, keeping nothing but the run record (status, usage)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from chatplane.agents.registry import RunTarget
from chatplane.events import EventType
from chatplane.failures import as_chatplane_error
from chatplane.runs.execution import Executor, RunHooks
from chatplane.runs.translate import StreamTranslator
from chatplane.storage.runs import RunStatus, RunStore


async def stream_stateless(
    target: RunTarget,
    messages: list[BaseMessage],
    *,
    agent: str,
    owner: str,
    model: str,
    runs: RunStore,
    executor: Executor,
    stream_tokens: bool = True,
) -> AsyncGenerator[tuple[EventType, dict[str, Any]], None]:
    """Run ``graph`` (``agent``'s, without a checkpointer) on ``messages``.

    Yields the same ``(event type, data)`` pairs as a thread's run, ending with ``run_completed``; failures raise
    chatplane errors. Closing the generator cancels the run. ``stream_tokens=False``: whole messages only.
    """
    run = await runs.create("", owner, agent, {"stateless": True, "messages": len(messages)}, "reject", model=model)
    await runs.mark_running(run)
    hooks = executor.hooks
    await RunHooks.call(hooks.started, run)
    translator = StreamTranslator()
    status: RunStatus = "cancelled"
    code: str | None = None
    config: RunnableConfig = {
        "recursion_limit": executor.settings.recursion_limit,
        "metadata": {"run_id": run.run_id, "agent": agent, "owner": owner},
        "callbacks": list(hooks.callbacks),
    }
    try:
        nested = target.served.nested
        graph = target.graph
        async for item in translator.run(graph, {"messages": messages}, config, tokens=stream_tokens, nested=nested):
            yield item
        status = "succeeded"
        yield "run_completed", {"status": status, "usage": translator.usage}
    except Exception as exc:
        error = as_chatplane_error(exc, f"run {run.run_id}")
        status, code = "failed", error.code
        error.run_id = run.run_id
        if error is exc:
            raise
        raise error from exc
    finally:
        await asyncio.shield(executor.finish(run, status, translator.usage, code))
