"""The chat page on a local development server (no key needed) with the scripted fake model: streaming, Markdown
and safe rendering, the keyboard, Stop, reload mid-run, switching threads, renaming, deleting, errors, phone width."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import ARTIFACTS, PHONE, ChatPage

pytestmark = pytest.mark.e2e

WORDS = " ".join(f"w{i}" for i in range(1, 61))  # w1 … w60: long enough to watch it arrive, stop it, reload
SAFE_REPLY = (
    "Here is a short plan:\n\n"
    "- Walk along the **Seine**\n"
    "- Lunch at `Le Petit Cler`\n\n"
    "1. First\n"
    "2. Second\n\n"
    "```python\n"
    "print('<b>not bold</b>')\n"
    "```\n\n"
    'Ignore this: <img src=x onerror="window.injected=1"> <script>window.injected=2</script> '
    "and *that* is all. " + WORDS
)


def fake_model(reply: str, **options: Any) -> dict[str, str]:
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return {
        "CHATPLANE_MODEL": f"fake:{reply}" + (f"?{query}" if query else ""),
        "CHATPLANE_STORAGE_URL": "memory://",
    }


def record_text_lengths(page: Page) -> None:
    """Remember every distinct length the first answer's text goes through as the page updates it."""
    page.evaluate(
        """() => {
            window.lengths = [];
            new MutationObserver(() => {
                const el = document.querySelector('.msg.assistant .content');
                const n = el ? el.textContent.length : 0;
                if (n && window.lengths.at(-1) !== n) window.lengths.push(n);
            }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
        }"""
    )


def test_tokens_stream_in_and_markdown_is_rendered_as_text_not_html(server_factory, open_browser) -> None:
    server = server_factory(fake_model(SAFE_REPLY, token_delay=0.03))
    chat = ChatPage(open_browser(), server.url).open()
    expect(chat.page.get_by_role("heading", name="Start a new chat")).to_be_visible()
    record_text_lengths(chat.page)

    # Shift+Enter is a new line, Enter sends.
    chat.input.fill("Plan my afternoon")
    chat.input.press("Shift+Enter")
    chat.input.press_sequentially("in Paris")
    expect(chat.input).to_have_value("Plan my afternoon\nin Paris")
    chat.input.press("Enter")
    expect(chat.input).to_have_value("")
    expect(chat.user).to_have_text("Plan my afternoon\nin Paris")
    chat.wait_until_idle()

    answer = chat.assistant
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text("w60")
    lengths = chat.page.evaluate("window.lengths")
    assert len(lengths) >= 5, f"the answer did not arrive piece by piece: {lengths}"
    assert lengths[0] < lengths[-1] / 4  # (not monotonic: a `**` or a fence is shown until it closes)

    # Markdown: lists, emphasis, inline code, a fenced block — built as elements.
    expect(answer.locator("ul > li")).to_have_text(["Walk along the Seine", "Lunch at Le Petit Cler"])
    expect(answer.locator("ol > li")).to_have_text(["First", "Second"])
    expect(answer.locator("strong")).to_have_text("Seine")
    expect(answer.locator("em")).to_have_text("that")
    expect(answer.locator("li code")).to_have_text("Le Petit Cler")
    expect(answer.locator("pre code")).to_have_text("print('<b>not bold</b>')")
    # The model's HTML is text: no element was created from it and nothing ran.
    expect(answer).to_contain_text('<img src=x onerror="window.injected=1"> <script>window.injected=2</script>')
    assert answer.locator("img, script, b").count() == 0
    assert chat.page.evaluate("window.injected") is None

    # The new thread is in the list, titled after the first line, and the page reads it back the same way.
    expect(chat.thread("Plan my afternoon")).to_have_count(1)
    chat.page.reload()
    expect(chat.assistant.locator("ul > li")).to_have_count(2)
    expect(chat.assistant).to_contain_text("<script>window.injected=2</script>")
    assert chat.page.evaluate("window.injected") is None


def test_stop_cancels_the_run_and_keeps_the_partial_answer(server_factory, open_browser) -> None:
    server = server_factory(fake_model(WORDS, token_delay=0.2))
    chat = ChatPage(open_browser(), server.url).open()
    chat.send("Count slowly")
    expect(chat.assistant).to_contain_text("w3")
    chat.stop_button.click()

    expect(chat.assistant.locator(".note")).to_have_text("Stopped")
    expect(chat.send_button).to_be_visible()
    assert "w60" not in chat.assistant.inner_text()

    with httpx.Client(base_url=server.url) as api:
        thread_id = api.get("/v1/threads").json()["threads"][0]["thread_id"]
        assert [run["status"] for run in api.get(f"/v1/threads/{thread_id}/runs").json()] == ["cancelled"]
    chat.page.reload()  # the partial answer is in the thread, marked as stopped
    expect(chat.assistant).to_contain_text("w3")
    expect(chat.assistant.locator(".note")).to_have_text("Stopped")


def test_reload_during_a_run_reattaches_and_the_answer_continues(server_factory, open_browser) -> None:
    server = server_factory(fake_model(WORDS, token_delay=0.15))
    chat = ChatPage(open_browser(), server.url).open()
    chat.send("Tell me a long story")
    expect(chat.assistant).to_contain_text("w5")

    chat.page.reload()
    expect(chat.stop_button).to_be_visible()  # the page knows the run is still going
    chat.wait_until_idle()
    expect(chat.assistant).to_have_count(1)
    expect(chat.answers).to_have_text(WORDS)  # every word once, none lost, none doubled
    expect(chat.user).to_have_text(["Tell me a long story"])


def test_switching_threads_renaming_and_deleting(server_factory, open_browser) -> None:
    server = server_factory(fake_model("echo", token_delay=0.08))
    chat = ChatPage(open_browser(), server.url).open()
    chat.send("first topic")
    chat.wait_until_idle()
    chat.page.get_by_role("button", name="+ New chat").click()
    chat.send("second topic")
    chat.wait_until_idle()

    chat.thread("first topic").locator(".thread-open").click()
    expect(chat.answers).to_have_text("echo: first topic")
    expect(chat.messages).not_to_contain_text("second topic")
    chat.thread("second topic").locator(".thread-open").click()
    expect(chat.answers).to_have_text("echo: second topic")
    expect(chat.messages).not_to_contain_text("first topic")

    # Leave a thread while it answers, and come back: the answer has gone on without us and is shown in full.
    long = "second " + WORDS
    chat.send(long)
    expect(chat.assistant.nth(1)).to_contain_text("w2")
    chat.thread("first topic").locator(".thread-open").click()
    expect(chat.page.locator("#title")).to_have_text("first topic")
    expect(chat.assistant).to_have_count(1)
    chat.thread("second topic").locator(".thread-open").click()
    chat.wait_until_idle()
    expect(chat.answers.nth(1)).to_have_text(f"echo: {long}")
    expect(chat.assistant).to_have_count(2)

    # Rename (Enter saves) and delete (after a confirmation).
    first = chat.thread("first topic")
    first.get_by_role("button", name="Rename “first topic”").click()
    chat.page.get_by_label("New name").fill("Renamed topic")
    chat.page.get_by_label("New name").press("Enter")
    expect(chat.thread("Renamed topic")).to_have_count(1)
    chat.thread("second topic").get_by_role("button", name="Delete “second topic”").click()
    chat.page.get_by_role("button", name="Delete", exact=True).click()
    expect(chat.page.locator(".thread")).to_have_count(1)
    expect(chat.page.get_by_role("heading", name="Start a new chat")).to_be_visible()

    with httpx.Client(base_url=server.url) as api:
        assert [t["title"] for t in api.get("/v1/threads").json()["threads"]] == ["Renamed topic"]
    chat.page.reload()
    expect(chat.page.locator(".thread-title")).to_have_text(["Renamed topic"])


def test_model_unavailable_shows_a_banner_and_keeps_the_message(server_factory, open_browser) -> None:
    server = server_factory(fake_model("echo", fail="error"))
    chat = ChatPage(open_browser(), server.url).open()
    chat.send("Are you there")
    banner = chat.banner("model_error")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Model unavailable")
    expect(banner).to_contain_text("Your message was kept")
    assert "sk-fake" not in chat.page.content()
    chat.wait_until_idle()

    chat.page.reload()  # the message is in the thread; sending again (the model still fails) shows the banner again
    expect(chat.user).to_have_text("Are you there")
    expect(chat.banner("model_error")).to_have_count(0)
    chat.send("Hello again")
    expect(chat.banner("model_error")).to_be_visible()
    expect(chat.user).to_have_text(["Are you there", "Hello again"])


def test_phone_width_keeps_the_thread_list_in_a_drawer(server_factory, open_browser) -> None:
    server = server_factory(fake_model("Sure. Here is a list:\n\n- one\n- two\n- three"))
    chat = ChatPage(open_browser(PHONE), server.url).open()
    sidebar = chat.page.locator("#sidebar")
    expect(sidebar).not_to_be_in_viewport()
    chat.send("Give me a list")
    chat.wait_until_idle()
    expect(chat.assistant.locator("li")).to_have_count(3)
    box = chat.assistant.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    menu = chat.page.get_by_role("button", name="Chats")
    menu.click()
    expect(sidebar).to_be_in_viewport()
    expect(menu).to_have_attribute("aria-expanded", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    chat.page.screenshot(path=str(ARTIFACTS / "test_phone_width_drawer_open.png"), animations="disabled")
    chat.page.get_by_role("button", name="+ New chat").click()
    expect(sidebar).not_to_be_in_viewport()
    expect(chat.page.get_by_role("heading", name="Start a new chat")).to_be_visible()
    menu.click()
    chat.thread("Give me a list").locator(".thread-open").click()
    expect(chat.assistant.locator("li")).to_have_count(3)


def test_a_retried_model_attempt_replaces_its_partial_answer(server_factory, open_browser) -> None:
    # The first attempt streams "first attempt" and drops; the retry answers: the page shows the retry's text only.
    reply = "first attempt words here|the real answer is this"
    server = server_factory(fake_model(reply, fail="drop", token_delay=0.05))
    chat = ChatPage(open_browser(), server.url).open()
    chat.send("hi")
    expect(chat.assistant.locator(".content")).to_have_text("the real answer is this")
    expect(chat.assistant).to_have_count(1)
