"""Tool calls, multi-agent hand-offs and approvals on the page. The model is the mock OpenAI-compatible server of
``benchmarks/`` (``openai:`` provider over HTTP), which answers with a scripted tool call whenever the request offers
tools and its last message is not a tool result, and with text otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, expect

from benchmarks.mock_openai import MockOpenAIServer
from tests.web.conftest import ChatPage

pytestmark = pytest.mark.e2e


@pytest.fixture
def mock() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer(ttft=0, token_interval=0.02, reply="text") as server:
        yield server


def openai_env(mock: MockOpenAIServer, **extra: str) -> dict[str, str]:
    return {
        "CHATPLANE_MODEL": "openai:gpt-mock",
        "OPENAI_BASE_URL": mock.base_url,
        "OPENAI_API_KEY": "x",
        "CHATPLANE_STORAGE_URL": "memory://",
        **extra,
    }


def check_tool_block(tool: Locator, args: str, result: str) -> None:
    """A tool call shows as a collapsed block; opening it (by keyboard) shows the arguments and the result."""
    expect(tool.locator(".tool-state")).to_have_text("done")
    expect(tool.locator(".tool-output")).to_be_hidden()
    tool.locator("summary").focus()
    tool.locator("summary").press("Enter")
    expect(tool.locator(".tool-args")).to_contain_text(args)
    expect(tool.locator(".tool-output")).to_contain_text(result)


def test_multi_agent_hand_off_shows_the_tool_call_and_who_speaks(server_factory, open_browser, mock) -> None:
    mock.configure(
        tool_call={"name": "transfer_to_writer", "arguments": {"task": "Write a short plan for Sunday"}},
        reply_text="**Sunday:** brunch at ten, then a walk by the river.",
    )
    server = server_factory(openai_env(mock))
    chat = ChatPage(open_browser(), server.url).open()
    chat.page.locator(".agent-option", has_text="Multi").click()
    chat.send("Plan my Sunday")
    chat.wait_until_idle()

    def check() -> None:
        tool = chat.page.locator(".tool")
        expect(tool.locator(".tool-name")).to_have_text("transfer_to_writer")
        check_tool_block(tool, '"task": "Write a short plan for Sunday"', "Handed off to writer")
        expect(chat.page.locator(".handoff .who")).to_have_text(["supervisor", "writer"])
        expect(chat.assistant.locator(".speaker")).to_have_text("writer")
        expect(chat.answers.locator("strong")).to_have_text("Sunday:")

    check()
    expect(chat.page.locator("#agent-badge")).to_have_text("multi")
    chat.page.reload()  # the same, rebuilt from the thread's history
    check()


def test_react_agent_tool_call_and_result(server_factory, open_browser, mock) -> None:
    mock.configure(tool_call={"name": "calculator", "arguments": {"expression": "6*7"}}, reply_text="It is 42.")
    server = server_factory(openai_env(mock, CHATPLANE_DEFAULT_AGENT="react"))
    chat = ChatPage(open_browser(), server.url).open()
    chat.page.locator(".agent-option", has_text="React").click()
    chat.send("What is 6 times 7")
    tool = chat.page.locator(".tool")
    expect(tool.locator(".tool-name")).to_have_text("calculator", timeout=10_000)
    check_tool_block(tool, '"expression": "6*7"', "42")
    expect(chat.answers).to_have_text("It is 42.")


def test_approve_and_reject_a_run_waiting_for_a_human(server_factory, open_browser, mock) -> None:
    mock.configure(tool_call={"name": "calculator", "arguments": {"expression": "2+2"}}, reply_text="Done.")
    server = server_factory(openai_env(mock, CHATPLANE_SENSITIVE_TOOLS='["calculator"]'))
    chat = ChatPage(open_browser(), server.url).open()
    chat.page.locator(".agent-option", has_text="React").click()

    chat.send("Add two and two")
    card = chat.page.get_by_role("group", name="Approval needed")
    expect(card).to_contain_text("calculator", timeout=10_000)
    expect(chat.stop_button).to_be_visible()  # waiting, not finished: it can still be stopped
    chat.page.reload()  # still waiting after a reload
    card = chat.page.get_by_role("group", name="Approval needed")
    card.get_by_role("button", name="Approve").click()
    expect(card.locator(".approval-status")).to_have_text("Approved")
    chat.wait_until_idle()
    expect(chat.page.locator(".tool .tool-state")).to_have_text("done")
    expect(chat.answers.last).to_have_text("Done.")

    chat.send("Again")
    cards = chat.page.get_by_role("group", name="Approval needed")
    expect(cards).to_have_count(2)
    card = cards.nth(1)
    card.get_by_label("Reason for rejecting").fill("Not now")
    card.get_by_role("button", name="Reject").click()
    expect(card.locator(".approval-status")).to_have_text("Rejected")
    chat.wait_until_idle()
    expect(chat.page.locator(".tool .tool-state").last).to_have_text("error")
