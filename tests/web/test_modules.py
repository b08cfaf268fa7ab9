"""The page's Markdown renderer and SSE parser, run in the browser on tricky input (imported from the live page)."""

from __future__ import annotations

import pytest

from tests.web.conftest import ChatPage

pytestmark = pytest.mark.e2e

LINK = '<a href="https://example.com/a_b" rel="noopener noreferrer nofollow" target="_blank">'
MARKDOWN_CASES = {
    "Hello **bold**, *it*, _it_ and `a < b`": "<p>Hello <strong>bold</strong>, <em>it</em>, <em>it</em> and "
    "<code>a &lt; b</code></p>",
    "line one\nline two": "<p>line one<br>line two</p>",
    "- a\n- b\n  - c\n- d": "<ul><li>a</li><li><p>b</p><ul><li>c</li></ul></li><li>d</li></ul>",
    "3. three\n4. four": '<ol start="3"><li>three</li><li>four</li></ol>',
    "* star\n\n* loose": "<ul><li>star</li><li>loose</li></ul>",
    "```js\nlet a = '<b>';\n\n  indented\n```\nafter": "<pre><code data-language=\"js\">let a = '&lt;b&gt;';\n\n"
    "  indented</code></pre><p>after</p>",
    "```\nstill streaming": "<pre><code>still streaming</code></pre>",
    "# Title\n### Small": "<h3>Title</h3><h5>Small</h5>",
    "> quoted\n> **text**": "<blockquote><p>quoted<br><strong>text</strong></p></blockquote>",
    "a\n\n---\n\nb": "<p>a</p><hr><p>b</p>",
    "[site](https://example.com/a_b) and https://example.com/a_b.": f"<p>{LINK}site</a> and "
    f"{LINK}https://example.com/a_b</a>.</p>",
    "[x](javascript:alert(1)) [y](data:text/html,hi)": "<p>[x](javascript:alert(1)) [y](data:text/html,hi)</p>",
    "snake_case_name and 2 * 3 * 4 and **unclosed": "<p>snake_case_name and 2 * 3 * 4 and **unclosed</p>",
    '<script>alert(1)</script><img src=x onerror="alert(2)">': "<p>&lt;script&gt;alert(1)&lt;/script&gt;"
    '&lt;img src=x onerror="alert(2)"&gt;</p>',
    "`<b>` **`code` in bold**": "<p><code>&lt;b&gt;</code> <strong><code>code</code> in bold</strong></p>",
}


def test_markdown_renders_the_supported_subset_and_everything_else_as_text(server_factory, open_browser) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    page = ChatPage(open_browser(), server.url).open().page
    rendered = page.evaluate(
        """async (cases) => {
            const { renderMarkdown } = await import('/static/markdown.js');
            const out = {};
            for (const text of cases) {
                const div = document.createElement('div');
                div.append(renderMarkdown(text));
                out[text] = div.innerHTML;  // (the test reads the result as HTML; the page never writes any)
            }
            // Deep nesting and a long input stay bounded and render without error.
            const deep = document.createElement('div');
            deep.append(renderMarkdown('>'.repeat(500) + ' x\\n' + '- '.repeat(500) + 'y'));
            out.deep = deep.textContent.includes('x');
            return out;
        }""",
        list(MARKDOWN_CASES),
    )
    assert rendered.pop("deep") is True
    assert rendered == MARKDOWN_CASES


def test_the_sse_parser_handles_any_chunking(server_factory, open_browser) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    page = ChatPage(open_browser(), server.url).open().page
    stream = (
        ": ping\r\n\r\n"
        'id: 1\r\nevent: token\r\ndata: {"a":1}\r\n\r\n'
        "id: 2\nevent: message\ndata: line one\ndata: line two\n\n"
        "id: 3\rdata:no space\r\r"
        "data: no id or event\n\n"
        "event: ignored\n\n"  # no data: nothing is dispatched
        "id: 4\ndata: unfinished at the end"
    )
    expected = [
        {"id": "1", "event": "token", "data": '{"a":1}'},
        {"id": "2", "event": "message", "data": "line one\nline two"},
        {"id": "3", "event": "message", "data": "no space"},
        {"id": "3", "event": "message", "data": "no id or event"},
    ]
    for size in (1, 2, 3, 7, len(stream)):
        events = page.evaluate(
            """async ([text, size]) => {
                const { sseEvents } = await import('/static/sse.js');
                const bytes = new TextEncoder().encode(text);
                const body = new ReadableStream({
                    start(controller) {
                        for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size));
                        controller.close();
                    },
                });
                const events = [];
                for await (const event of sseEvents(new Response(body))) events.push(event);
                return events;
            }""",
            [stream, size],
        )
        assert events == expected, f"chunks of {size} bytes"
