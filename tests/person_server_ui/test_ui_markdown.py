"""render_markdown: untrusted Markdown never yields script, event handlers, javascript: URLs or
images, whatever the input (hypothesis), and ordinary Markdown still renders."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import urlsplit

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aauth_agents.servers.markdown import render_markdown, render_text

PIECES = st.sampled_from(
    [
        "<script>",
        "</script>",
        "<SCRIPT src=x>",
        "<img src=x onerror=alert(1)>",
        "onerror=",
        "onload=",
        "javascript:",
        "JaVaScRiPt:",
        "java\tscript:",
        "&#106;avascript:",
        "[a](",
        "](javascript:alert(1))",
        "![i](https://x/y.png)",
        "<a href='javascript:x'>",
        "<svg onload=1>",
        "<iframe>",
        '"',
        "'",
        "<",
        ">",
        "`",
        "*",
        "_",
        "\n",
        "\n\n",
        "    ",
        "<style>",
        "data:",
        "vbscript:",
        "<!--",
        "-->",
        "<![CDATA[",
        "](",
        ")",
        "[",
        "]",
        "<",
        " ",
        "http://x",
        "&",
    ]
)
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=30).map("".join)


class _Elements(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer reads them (a regex over
    the text would take ``?onerror=`` inside a quoted href for an attribute)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("[a](https://x/?onerror=1) <x onerror=1>")  # handler-like text inside a URL
@example("[a](&#106;avascript:alert(1))")
@example("[a](<!--javascript:>)")  # found by hypothesis: an href with no scheme at all
@example("[a](/logout) [b](//evil.example)")
def test_render_markdown_is_inert(text: str) -> None:
    out = render_markdown(text)
    lowered = out.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<iframe" not in lowered
    assert "<svg" not in lowered and "<style" not in lowered
    for tag, attrs in _Elements(out).elements:
        assert tag not in ("script", "img", "iframe", "svg", "style", "object", "embed"), out
        assert not any(name.startswith("on") for name, _ in attrs), out
        for name, value in attrs:
            if name in ("href", "src", "action", "formaction") and value is not None:
                # absolute, with an allowed scheme: nothing relative (it would point into
                # the person server itself), nothing a browser could read as a script
                parts = urlsplit(value)
                assert parts.scheme.lower() in ("https", "http", "mailto"), out
                assert parts.scheme.lower() == "mailto" or parts.netloc, out


def test_markdown_still_renders() -> None:
    out = render_markdown("**bold** and [link](https://example.com) and `code`")
    assert "<strong>bold</strong>" in out and "<code>code</code>" in out
    assert 'href="https://example.com"' in out and 'rel="noopener noreferrer nofollow"' in out


def test_raw_html_is_text() -> None:
    assert (
        render_markdown("<script>alert(1)</script>")
        == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )
    assert "href" not in render_markdown("[x](javascript:alert(1))")
    assert "<img" not in render_markdown("![x](https://example.com/x.png)")
    assert render_markdown(None) == "" and render_markdown("") == ""


def test_render_text_escapes() -> None:
    assert render_text('<b a="1">') == "&lt;b a=&quot;1&quot;&gt;"


def test_the_shared_parser_renders_the_same_in_many_threads() -> None:
    """One parser and one sanitizer serve every call: rendering in 8 threads at once gives
    each text exactly what rendering it alone gives (no state leaks between calls)."""
    texts = [
        f"# Title {n}\n\n**bold {n}** [link](https://example.com/{n}) `code`\n\n"
        f"| a | b |\n| - | - |\n| ~~{n}~~ | <script>{n}</script> |\n\n- one\n- [rel](/logout)\n"
        for n in range(64)
    ]
    alone = [render_markdown(t) for t in texts]
    barrier = threading.Barrier(8)

    def render_all(offset: int) -> list[str]:
        barrier.wait()
        return [render_markdown(texts[(i + offset) % 64]) for i in range(64 * 4)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(render_all, range(8)))
    for offset, rendered in enumerate(results):
        assert rendered == [alone[(i + offset) % 64] for i in range(64 * 4)]
