"""Do chatplane's agents answer a newcomer's first questions right on each embedded model? (and how fast)

30 questions written for this evaluation, run through chatplane's own agents (``react``; ``multi`` for the routing
ones) on each embedded model, in-process, one at a time, ``temperature`` 0, each on a fresh thread (the memory ones
hold a two-turn thread: only the second turn is scored):

==================  ==  =======================================================================================
category            n   right when
==================  ==  =======================================================================================
arithmetic          6   the calculator was called and the answer has the number
time zones          5   current_time was called for the right zone and the answer has that zone's hour
document search     5   search_docs was called and the answer has the fact (from the sample documents)
general knowledge   6   no tool was called and the answer has the fact
multi-turn memory   4   the second turn: the fact from the first (no tool), or a calculation on it
multi-agent         4   ``multi``: handed to the right agent (or to none) and the answer has the fact
==================  ==  =======================================================================================

Also printed: time to first token (the first token of the answer the user sees, from the message sent: routing,
arguments and the tool included), tokens/s while the answer streams, load time and the memory the model took.

``python -m benchmarks.agent_eval --models local:qwen2.5-coder-1.5b local:qwen2.5-coder-0.5b local:smollm2-135m``
(each model must be installed: ``make model MODEL=...``); ``--only arithmetic "time zones"`` runs some categories.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.agents.multi import build_multi
from chatplane.agents.react import build_react
from chatplane.config import Settings
from chatplane.llm import open_chat_model
from chatplane.tools import builtin_tools


@dataclass(frozen=True)
class Question:
    category: str
    text: str
    expect: tuple[str, ...] = ()
    """Any of these (case-insensitive) in the answer; a zone name for the time questions."""
    tool: str | None = None
    """The tool (``multi``: the agent) that must be called; ``None``: none may be."""
    before: tuple[str, ...] = ()
    """Earlier turns of the thread (not scored)."""
    agent: str = "react"


Q = Question
QUESTIONS = [
    Q("arithmetic", "What is 1234 + 4321?", ("5555",), "calculator"),
    Q("arithmetic", "What is 17 * 23?", ("391",), "calculator"),
    Q("arithmetic", "Compute 2 to the power of 10.", ("1024",), "calculator"),
    Q("arithmetic", "What is 15% of 80?", ("12",), "calculator"),
    Q("arithmetic", "How much is 1000 divided by 8?", ("125",), "calculator"),
    Q("arithmetic", "What is (45 + 55) * 3?", ("300",), "calculator"),
    Q("time zones", "What time is it in Tokyo right now?", ("Asia/Tokyo",), "current_time"),
    Q("time zones", "What's the current date and time in New York?", ("America/New_York",), "current_time"),
    Q("time zones", "What time is it in London?", ("Europe/London",), "current_time"),
    Q("time zones", "Current time in Sydney, please.", ("Australia/Sydney",), "current_time"),
    Q("time zones", "What time is it now in UTC?", ("UTC",), "current_time"),
    Q("document search", "Which agents does chatplane have?", ("react",), "search_docs"),
    Q(
        "document search",
        "In chatplane, what HTTP status does a message to a thread of another agent get?",
        ("409",),
        "search_docs",
    ),
    Q("document search", "Where does chatplane serve its Prometheus metrics?", ("/metrics",), "search_docs"),
    Q("document search", "What database does chatplane use in production?", ("postgres",), "search_docs"),
    Q(
        "document search",
        "Which chatplane setting lists the MCP servers?",
        ("CHATPLANE_MCP_SERVERS",),
        "search_docs",
    ),
    Q("general knowledge", "What is the capital of France?", ("Paris",)),
    Q("general knowledge", "Who wrote Romeo and Juliet?", ("Shakespeare",)),
    Q("general knowledge", "What is the chemical symbol for gold?", ("Au",)),
    Q("general knowledge", "Hello! How are you today?", ("",)),
    Q("general knowledge", "How many legs does a spider have?", ("8", "eight")),
    Q("general knowledge", "What color do you get by mixing blue and yellow?", ("green",)),
    Q("multi-turn memory", "What is my name?", ("Ana",), before=("Hi, my name is Ana.",)),
    Q("multi-turn memory", "Which city do I live in?", ("Lisbon",), before=("I live in Lisbon.",)),
    Q("multi-turn memory", "What is my favourite colour?", ("green",), before=("My favourite colour is green.",)),
    Q("multi-turn memory", "Now add 6 to that result.", ("150",), "calculator", before=("What is 12 * 12?",)),
    Q("multi-agent", "What is 17 * 23?", ("391",), "transfer_to_math", agent="multi"),
    Q("multi-agent", "What time is it in Tokyo right now?", ("Asia/Tokyo",), "transfer_to_research", agent="multi"),
    Q("multi-agent", "What is the capital of Japan?", ("Tokyo",), agent="multi"),
    Q("multi-agent", "Which agents does chatplane have?", ("react",), "transfer_to_research", agent="multi"),
]
CATEGORIES = list(dict.fromkeys(q.category for q in QUESTIONS))


@dataclass
class Outcome:
    question: Question
    tools: list[tuple[str, dict[str, Any]]]
    answer: str
    right_tool: bool
    right_answer: bool
    ttft_s: float | None
    tokens: int
    stream_s: float
    total_s: float

    @property
    def right(self) -> bool:
        return self.right_tool and self.right_answer


@dataclass
class ModelRun:
    model: str
    load_s: float = 0.0
    rss_mib: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def hour_forms(zone: str) -> list[str]:
    now = datetime.now(ZoneInfo(zone))
    h12 = now.hour % 12 or 12
    return [f"{now.hour:02d}:", f"{now.hour}:", f"{h12}:"]


def expected_in(question: Question, answer: str) -> bool:
    text = answer.lower().replace(",", "")
    if "/" in question.expect[0] and not question.expect[0].startswith("/") or question.expect[0] == "UTC":
        return any(form in text for form in hour_forms(question.expect[0]))
    return any(e.lower() in text for e in question.expect)


def tool_called_right(question: Question, tools: list[tuple[str, dict[str, Any]]]) -> bool:
    names = [n for n, _ in tools]
    if question.tool is None:
        return not [n for n in names if not n.startswith("transfer_to_writer")]
    if question.tool not in names:
        return False
    if question.tool == "current_time":
        zones = [str(args.get("timezone", "UTC")) for n, args in tools if n == "current_time"]
        return question.expect[0] in zones
    return True


def this_turn(messages: list[AnyMessage]) -> list[AnyMessage]:
    last_human = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
    return messages[last_human + 1 :]


async def ask(
    graph: Any, settings: Settings, thread: str, text: str
) -> tuple[list[AnyMessage], float | None, int, float]:
    """One turn, streamed: (this turn's messages, time to first answer token, answer tokens, streaming time)."""
    config: Any = {"configurable": {"thread_id": thread}, "recursion_limit": 40}
    started = time.perf_counter()
    first: float | None = None
    last = started
    tokens = 0
    async for item in graph.astream({"messages": [HumanMessage(text)]}, config, stream_mode="messages", subgraphs=True):
        chunk = item[1][0] if isinstance(item[1], tuple) else item[0]
        if isinstance(chunk, AIMessageChunk) and chunk.text:
            now = time.perf_counter()
            first = first or now
            last = now
            tokens += 1
    state = await graph.aget_state(config)
    ttft = None if first is None else first - started
    return this_turn(state.values["messages"]), ttft, tokens, (last - first) if first else 0.0


async def run_model(model_id: str, only: list[str] | None) -> ModelRun:
    # a slow shared machine must not turn into timeouts: this measures answers, and speed separately
    settings = Settings(_env_file=None, model=model_id, storage_url="memory://", model_timeout_s=600)
    run = ModelRun(model_id)
    before = rss_mib()
    started = time.perf_counter()
    async with open_chat_model(model_id, settings) as handle:
        run.load_s = time.perf_counter() - started
        run.rss_mib = rss_mib() - before
        tools = builtin_tools(settings)
        graphs = {
            "react": build_react(handle.model, settings=settings, checkpointer=InMemorySaver(), tools=tools),
            "multi": build_multi(handle.model, settings=settings, checkpointer=InMemorySaver(), tools=tools),
        }
        for question in QUESTIONS:
            if only and question.category not in only:
                continue
            thread = uuid.uuid4().hex
            graph = graphs[question.agent]
            begun = time.perf_counter()
            try:
                for earlier in question.before:
                    await ask(graph, settings, thread, earlier)
                turn_start = time.perf_counter()
                messages, ttft, tokens, stream_s = await ask(graph, settings, thread, question.text)
            except Exception as exc:  # a benchmark reports failures, it does not stop at the first
                run.errors.append(f"{question.text}: {type(exc).__name__}")
                continue
            calls = [(c["name"], c["args"]) for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
            answer = messages[-1].text if messages and not isinstance(messages[-1], ToolMessage) else ""
            outcome = Outcome(
                question,
                calls,
                answer,
                tool_called_right(question, calls),
                expected_in(question, answer),
                ttft,
                tokens,
                stream_s,
                time.perf_counter() - turn_start,
            )
            run.outcomes.append(outcome)
            mark = "ok " if outcome.right else "BAD"
            shown = re.sub(r"\s+", " ", answer)[:90]
            print(
                f"  {mark} [{question.category}] {question.text!r} tools={[n for n, _ in calls]} "
                f"{time.perf_counter() - begun:5.1f}s -> {shown!r}",
                flush=True,
            )
    return run


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def report(runs: list[ModelRun]) -> str:
    lines = ["| category | " + " | ".join(r.model for r in runs) + " |", "|---|" + "---|" * len(runs)]
    for category in CATEGORIES:
        cells = []
        for r in runs:
            mine = [o for o in r.outcomes if o.question.category == category]
            cells.append(percent(sum(o.right for o in mine), len(mine)))
        lines.append(f"| {category} | " + " | ".join(cells) + " |")

    def row(name: str, value: Any) -> None:
        lines.append(f"| {name} | " + " | ".join(value(r) for r in runs) + " |")

    row("**all 30**", lambda r: percent(sum(o.right for o in r.outcomes), len(r.outcomes)))
    row(
        "tool questions: right tool and right answer",
        lambda r: percent(
            sum(o.right for o in r.outcomes if o.question.tool), sum(1 for o in r.outcomes if o.question.tool)
        ),
    )
    row(
        "no-tool questions: answered without a tool",
        lambda r: percent(
            sum(o.right_tool for o in r.outcomes if not o.question.tool),
            sum(1 for o in r.outcomes if not o.question.tool),
        ),
    )

    def med(values: list[float], fmt: str) -> str:
        return format(statistics.median(values), fmt) if values else "-"

    row("time to first token, median (s)", lambda r: med([o.ttft_s for o in r.outcomes if o.ttft_s], ".1f"))
    row(
        "time to first token, tool questions / no-tool (s)",
        lambda r: (
            med([o.ttft_s for o in r.outcomes if o.ttft_s and o.question.tool], ".1f")
            + " / "
            + med([o.ttft_s for o in r.outcomes if o.ttft_s and not o.question.tool], ".1f")
        ),
    )
    row(
        "answer tokens/s, median",
        lambda r: med([(o.tokens - 1) / o.stream_s for o in r.outcomes if o.stream_s > 0 and o.tokens > 1], ".1f"),
    )
    row("turn time, median (s)", lambda r: med([o.total_s for o in r.outcomes], ".1f"))
    row("load (s) / memory (MiB)", lambda r: f"{r.load_s:.1f} / {r.rss_mib:.0f}")
    row("errors", lambda r: str(len(r.errors)))
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["local:qwen2.5-coder-1.5b", "local:qwen2.5-coder-0.5b", "local:smollm2-135m"]
    )
    parser.add_argument("--only", nargs="+", choices=CATEGORIES)
    args = parser.parse_args()
    runs = []
    for model in args.models:
        print(f"{model}:", flush=True)
        runs.append(await run_model(model, args.only))
        for error in runs[-1].errors:
            print(f"  error: {error}")
    print()
    print(report(runs))


if __name__ == "__main__":
    asyncio.run(main())
