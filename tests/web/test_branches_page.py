"""Versions of a thread's messages on the chat page: edit, regenerate, move between versions, reload, fork."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import ChatPage

pytestmark = pytest.mark.e2e


def test_edit_regenerate_move_between_versions_and_reload(server_factory, open_browser) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    chat = ChatPage(open_browser(), server.url).open()
    chat.send("hello")
    chat.wait_until_idle()
    chat.send("plan a trip")
    chat.wait_until_idle()
    expect(chat.answers).to_have_text(["echo: hello", "echo: plan a trip"])

    # Edit the second message: a new branch, and its answer.
    second = chat.user.nth(1)
    second.get_by_role("button", name="Edit message").click()
    chat.page.get_by_label("Edited message").fill("plan a trip to Lyon")
    chat.page.get_by_role("button", name="Save and send").click()
    expect(chat.answers).to_have_text(["echo: hello", "echo: plan a trip to Lyon"])
    expect(chat.user.nth(1).locator(".branch-count")).to_have_text("2 / 2")

    # Regenerate the answer: a third version of the turn.
    chat.assistant.nth(1).get_by_role("button", name="Regenerate answer").click()
    expect(chat.user.nth(1).locator(".branch-count")).to_have_text("3 / 3")
    expect(chat.answers).to_have_text(["echo: hello", "echo: plan a trip to Lyon"])

    # Move back to the first version, then reload: the same branch is shown.
    chat.user.nth(1).get_by_role("button", name="Previous version").click()
    expect(chat.user.nth(1).locator(".branch-count")).to_have_text("2 / 3")
    chat.user.nth(1).get_by_role("button", name="Previous version").click()
    expect(chat.user.nth(1).locator(".branch-count")).to_have_text("1 / 3")
    expect(chat.answers).to_have_text(["echo: hello", "echo: plan a trip"])
    chat.page.reload()
    expect(chat.user.nth(1).locator(".branch-count")).to_have_text("1 / 3")
    expect(chat.answers).to_have_text(["echo: hello", "echo: plan a trip"])

    # Sending goes on from the branch shown; forking opens a new chat with the history up to there.
    chat.send("and back")
    chat.wait_until_idle()
    expect(chat.answers).to_have_text(["echo: hello", "echo: plan a trip", "echo: and back"])
    chat.assistant.nth(0).get_by_role("button", name="Fork from here").click()
    expect(chat.answers).to_have_text(["echo: hello"])
    with httpx.Client(base_url=server.url) as api:
        assert len(api.get("/v1/threads").json()["threads"]) == 2
