"""render_markdown: untrusted Markdown never yields script, event handlers, javascript: URLs or
images, whatever the input (hypothesis), and ordinary Markdown still renders."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.servers.markdown import render_markdown, render_text

PIECES = st.sampled_from([
    "<script>", "</script>", "<SCRIPT src=x>", "<img src=x onerror=alert(1)>", "onerror=",
    "onload=", "javascript:", "JaVaScRiPt:", "java\tscript:", "&#106;avascript:", "[a](",
    "](javascript:alert(1))", "![i](https://x/y.png)", "<a href='javascript:x'>", "<svg onload=1>",
    "<iframe>", "\"", "'", "<", ">", "`", "*", "_", "\n", "\n\n", "    ", "<style>", "data:",
    "vbscript:", "<!--", "-->", "<![CDATA[", "](", ")", "[", "]", "<", " ", "http://x", "&",
])
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=30).map("".join)

TAG = re.compile(r"<\s*([a-zA-Z][a-zA-Z0-9]*)([^>]*)>")


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_render_markdown_is_inert(text: str) -> None:
    out = render_markdown(text)
    lowered = out.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<iframe" not in lowered
    assert "<svg" not in lowered and "<style" not in lowered
    for _tag, attrs in TAG.findall(out):
        names = re.findall(r'([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=', attrs)
        assert not any(n.lower().startswith("on") for n in names), out
        for href in re.findall(r'href="([^"]*)"', attrs):
            assert href.split(":", 1)[0].lower() in ("https", "http", "mailto") \
                or ":" not in href.split("/", 1)[0], out


def test_markdown_still_renders() -> None:
    out = render_markdown("**bold** and [link](https://example.com) and `code`")
    assert "<strong>bold</strong>" in out and "<code>code</code>" in out
    assert 'href="https://example.com"' in out and 'rel="noopener noreferrer nofollow"' in out


def test_raw_html_is_text() -> None:
    assert render_markdown("<script>alert(1)</script>") == \
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    assert "href" not in render_markdown("[x](javascript:alert(1))")
    assert "<img" not in render_markdown("![x](https://example.com/x.png)")
    assert render_markdown(None) == "" and render_markdown("") == ""


def test_render_text_escapes() -> None:
    assert render_text('<b a="1">') == "&lt;b a=&quot;1&quot;&gt;"
