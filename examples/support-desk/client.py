"""Send a ticket to the support desk through the chatplane SDK, watch it work, approve the refund, read the result.

    chatplane serve --config examples/support-desk/chatplane.json      # in one terminal
    python examples/support-desk/client.py [URL] [--decision approve|decline] [--note TEXT]

URL defaults to $CHATPLANE_URL, else http://127.0.0.1:8000; a server with API keys wants $CHATPLANE_API_KEY. Without
``--decision`` the script asks you (or approves, when its input is not a terminal).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from chatplane.client import Client, RunEvent

TICKET = {
    "text": "Hi, the wireless headphones from order #1042 arrived broken. I'd like a refund, urgent please!",
    "customer": "Ada",
}


def show(event: RunEvent) -> None:
    """One line per event worth seeing: the graph's progress (custom), each node's update, the pause, the end."""
    part: Any = event.data.get("data")
    if event.type == "custom":
        print(f"  progress  [{part['node']}] {part['progress']}")
    elif event.type == "updates":
        for node, update in part.items():
            if node != "__interrupt__":  # the pause itself comes as the `interrupt` event
                print(f"  update    {node}: {', '.join(sorted(k for k, v in (update or {}).items() if v is not None))}")
    elif event.type == "interrupt":
        print(f"  paused    {event.data['requests'][0]['value']['question']}")
    elif event.type in ("run_completed", "run_failed", "run_cancelled"):
        print(f"  {event.type}")


def decide(question: str, decision: str | None, note: str) -> dict[str, Any]:
    """The value the graph's ``interrupt(...)`` will return: see ``_decision`` in desk.py."""
    if decision is None:
        asked = sys.stdin.isatty() and input(f"{question} [approve/decline] ").strip().lower()
        decision = "decline" if asked and asked.startswith("d") else "approve"
    return {"approved": decision == "approve", "note": note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("CHATPLANE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--decision", choices=["approve", "decline"])
    parser.add_argument("--note", default="checked by the example client")
    args = parser.parse_args(argv)

    with Client(args.url, api_key=os.environ.get("CHATPLANE_API_KEY")) as client:
        thread = client.create_thread(agent="desk", title="Broken headphones")  # a thread on the `desk` graph
        print(f"thread {thread.thread_id} on graph {thread.agent}")

        paused: RunEvent | None = None
        for event in client.stream(thread.thread_id, input=TICKET, stream_mode=["custom", "updates"]):
            show(event)
            if event.type == "interrupt":
                paused = event
            elif event.type == "run_failed":
                print(f"the run failed: {event.data['error']['code']}", file=sys.stderr)
                return 1

        if paused is not None:  # the graph asked a human: answer, then follow the run from where the stream ended
            question = paused.data["requests"][0]["value"]["question"]
            answer = decide(question, args.decision, args.note)
            print(f"decision  {'approve' if answer['approved'] else 'decline'}")
            client.resume(paused.run_id, value=answer)
            for event in client.attach(paused.run_id, after=paused.id):
                show(event)

        state = client.thread_state(thread.thread_id)
        print("final state:")
        print(json.dumps(state.values, indent=2, sort_keys=True))
        print(f"reply: {state.values['reply']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
