"""The middleware every tool-using agent runs with, in the one order that makes them work together.

Model calls, outermost first (``ModelGuards`` nests them, as ``create_agent`` nests ``wrap_model_call`` hooks)::

    (model-call-only layers)    the transcript and the context budget (``chatplane.agents.context``): once per call
    ModelErrorMiddleware        what is left after retries and fallbacks → ModelError / ModelTimeoutError
    ModelFallbackMiddleware     on failure, the same request to each of CHATPLANE_FALLBACK_MODELS in turn
    ModelRetryMiddleware        transient failures only (timeouts, connection errors, 429, 5xx), with backoff
    ModelAttemptMiddleware      one attempt: bounded by CHATPLANE_MODEL_TIMEOUT_S, its failure logged
    (the agent's own)           e.g. the embedded model's tool-call forcing, applied to every attempt

So a fallback model gets retried too, a timeout is per attempt, and a provider error is translated only once
nobody can do anything about it any more. Tool calls, outermost first::

    ToolErrorMiddleware         any failure → an error ToolMessage for the model (the run goes on)
    ToolRetryMiddleware         connection failures only (a tool may have side effects)
    ToolTimeoutMiddleware       one attempt: bounded by CHATPLANE_TOOL_TIMEOUT_S

Around the loop: ``ThreadRepairMiddleware`` (before the run) and ``RunBudget`` (``CHATPLANE_MAX_MODEL_CALLS`` /
``CHATPLANE_MAX_TOOL_CALLS`` per run, LangGraph's recursion limit, and ``RunLimitError`` at the end of a run a
limit stopped), one node before and one after each model call — see ``chatplane.agents.limits``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents.middleware import (
    AgentMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    ToolErrorMiddleware,
    ToolRetryMiddleware,
)
from langchain_core.language_models import BaseChatModel

from chatplane.agents.limits import (
    RunBudget,
    ThreadRepairMiddleware,
    steps_needed,
)
from chatplane.agents.middleware import (
    ModelAttemptMiddleware,
    ModelErrorMiddleware,
    ModelGuards,
    is_transient_model_error,
    model_call_only,
)
from chatplane.agents.tool_guards import ToolTimeoutMiddleware, is_transient_tool_error, tool_error_content
from chatplane.config import Settings
from chatplane.errors import ConfigError
from chatplane.llm import make_chat_model, parse_model_id

Middleware = AgentMiddleware[Any, Any, Any]

RETRY_INITIAL_DELAY_S = 0.5
RETRY_MAX_DELAY_S = 8.0


def fallback_models(settings: Settings) -> list[BaseChatModel]:
    """The models of ``CHATPLANE_FALLBACK_MODELS``, built now. The embedded model cannot be one (it needs starting)."""
    models = []
    for model_id in settings.fallback_models:
        provider, _ = parse_model_id(model_id)
        if provider == "local":
            raise ConfigError(
                f"CHATPLANE_FALLBACK_MODELS cannot list {model_id}: the embedded model is only started as the main "
                "model (CHATPLANE_MODEL). Use an openai: model (or any OpenAI-compatible server) as a fallback."
            )
        models.append(make_chat_model(model_id, settings))
    return models


def split_model_call_layers(middleware: Sequence[Middleware]) -> tuple[list[Middleware], list[Middleware]]:
    """``middleware`` as (what only wraps the model call, so it can nest outside the guards; the rest), in order."""
    layers = [m for m in middleware if model_call_only(m)]
    return layers, [m for m in middleware if not model_call_only(m)]


def model_guard_middleware(
    settings: Settings, *, retry_delay_s: float = RETRY_INITIAL_DELAY_S, outer: Sequence[Middleware] = ()
) -> list[Middleware]:
    """Model-call guards only (for agents without tools): translation, fallback, retry, per-attempt timeout —
    nested in one ``ModelGuards`` middleware, inside ``outer`` (model-call-only layers, outermost first)."""
    guards: list[Middleware] = [*outer, ModelErrorMiddleware()]
    fallbacks = fallback_models(settings)
    if fallbacks:
        guards.append(ModelFallbackMiddleware(*fallbacks))
    if settings.model_max_retries:
        guards.append(
            ModelRetryMiddleware(
                max_retries=settings.model_max_retries,
                retry_on=is_transient_model_error,
                on_failure="error",  # "continue" would put the exception's text in the conversation
                initial_delay=retry_delay_s,
                max_delay=RETRY_MAX_DELAY_S,
            )
        )
    guards.append(ModelAttemptMiddleware(settings.model_timeout_s))
    return [ModelGuards(guards)]


def guard_middleware(
    settings: Settings,
    *,
    extra: Sequence[Middleware] = (),
    retry_delay_s: float = RETRY_INITIAL_DELAY_S,
    outer: Sequence[Middleware] = (),
) -> list[Middleware]:
    """Everything a tool-using agent runs with, ``extra`` (the agent's own middleware) placed inside the guards,
    ``outer`` (model-call-only layers) outside them, all model-call wrappers in one ``ModelGuards``."""
    budget = RunBudget(settings.max_model_calls, settings.max_tool_calls)
    middleware: list[Middleware] = [
        *model_guard_middleware(settings, retry_delay_s=retry_delay_s, outer=outer),
        ToolErrorMiddleware(tool_error_content),
        ToolRetryMiddleware(
            max_retries=1, retry_on=is_transient_tool_error, on_failure="error", initial_delay=retry_delay_s
        ),
        ToolTimeoutMiddleware(settings.tool_timeout_s),
        ThreadRepairMiddleware(),
        budget,
        *extra,
    ]
    budget.reserve_steps = steps_needed(middleware)  # counting every hook, its own included
    return middleware
