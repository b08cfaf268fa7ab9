"""The Memories panel: a user sees what the assistants remember about them, searches it by meaning and deletes it
(a real server, real Chromium)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import PHONE, ChatPage

pytestmark = pytest.mark.e2e

MEMORIES = {
    "home": "I live in Lisbon, Portugal.",
    "diet": "I am vegetarian and never eat meat.",
    "repo": "Our repository uses Python 3.12.",
}


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_see_search_and_delete_memories(server_factory, open_browser, viewport) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    for key, content in MEMORIES.items():
        body = {"namespace": ["memories"], "key": key, "value": {"content": content}}
        assert httpx.put(f"{server.url}/v1/store/items", json=body, timeout=30).status_code == 204
    page = ChatPage(open_browser(viewport) if viewport else open_browser(), server.url).open().page
    if viewport:
        page.get_by_role("button", name="Chats").click()  # the sidebar is a drawer on a phone
    page.get_by_role("button", name="Memories").click()
    panel = page.get_by_role("dialog", name="Memories")
    expect(panel).to_be_visible()
    rows = panel.locator(".memory")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(MEMORIES["repo"])  # newest first

    panel.get_by_label("Search memories").fill("Which city do I live in?")
    panel.get_by_label("Search memories").press("Enter")
    expect(rows.first).to_contain_text(MEMORIES["home"])

    panel.get_by_role("button", name="Delete memory home").click()
    expect(panel.locator('.memory[data-key="home"]')).to_have_count(0)
    left = httpx.post(f"{server.url}/v1/store/items/search", json={}, timeout=30).json()["items"]
    assert sorted(item["key"] for item in left) == ["diet", "repo"]
    panel.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()
