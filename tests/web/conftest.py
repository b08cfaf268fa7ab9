"""Browser tests of the chat page: Playwright drives Debian's Chromium (``executable_path``; Playwright's own browser
download does not work offline) against a real chatplane server. Each test gets a fresh browser profile, and leaves
a screenshot of where it ended in ``test-artifacts/<test name>.png``."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Playwright, expect, sync_playwright

from tests.conftest import IN_CI

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=20_000)  # a busy 2-core machine runs a server, Chromium and pytest at once


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        message = "Chromium is not installed (`make chromium` installs Debian's)"
        if IN_CI:
            pytest.fail(message + " — CI requires it.")
        pytest.skip(message)
    return path


@pytest.fixture
def server_factory(server_factory: Any, request: pytest.FixtureRequest) -> Any:
    """The root ``server_factory``, remembering its servers so that a failing test shows their logs."""
    servers = request.node.chatplane_servers = []

    def make(env: dict[str, str], port: int | None = None) -> Any:
        server = server_factory(env, port)
        servers.append(server)
        return server

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        for server in getattr(item, "chatplane_servers", []):
            report.sections.append((f"server log ({server.url})", server.log()[-8000:]))
    return report


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def open_browser(playwright: Playwright, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``open_browser(viewport=DESKTOP)`` → a Page in a fresh profile. JavaScript errors on the page fail the test;
    a screenshot of the last page opened is saved at the end, pass or fail."""
    contexts = []
    pages: list[Page] = []
    errors: list[str] = []

    def make(viewport: dict[str, int] = DESKTOP) -> Page:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(contexts)}"),
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=viewport,
        )
        contexts.append(context)
        page = context.pages[0] if context.pages else context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        pages.append(page)
        return page

    yield make
    try:
        if pages:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            pages[-1].screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled")
    finally:
        for context in contexts:
            context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


class ChatPage:
    """The page, as a person uses it."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url

    def open(self) -> ChatPage:
        self.page.goto(self.url)
        expect(self.page.locator("#app")).to_be_visible()
        return self

    @property
    def input(self) -> Locator:
        return self.page.get_by_label("Message", exact=True)

    @property
    def messages(self) -> Locator:
        return self.page.locator("#messages")

    @property
    def assistant(self) -> Locator:
        return self.page.locator(".msg.assistant")

    @property
    def answers(self) -> Locator:
        """The text of the assistant's messages (without the speaker's name)."""
        return self.page.locator(".msg.assistant .content")

    @property
    def user(self) -> Locator:
        return self.page.locator(".msg.user")

    @property
    def stop_button(self) -> Locator:
        return self.page.get_by_role("button", name="Stop")

    @property
    def send_button(self) -> Locator:
        return self.page.get_by_role("button", name="Send")

    def banner(self, code: str) -> Locator:
        return self.page.locator(f'.banner[data-code="{code}"]')

    def thread(self, title: str) -> Locator:
        return self.page.locator(".thread", has_text=title)

    def send(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")

    def pick_agent(self, name: str) -> None:
        self.page.get_by_role("button", name="+ New chat").click()
        self.page.locator(".agent-option", has_text=name).click()

    def wait_until_idle(self) -> None:
        """The run is over: Send is back and nothing is streaming."""
        expect(self.send_button).to_be_visible()
        expect(self.page.locator(".msg.streaming")).to_have_count(0)
