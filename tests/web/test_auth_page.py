"""The page on a server with API keys: signing in, being signed out when the key is revoked, the rate-limit banner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import expect

from chatplane.storage.engine import open_storage
from chatplane.storage.keys import ApiKeyStore, parse_key
from tests.conftest import make_settings
from tests.web.conftest import ChatPage

pytestmark = pytest.mark.e2e
T = TypeVar("T")


def run_async(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine to the end from a test: in a thread, because sync Playwright keeps a loop in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(function(*args))).result()  # type: ignore[arg-type]


async def _create_key(storage_url: str, user: str) -> str:
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        return (await ApiKeyStore(storage.db).create(user))[1]


async def _revoke(storage_url: str, key: str) -> None:
    parsed = parse_key(key)
    assert parsed is not None
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        assert await ApiKeyStore(storage.db).revoke(parsed[0])


def sign_in(chat: ChatPage, key: str) -> None:
    chat.page.goto(chat.url)
    chat.page.get_by_label("API key").fill(key)
    chat.page.get_by_role("button", name="Sign in").click()
    expect(chat.page.locator("#app")).to_be_visible()


def test_sign_in_with_a_key_and_be_signed_out_when_it_is_revoked(server_factory, open_browser, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    key = run_async(_create_key, url, "alice")
    server = server_factory({"CHATPLANE_MODEL": "fake:Hello Alice.", "CHATPLANE_STORAGE_URL": url})
    chat = ChatPage(open_browser(), server.url)

    chat.page.goto(server.url)
    form = chat.page.locator("#signin-form")
    expect(form).to_be_visible()
    expect(chat.page.locator("#app")).to_be_hidden()
    chat.page.get_by_label("API key").fill("cp_000000000000_not-a-real-key")
    chat.page.get_by_label("API key").press("Enter")
    expect(form.get_by_role("alert")).to_have_text("That key was refused. Check it and try again.")

    sign_in(chat, key)
    expect(chat.page.locator("#who")).to_have_text(f"Signed in with key {parse_key(key)[0]}")  # type: ignore[index]
    chat.send("Hi")
    expect(chat.answers).to_have_text("Hello Alice.")
    chat.page.reload()  # the key is remembered
    expect(chat.answers).to_have_text("Hello Alice.")
    chat.page.wait_for_load_state("networkidle")  # the page has asked all it asks on opening a thread

    run_async(_revoke, url, key)
    chat.send("Still there?")
    expect(form).to_be_visible()
    expect(form.get_by_role("alert").filter(has_text="Signed out")).to_be_visible()
    chat.page.reload()  # the refused key was forgotten
    expect(form).to_be_visible()
    expect(chat.page.get_by_label("API key")).to_have_value("")


def test_rate_limit_shows_a_banner_with_the_wait(server_factory, open_browser, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    key = run_async(_create_key, url, "alice")
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": url, "CHATPLANE_RATE_LIMIT_PER_MINUTE": "5"}
    )
    chat = ChatPage(open_browser(), server.url)
    sign_in(chat, key)

    banner = chat.banner("rate_limited")
    for attempt in range(6):  # each message costs a request or two; the limit is soon reached
        chat.send(f"message {attempt}")
        expect(chat.send_button.or_(banner).first).to_be_visible()
        chat.wait_until_idle()
        if banner.is_visible():
            break
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Rate limited")
    expect(banner).to_contain_text("5 requests per minute")
    expect(banner.locator(".retry")).to_contain_text("You can try again in")
    # The refused message was not sent: it is marked, and back in the composer to send later.
    expect(chat.user.last.locator(".note")).to_have_text("Not sent")
    expect(chat.input).to_have_value(f"message {attempt}")
