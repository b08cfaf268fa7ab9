"""Take the README's screenshot of the chat page: ``.venv/bin/python scripts/screenshot.py [--phone] [out.png]``.

A real chatplane server (``python -m chatplane serve``, memory storage) talks to the mock OpenAI-compatible model
of ``benchmarks/``, scripted message by message; a few threads are created through the API, then Debian's Chromium
(through Playwright) opens the page on the multi-agent conversation and saves ``docs/screenshot.png``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ and tests/ are not installed packages

from playwright.sync_api import sync_playwright  # noqa: E402

from benchmarks.mock_openai import MockOpenAIServer  # noqa: E402
from tests.servers import ServerProcess, free_port  # noqa: E402
from tests.web.conftest import CHROMIUM_ARGS  # noqa: E402

OTHER_THREADS = [
    ("chat", "Regex for ISO dates", "A regex for ISO dates like 2026-03-14?", "Use `^\\d{4}-\\d{2}-\\d{2}$`."),
    ("react", "Budget for the trip", "Flights are €184 each for three of us. Total?", "That is **€552** in total."),
    ("chat", "Explain Python generators", "What is a generator in Python?", "A function that `yield`s values."),
]
PLAN = """Here is a relaxed day for the three of you:

1. **Morning:** pastéis de nata at *Manteigaria*, then tram 28 up to Alfama.
2. **Afternoon:** Castelo de São Jorge, and the view from Miradouro da Senhora do Monte.
3. **Evening:** dinner in Bairro Alto. The €96 bill comes to **€32 each**.

A 24-hour transport pass covers every tram and funicular:

```text
Viva Viagem, 24 h: €6.80 per person
```"""


def seed(api: httpx.Client, mock: MockOpenAIServer) -> None:
    for agent, title, question, answer in OTHER_THREADS:
        mock.configure(tool_call=None, reply_text=answer)
        thread_id = api.post("/v1/threads", json={"agent": agent, "title": title}).json()["thread_id"]
        api.post(f"/v1/threads/{thread_id}/runs", json={"message": question}).raise_for_status()
        time.sleep(0.05)  # distinct "updated" times, so the list has a stable order
    thread_id = api.post("/v1/threads", json={"agent": "multi", "title": "A day in Lisbon"}).json()["thread_id"]
    mock.configure(tool_call=None, reply_text="Happy to help! Which city, and how many of you?")
    api.post(f"/v1/threads/{thread_id}/runs", json={"message": "Can you plan a day out for us?"}).raise_for_status()
    mock.configure(
        tool_call={
            "name": "transfer_to_writer",
            "arguments": {"task": "Write a one-day Lisbon plan for three friends; split a €96 dinner bill."},
        },
        reply_text=PLAN,
    )
    message = "Lisbon, three friends, this Saturday. We'll have one dinner out, about €96."
    api.post(f"/v1/threads/{thread_id}/runs", json={"message": message}).raise_for_status()


def main(out: Path, viewport: dict[str, int]) -> None:
    with tempfile.TemporaryDirectory() as workdir, MockOpenAIServer(ttft=0, token_interval=0, reply="text") as mock:
        env = {
            "CHATPLANE_MODEL": "openai:gpt-4o-mini",
            "OPENAI_BASE_URL": mock.base_url,
            "OPENAI_API_KEY": "x",
            "CHATPLANE_STORAGE_URL": "memory://",
        }
        server = ServerProcess(env, free_port(), Path(workdir))
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as api:
                seed(api, mock)
            with sync_playwright() as pw:
                context = pw.chromium.launch_persistent_context(
                    str(Path(workdir) / "profile"),
                    executable_path="/usr/bin/chromium",
                    args=CHROMIUM_ARGS,
                    headless=True,
                    viewport=viewport,
                )
                try:
                    page = context.pages[0] if context.pages else context.new_page()
                    page.goto(server.url)
                    if viewport["width"] < 720:
                        page.get_by_role("button", name="Chats").click()
                    page.locator(".thread", has_text="A day in Lisbon").locator(".thread-open").click()
                    page.locator(".msg.assistant", has_text="Viva Viagem").wait_for()
                    page.locator("#input").fill("Great! And if it rains?")
                    page.locator("#log").evaluate("el => { el.scrollTop = el.scrollHeight; }")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(out), animations="disabled")
                finally:
                    context.close()
        finally:
            server.stop()
    print(f"saved {out}")


if __name__ == "__main__":
    args = sys.argv[1:]
    phone = "--phone" in args
    paths = [a for a in args if a != "--phone"]
    main(
        Path(paths[0]) if paths else ROOT / "docs" / ("screenshot-phone.png" if phone else "screenshot.png"),
        {"width": 390, "height": 844} if phone else {"width": 1280, "height": 860},
    )
