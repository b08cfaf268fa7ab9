"""The support desk: a LangGraph graph with its own state — a ticket, its category and priority, the order it is
about and the reply — served by chatplane from ``chatplane.json``.

    classify ──▶ look_up ──▶ review_refund (refunds only: a human approves) ──▶ draft_reply

Plain Python, no model: it runs offline and gives the same answer every time. Each node reports its progress with
LangGraph's stream writer (a run asked for ``stream_mode=["custom"]`` receives it), and ``review_refund`` pauses the
run with ``interrupt(...)`` until a human answers through ``POST /v1/runs/{id}/resume``.
"""

from __future__ import annotations

import operator
import os
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from orders import lookup_order, order_total  # "dependencies": ["."] puts this folder on the import path
from pydantic import BaseModel, Field

Category = Literal["refund", "shipping", "technical", "other"]
Priority = Literal["low", "normal", "high", "urgent"]


class TicketIn(BaseModel):
    """A run's input: the customer's message, and who they are."""

    text: str = Field(min_length=1, description="The customer's message.")
    customer: str = Field("", description="Their name, for the reply.")


class Ticket(TicketIn):
    """The thread's state: the ticket and everything the desk worked out about it."""

    category: Category | None = None
    priority: Priority | None = None
    order_id: str | None = None
    order: str | None = None
    amount: float | None = None
    refund: Literal["approved", "declined"] | None = None
    reviewer_note: str | None = None
    reply: str | None = None
    log: Annotated[list[str], operator.add] = Field(default_factory=list)


@dataclass
class DeskContext:
    """A run's context (or an assistant's): who signs the replies, and refunds small enough to need no human."""

    team: str = field(default_factory=lambda: os.environ.get("DESK_TEAM", "Support desk"))
    auto_approve_up_to: float = 0.0


_CATEGORIES: list[tuple[Category, tuple[str, ...]]] = [
    ("refund", ("refund", "money back", "broken", "damaged", "return")),
    ("shipping", ("where is", "delivery", "shipped", "tracking", "late")),
    ("technical", ("error", "crash", "does not work", "doesn't work", "bug")),
]


_FRESH = {"order": None, "amount": None, "refund": None, "reviewer_note": None, "reply": None}


def classify(state: Ticket) -> dict[str, Any]:
    text = state.text.lower()
    category: Category = next((c for c, words in _CATEGORIES if any(w in text for w in words)), "other")
    urgent = "urgent" in text or "asap" in text
    priority: Priority = "urgent" if urgent else "high" if category == "refund" else "normal"
    found = re.search(r"#?\b(\d{4,})\b", state.text)
    get_stream_writer()({"node": "classify", "progress": f"{category}, {priority} priority"})
    return {
        "category": category,
        "priority": priority,
        "order_id": found.group(1) if found else None,
        **_FRESH,  # a thread's next ticket starts without the last one's outcome
        "log": [f"classified as {category} ({priority})"],
    }


def look_up(state: Ticket) -> dict[str, Any]:
    write = get_stream_writer()
    order_id = state.order_id
    if order_id is None:
        write({"node": "look_up", "progress": "no order number in the ticket"})
        return {"order": None, "amount": None, "log": ["no order to look up"]}
    write({"node": "look_up", "progress": f"looking up order {order_id}"})
    order = lookup_order(order_id)  # the project's tool, called as the plain function it is
    amount = order_total(order_id)
    write({"node": "look_up", "progress": order})
    return {"order": order, "amount": amount, "log": [f"looked up order {order_id}"]}


def route(state: Ticket) -> Literal["review_refund", "draft_reply"]:
    return "review_refund" if state.category == "refund" and state.amount else "draft_reply"


def review_refund(state: Ticket, runtime: Runtime[DeskContext]) -> dict[str, Any]:
    amount = state.amount or 0.0
    limit = runtime.context.auto_approve_up_to if runtime.context else 0.0
    if amount <= limit:
        get_stream_writer()({"node": "review_refund", "progress": f"${amount:.2f} is within the automatic limit"})
        return {"refund": "approved", "reviewer_note": "automatic", "log": ["refund approved automatically"]}
    # The run pauses here (status "waiting"); what the human sends as `resume` is what interrupt() returns.
    answer = interrupt(
        {
            "question": f"Refund ${amount:.2f} on order {state.order_id} to {state.customer or 'the customer'}?",
            "order": state.order,
            "ticket": state.text,
            "choices": ["approve", "decline"],
        }
    )
    approved, note = _decision(answer)
    verdict = "approved" if approved else "declined"
    return {"refund": verdict, "log": [f"refund {verdict} by a human"], **({"reviewer_note": note} if note else {})}


def _decision(answer: Any) -> tuple[bool, str]:
    """A resume value: ``"approve"`` / ``"decline"``, a bool, or ``{"approved": bool, "note": "..."}``."""
    if isinstance(answer, dict):
        return bool(answer.get("approved")), str(answer.get("note", ""))
    if isinstance(answer, bool):
        return answer, ""
    return str(answer).strip().lower() in {"approve", "approved", "yes", "y", "ok"}, ""


def draft_reply(state: Ticket, runtime: Runtime[DeskContext]) -> dict[str, Any]:
    get_stream_writer()({"node": "draft_reply", "progress": "drafting the reply"})
    team = runtime.context.team if runtime.context else "Support desk"
    name = state.customer or "there"
    body = {
        "refund": {
            "approved": f"we have refunded ${state.amount or 0:.2f} for order {state.order_id}.",
            "declined": "we cannot refund this order, but a colleague will contact you about a repair.",
        }.get(state.refund or "", "we are looking into your refund request."),
        "shipping": f"the latest on your order: {state.order}" if state.order else "please send us your order number.",
        "technical": "our technical team has your report and will get back to you within a day.",
    }.get(state.category or "other", "thank you for your message; we will get back to you soon.")
    return {"reply": f"Hi {name}, {body} Best regards, {team}", "log": ["reply drafted"]}


builder = StateGraph(Ticket, input_schema=TicketIn, context_schema=DeskContext)
builder.add_node("classify", classify)
builder.add_node("look_up", look_up)
builder.add_node("review_refund", review_refund)
builder.add_node("draft_reply", draft_reply)
builder.add_edge(START, "classify")
builder.add_edge("classify", "look_up")
builder.add_conditional_edges("look_up", route)
builder.add_edge("review_refund", "draft_reply")
builder.add_edge("draft_reply", END)

graph = builder.compile()
"""What ``chatplane.json`` names: chatplane gives it the server's checkpointer (a copy) when it serves it."""
