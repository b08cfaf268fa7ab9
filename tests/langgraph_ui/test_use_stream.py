"""LangGraph's React ``useStream`` hook (``@langchain/langgraph-sdk``, pinned in ``package-lock.json``) in Chromium,
against a real chatplane server serving the demo project: tokens stream in, an interrupt in a subgraph is approved
with ``command: {resume}``, and a page reloaded mid-run re-joins the run (``reconnectOnMount``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

DEMO = str(Path(__file__).parents[1] / "projects" / "demo" / "chatplane.json")
WORDS = " ".join(f"word{i}" for i in range(40))


def demo_server(server_factory: Any, tmp_path: Path, origin: str, model: str) -> Any:
    return server_factory(
        {
            "CHATPLANE_MODEL": model,
            "CHATPLANE_CONFIG_FILE": DEMO,
            "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path}/ui.db",
            "CHATPLANE_CORS_ORIGINS": json.dumps([origin]),
            "DEMO_STEP_S": "0.1",
        }
    )


def record_answer_lengths(page: Page) -> None:
    """Remember every distinct length the assistant's answer goes through as the page renders it."""
    page.evaluate(
        """() => {
            window.lengths = [];
            new MutationObserver(() => {
                const el = document.querySelector('.msg.ai');
                const n = el ? el.textContent.length : 0;
                if (n && window.lengths.at(-1) !== n) window.lengths.push(n);
            }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
        }"""
    )


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_a_message_streams_its_answer_token_by_token(
    server_factory: Any, open_ui: Any, page_origin: str, tmp_path: Path
) -> None:
    server = demo_server(server_factory, tmp_path, page_origin, f"fake:{WORDS}?token_delay=0.03")
    page = open_ui(server.url, "chat")
    expect(page.locator("#status")).to_have_text("idle")
    record_answer_lengths(page)

    send(page, "Count for me")

    expect(page.locator(".msg.human")).to_have_text("Count for me")
    expect(page.locator(".msg.ai")).to_have_text(WORDS)
    expect(page.locator("#status")).to_have_text("idle")
    lengths = page.evaluate("window.lengths")
    assert len(lengths) >= 5, lengths  # it grew as tokens arrived, not all at once
    assert lengths == sorted(lengths)
    assert page.locator("#error").count() == 0


def test_an_interrupt_in_a_subgraph_is_approved_and_the_run_finishes(
    server_factory: Any, open_ui: Any, page_origin: str, tmp_path: Path
) -> None:
    server = demo_server(server_factory, tmp_path, page_origin, "fake:echo")
    page = open_ui(server.url, "approval")

    send(page, "refund")

    expect(page.locator("#interrupt .question")).to_have_text("approve refund?")
    expect(page.locator("#status")).to_have_text("idle")
    page.get_by_role("button", name="Approve").click()

    expect(page.locator("#done")).to_have_text("done: true · decision: yes")
    expect(page.locator("#interrupt")).to_have_count(0)
    expect(page.locator("#status")).to_have_text("idle")
    assert page.locator("#error").count() == 0


def test_a_page_reloaded_mid_run_rejoins_the_run(
    server_factory: Any, open_ui: Any, page_origin: str, tmp_path: Path
) -> None:
    server = demo_server(server_factory, tmp_path, page_origin, f"fake:{WORDS}?token_delay=0.15")
    page = open_ui(server.url, "chat")

    send(page, "Count slowly")
    expect(page.locator(".msg.ai")).to_contain_text("word3")  # the run is streaming
    assert "thread=" in page.url
    page.reload()

    expect(page.locator("#status")).to_have_text("streaming")  # re-joined, not just reloaded from state
    expect(page.locator(".msg.ai")).to_have_text(WORDS)
    expect(page.locator("#status")).to_have_text("idle")
    expect(page.locator(".msg.human")).to_have_text("Count slowly")
    assert page.locator("#error").count() == 0
