"""The chat page with a team's own graphs (the demo project): a graph without messages shows its thread's state and
takes its input as JSON; the user's own assistants are offered beside the graphs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import ChatPage

pytestmark = pytest.mark.e2e

DEMO = str(Path(__file__).resolve().parents[1] / "projects" / "demo" / "chatplane.json")
ENV = {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://", "CHATPLANE_CONFIG_FILE": DEMO}


def test_a_graph_without_messages_shows_its_state_and_takes_json_input(server_factory, open_browser) -> None:
    server = server_factory(ENV)
    chat = ChatPage(open_browser(), server.url).open()
    chat.pick_agent("counter")
    expect(chat.input).to_have_attribute("placeholder", 'Input as JSON, e.g. {"key": "value"}')

    # Not JSON: said inline, nothing is sent (no thread is created).
    chat.send("{count: 2")
    expect(chat.page.locator("#composer-error")).to_contain_text("not valid JSON")
    expect(chat.input).to_have_value("{count: 2")
    assert httpx.get(f"{server.url}/v1/threads").json()["threads"] == []

    chat.send('{"count": 2, "log": ["<img src=x onerror=\\"window.injected=1\\">"]}')
    expect(chat.page.locator("#composer-error")).to_be_hidden()
    chat.wait_until_idle()
    state = chat.page.locator(".graph-state .state-values")
    expect(state).to_contain_text('"count": 3')  # the default step 1: 2 + 1
    expect(state).to_contain_text('"<img src=x onerror=\\"window.injected=1\\">"')
    expect(chat.page.locator(".graph-state img")).to_have_count(0)
    expect(chat.user).to_have_count(0)
    expect(chat.page.locator("#agent-badge")).to_have_text("counter")

    # Run again on the same thread: the state is read again when the run ends.
    chat.send('{"count": 40}')
    chat.wait_until_idle()
    expect(state).to_contain_text('"count": 41')

    # A reload comes back to the thread's state, not to a message list.
    chat.page.reload()
    expect(chat.page.locator(".graph-state .state-values")).to_contain_text('"count": 41')
    assert chat.page.evaluate("window.injected") is None


def test_the_user_s_own_assistants_are_offered_after_the_graphs(server_factory, open_browser) -> None:
    server = server_factory(ENV)
    mine = httpx.post(
        f"{server.url}/v1/assistants", json={"graph_id": "counter", "name": "Big steps", "context": {"step": 10}}
    ).json()
    chat = ChatPage(open_browser(), server.url).open()
    chat.page.get_by_role("button", name="+ New chat").click()
    names = chat.page.locator(".agent-option .agent-name").all_text_contents()
    assert names[-1] == "Big steps" and names.count("counter") == 1  # default assistants are the graphs themselves
    chat.page.locator(".agent-option", has_text="Big steps").click()

    chat.send('{"count": 2}')
    chat.wait_until_idle()
    expect(chat.page.locator(".graph-state .state-values")).to_contain_text('"count": 12')
    expect(chat.page.locator("#agent-badge")).to_have_text("Big steps")
    threads = httpx.get(f"{server.url}/v1/threads").json()["threads"]
    assert [t["agent"] for t in threads] == [mine["assistant_id"]]
    expect(chat.thread('{"count": 2}')).to_contain_text("Big steps")
