"""Graphs a team might bring: the end-to-end tests serve them from ``chatplane.json`` beside this file.

Only the LLM is faked (LangChain's ``GenericFakeChatModel``, which streams its reply token by token).
"""

from __future__ import annotations

import asyncio
import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt


def _model(reply: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(reply)] * 1000))


# --- a messages graph: an LLM answers, a custom stream part says what it is doing ---------------------------------
async def answer(state: MessagesState) -> dict[str, Any]:
    get_stream_writer()({"progress": "thinking"})
    last = state["messages"][-1].text
    reply = await _model(f"support says {last}").ainvoke(state["messages"])
    return {"messages": [reply]}


support = StateGraph(MessagesState).add_node("answer", answer).add_edge(START, "answer").compile()


# --- a graph without messages, with a context schema ---------------------------------------------------------------
class CounterState(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


@dataclass
class CounterContext:
    step: int = 1
    label: str = "tick"


async def tick(state: CounterState, runtime: Runtime[CounterContext]) -> dict[str, Any]:
    step = runtime.context.step if runtime.context else 1
    get_stream_writer()({"adding": step})
    return {"count": state.get("count", 0) + step, "log": [runtime.context.label if runtime.context else "tick"]}


counter = StateGraph(CounterState, context_schema=CounterContext)  # a StateGraph: chatplane compiles it
counter.add_node("tick", tick).add_edge(START, "tick").add_edge("tick", END)


# --- a factory: the graph depends on the run's config --------------------------------------------------------------
def make_greeter(config: RunnableConfig) -> Any:
    greeting = (config.get("configurable") or {}).get("greeting", "hello")

    async def greet(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"{greeting}, {state['messages'][-1].text}")]}

    return StateGraph(MessagesState).add_node("greet", greet).add_edge(START, "greet").compile()


# --- a subgraph that asks a human -----------------------------------------------------------------------------------
class ApprovalState(TypedDict, total=False):
    request: str
    decision: str
    done: bool


def ask(state: ApprovalState) -> dict[str, Any]:
    decision = interrupt({"question": f"approve {state['request']}?"})
    return {"decision": str(decision)}


review = StateGraph(ApprovalState).add_node("ask", ask).add_edge(START, "ask").compile()


def finish(state: ApprovalState) -> dict[str, Any]:
    return {"done": True}


approval = (
    StateGraph(ApprovalState)
    .add_node("review", review)
    .add_node("finish", finish)
    .add_edge(START, "review")
    .add_edge("review", "finish")
    .compile()
)


# --- slow steps with a side effect each: cancel, take-over ---------------------------------------------------------
class StepsState(TypedDict, total=False):
    done: Annotated[list[str], operator.add]


def _step(name: str) -> Any:
    async def run(state: StepsState) -> dict[str, Any]:
        await asyncio.sleep(float(os.environ.get("DEMO_STEP_S", "0.4")))
        journal = os.environ.get("DEMO_JOURNAL")
        if journal:  # the side effect a step must not repeat
            await asyncio.to_thread(_append, Path(journal), f"{name}\n")
        return {"done": [name]}

    return run


steps = (
    StateGraph(StepsState)
    .add_node("a", _step("a"))
    .add_node("b", _step("b"))
    .add_node("c", _step("c"))
    .add_edge(START, "a")
    .add_edge("a", "b")
    .add_edge("b", "c")
    .compile()
)


def _append(path: Path, line: str) -> None:
    with path.open("a") as file:
        file.write(line)


def lookup_order(order_id: str) -> str:
    """Look up an order's status by its id."""
    return f"order {order_id} shipped"
