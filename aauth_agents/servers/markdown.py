"""Untrusted Markdown to safe HTML, for pages shown to people (§Untrusted Input).

Justifications, scope and resource descriptions, agent provider descriptions and clarification
answers all come from agents or resources. :func:`render_markdown` renders them with
``markdown-it-py`` (raw HTML disabled: ``<script>`` stays text) and then sanitizes the result
with ``nh3`` (an allow-list of tags; no images, no ``on*`` attributes; links only to
``https:``/``http:``/``mailto:`` with ``rel="noopener noreferrer nofollow"``; a relative link
-- which would point into the person's own server -- loses its ``href``). The two layers
are independent: even if the renderer let markup through, the sanitizer drops it.

One parser and one sanitizer serve every call (building them cost more than rendering a
line). Both are safe to share between threads: a ``MarkdownIt`` keeps each parse's state in
per-call objects and is never reconfigured after :func:`_renderer`, which also compiles its
rule chains (the one thing it builds lazily) before it is shared; an ``nh3.Cleaner`` is
immutable once built.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

#: Tags the sanitizer keeps. No images, forms, frames, media or styles.
ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a",
        "p",
        "br",
        "hr",
        "em",
        "strong",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "del",
        "s",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES: frozenset[str] = frozenset({"https", "http", "mailto"})
#: Longest input rendered; longer text is cut (a page is no place for a novel).
MAX_LENGTH = 20_000


def _absolute_links_only(element: str, attribute: str, value: str) -> str | None:
    """Keep a URL attribute only when it is absolute with an allowed scheme (http(s) with a
    host): nh3 passes relative URLs -- ``/logout`` on the PS, or ``!--javascript:`` -- on."""
    if attribute not in ("href", "src"):
        return value
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES or (scheme != "mailto" and not parts.netloc):
        return None
    return value


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.disable("image")
    # Compile every rule chain now, while one thread holds it (a first render would).
    md.render("*a* `b` [c](https://d.example)\n\n| e |\n| - |\n| ~~f~~ |\n")
    return md


_MARKDOWN = _renderer()
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    attribute_filter=_absolute_links_only,
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def render_markdown(text: str | None) -> str:
    """``text`` (untrusted Markdown) as sanitized HTML, safe to insert into a page as is."""
    if not text:
        return ""
    return _CLEANER.clean(_MARKDOWN.render(str(text)[:MAX_LENGTH]))


def render_text(text: str | None) -> str:
    """``text`` as plain, escaped text (names, identifiers): no markup at all."""
    return html.escape(str(text or ""), quote=True)


__all__ = ["ALLOWED_TAGS", "MAX_LENGTH", "render_markdown", "render_text"]
