"""``examples/support-desk`` as a user runs it: ``chatplane serve`` on its project file, then its ``client.py``
(the SDK) against that server — a streamed run with custom progress and node updates, an interrupt answered, the
final state. And a project file naming an attribute the module does not have stops ``chatplane serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatplane.client import Client
from tests.servers import free_port

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "support-desk"


@pytest.fixture
def desk(server_factory: Any, tmp_path: Path) -> Any:
    return server_factory(
        {
            "CHATPLANE_CONFIG_FILE": str(EXAMPLE / "chatplane.json"),
            "CHATPLANE_MODEL": "fake:echo",
            "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path / 'desk.db'}",
        }
    )


def _client(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPLANE_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "client.py"), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _final_state(stdout: str) -> dict[str, Any]:
    block = stdout.split("final state:\n", 1)[1].split("\nreply: ", 1)[0]
    state: dict[str, Any] = json.loads(block)
    return state


def test_the_example_client_streams_the_desk_answers_its_interrupt_and_prints_the_state(desk: Any) -> None:
    done = _client(desk.url, "--decision", "approve", "--note", "looks fine")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "  progress  [classify] refund, urgent priority" in out
    assert "  progress  [look_up] looking up order 1042" in out
    assert "  update    classify: category, log, order_id, priority" in out
    assert "  paused    Refund $59.00 on order 1042 to Ada?" in out
    before, after = out.split("decision  approve", 1)
    assert "run_completed" not in before and "  update    review_refund:" in after
    assert "  progress  [draft_reply] drafting the reply" in after and "  run_completed" in after
    state = _final_state(out)
    assert state["category"] == "refund" and state["priority"] == "urgent" and state["order_id"] == "1042"
    assert state["refund"] == "approved" and state["reviewer_note"] == "looks fine"
    assert state["reply"] == "Hi Ada, we have refunded $59.00 for order 1042. Best regards, Support desk"
    assert state["log"] == [
        "classified as refund (urgent)",
        "looked up order 1042",
        "refund approved by a human",
        "reply drafted",
    ]

    declined = _client(desk.url, "--decision", "decline")
    assert declined.returncode == 0, declined.stderr
    assert _final_state(declined.stdout)["refund"] == "declined"


def test_the_example_project_lists_its_graph_schemas_and_tool(desk: Any) -> None:
    with Client(desk.url) as client:
        listed = client.agents()
        desk_info = next(a for a in listed.agents if a.name == "desk")
        assert desk_info.kind == "graph" and not desk_info.messages
        assert desk_info.input_schema is not None and desk_info.input_schema["required"] == ["text"]
        assert desk_info.context_schema is not None
        assert set(desk_info.context_schema["properties"]) == {"team", "auto_approve_up_to"}
        assert "lookup_order" in listed.tools
        # An assistant of the graph: small refunds approved without a human, another signature.
        assistant = client.create_assistant("desk", context={"auto_approve_up_to": 100, "team": "Tier 2"})
        tid = client.create_thread(agent=assistant.assistant_id).thread_id
        run = client.run(tid, input={"text": "Order 1043: the charger is broken, refund please"})
        assert run.status == "succeeded" and run.values is not None
        assert run.values["refund"] == "approved" and run.values["reviewer_note"] == "automatic"
        assert run.values["reply"].endswith("Best regards, Tier 2")


def test_a_project_file_naming_a_missing_attribute_stops_serve(tmp_path: Path) -> None:
    project = tmp_path / "chatplane.json"
    project.write_text(json.dumps({"dependencies": [str(EXAMPLE)], "graphs": {"desk": f"{EXAMPLE}/desk.py:grahp"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPLANE_")}
    env.update({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://", "COLUMNS": "200"})
    failed = subprocess.run(
        [sys.executable, "-m", "chatplane", "serve", "--config", str(project), "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2
    said = " ".join((failed.stdout + failed.stderr).split())
    assert "graph 'desk'" in said and "no attribute 'grahp'" in said
