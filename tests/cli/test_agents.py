"""``chatplane agents``: the graphs a project serves (locally), and a server's graphs and your assistants."""

from __future__ import annotations

from pathlib import Path

import httpx
import pexpect

from tests.cli.helpers import spawn as _spawn

DEMO = str(Path(__file__).parent.parent / "projects" / "demo" / "chatplane.json")


def test_agents_lists_a_project_s_graphs_and_names_a_bad_entry(tmp_path: Path) -> None:
    listing = _spawn(["agents", "--config", DEMO], tmp_path)
    for name in ("chat", "react", "multi", "support", "Answers support questions", "helpdesk"):
        listing.expect(name)
    listing.expect(pexpect.EOF)
    (tmp_path / "bad.json").write_text('{"graphs": {"g": "./nowhere.py:graph"}}')
    refused = _spawn(["agents", "--config", str(tmp_path / "bad.json")], tmp_path)
    refused.expect("graph 'g'")
    refused.expect(pexpect.EOF)
    refused.close()
    assert refused.exitstatus == 2


def test_agents_lists_a_server_s_graphs_and_your_assistants(server_factory, tmp_path: Path) -> None:
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"}, args=["--config", DEMO]
    )
    made = httpx.post(f"{server.url}/v1/assistants", json={"graph_id": "counter", "name": "tally"}).json()
    listing = _spawn(["agents", "--url", server.url], tmp_path)
    listing.expect("support")
    listing.expect(made["assistant_id"][:8])
    listing.expect("tally")
    listing.expect(pexpect.EOF)
